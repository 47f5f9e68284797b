"""Generated tool-call arguments: valid for the function's `parameters`, with bounded work on
any schema a client sends, and a 400 in the dialect's envelope for one that cannot be met."""

from __future__ import annotations

import resource
import time
from typing import Any

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator

from mockserver import arguments as arguments_module
from mockserver.schemas import assert_valid
from mockserver.server import MockServer

Json = dict[str, Any]
AUTH = {"Authorization": "Bearer sk-test"}
MODELS = {"deepseek": "deepseek-chat", "aimlapi": "deepseek-chat", "acedata": "deepseek-v3"}


def call(server: MockServer, parameters: Any, dialect: str = "deepseek") -> httpx.Response:
    body = {
        "model": MODELS[dialect],
        "messages": [{"role": "user", "content": "call it"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": parameters}}],
        "tool_choice": "required",
    }
    url = server.url_for(dialect) + "/chat/completions"
    return httpx.post(url, json=body, headers=AUTH, timeout=30)


def arguments(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    (tool_call,) = response.json()["choices"][0]["message"]["tool_calls"]
    return orjson.loads(tool_call["function"]["arguments"])


def nested_arrays(levels: int) -> Json:
    schema: Json = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return {"type": "object", "properties": {"a": schema}, "required": ["a"]}


# The shapes the README promises to satisfy, each one a generator used to get wrong.
SATISFIABLE: list[tuple[str, Json | None]] = [
    ("minLength", {"type": "object", "properties": {"a": {"type": "string", "minLength": 30}}, "required": ["a"]}),
    ("pattern", {"type": "object", "properties": {"a": {"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"}}, "required": ["a"]}),
    ("format", {"type": "object", "properties": {"a": {"type": "string", "format": "email"}, "b": {"type": "string", "format": "date-time"}, "c": {"type": "string", "format": "uuid"}, "d": {"type": "string", "format": "ipv4"}}}),
    ("exclusiveMaximum", {"type": "object", "properties": {"a": {"type": "number", "minimum": 0.5, "exclusiveMaximum": 0.51}, "b": {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5}}}),
    ("minItems", {"type": "object", "properties": {"a": {"type": "array", "minItems": 5, "items": {"type": "integer"}}}, "required": ["a"]}),
    ("$ref", {"type": "object", "properties": {"a": {"$ref": "#/$defs/unit"}}, "required": ["a"], "$defs": {"unit": {"enum": ["celsius", "fahrenheit"]}}}),
    ("required only", {"type": "object", "required": ["city", "day"]}),
    ("anyOf and allOf", {"allOf": [{"type": "object", "properties": {"a": {"anyOf": [{"type": "integer", "minimum": 10}, {"type": "null"}]}}}, {"required": ["a"]}]}),
    ("multipleOf", {"type": "object", "properties": {"a": {"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 20}}, "required": ["a"]}),
    ("huge number bound", {"type": "object", "properties": {"a": {"type": "number", "minimum": 1e308}}, "required": ["a"]}),
    ("no schema", None),
    ("arrays 33 deep", nested_arrays(33)),
]  # fmt: skip


@pytest.mark.parametrize(("case", "parameters"), SATISFIABLE, ids=[c[0] for c in SATISFIABLE])
def test_generated_arguments_satisfy_the_schema(
    mock: MockServer, case: str, parameters: Any
) -> None:
    value = arguments(call(mock, parameters))
    assert isinstance(value, dict)
    schema = parameters if parameters is not None else {"type": "object"}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert not list(validator.iter_errors(value)), value
    if case == "required only":
        assert set(value) == {"city", "day"}


def test_the_same_request_gets_the_same_arguments(mock: MockServer) -> None:
    schema = SATISFIABLE[1][1]
    assert arguments(call(mock, schema)) == arguments(call(mock, schema))


# Not a schema at all (the meta-schema refuses it), or one nothing can satisfy within bounds.
REFUSED: list[tuple[str, Json, str]] = [
    ("minimum not a number", {"type": "object", "properties": {"a": {"type": "integer", "minimum": "x"}}}, "not a valid JSON Schema"),
    ("properties a list", {"type": "object", "properties": [1]}, "not a valid JSON Schema"),
    ("required a number", {"type": "object", "required": 5}, "not a valid JSON Schema"),
    ("enum a number", {"type": "object", "properties": {"a": {"enum": 5}}}, "not a valid JSON Schema"),
    ("integer beyond 2**53", {"type": "object", "properties": {"a": {"type": "integer", "minimum": 1e308}}, "required": ["a"]}, "no integer"),
    ("minLength above maxLength", {"type": "object", "properties": {"a": {"type": "string", "minLength": 5, "maxLength": 2}}, "required": ["a"]}, "too long"),
    ("three distinct booleans", {"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True, "minItems": 3, "items": {"type": "boolean"}}}, "required": ["a"]}, "distinct"),
    ("a false schema", {"type": "object", "properties": {"a": False}, "required": ["a"]}, "false"),
    ("an endless $ref", {"type": "object", "properties": {"n": {"$ref": "#"}}, "required": ["n"]}, "deeper"),
    ("a remote $ref", {"$ref": "https://example.com/schema.json"}, "local $ref"),
    ("a pattern that explodes", {"type": "object", "properties": {"a": {"type": "string", "pattern": "((a{99}){99}){99}"}}, "required": ["a"]}, "pattern"),
    ("not an object", {"type": "string"}, "JSON object"),
    ("schema 100 deep", nested_arrays(100), "deeper than"),
]  # fmt: skip


@pytest.mark.parametrize("dialect", sorted(MODELS))
@pytest.mark.parametrize(("case", "parameters", "hint"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_schema_that_cannot_be_met_is_a_400_in_the_envelope(
    mock: MockServer, dialect: str, case: str, parameters: Json, hint: str
) -> None:
    response = call(mock, parameters, dialect)
    assert response.status_code == 400, response.text
    assert_valid(f"{dialect}/error.schema.json", response.json())
    assert (hint in response.text and "'f'" in response.text) or "tools[0]" in response.text


def test_deep_array_schemas_cost_little_time_and_memory(mock: MockServer) -> None:
    """33 nested arrays once took seconds and left the server at 500 MiB: each level doubled."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    for levels in (20, 33, 40):
        arguments(call(mock, nested_arrays(levels)))
    assert time.perf_counter() - started < 2
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 50


def test_the_readme_example_of_a_refused_schema(mock_now: MockServer) -> None:
    # The README's curl, on a server in the default (newest) era, as `make serve` starts.
    body = {
        "model": "deepseek-flash",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "parameters": {
                        "type": "object",
                        "properties": {"a": {"type": "integer", "minimum": "x"}},
                    },
                },
            }
        ],
    }
    response = httpx.post(mock_now.url + "/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Invalid 'tools[0].function.parameters': not a valid JSON Schema: "
        "$.properties.a.minimum: 'x' is not of type 'number'"
    )


def test_a_call_out_of_time_is_a_400_that_says_so(
    mock: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget is the mock's own CPU time; spent, the call is refused in the envelope."""
    monkeypatch.setattr(arguments_module, "TIME_BUDGET", 0.0)
    inner = {"type": "object", "properties": {f"q{n}": {"type": "string"} for n in range(10)}}
    inner["required"] = list(inner["properties"])
    outer = {"type": "object", "properties": {f"p{n}": inner for n in range(10)}}
    outer["required"] = list(outer["properties"])  # 110 values: past the first time check
    response = call(mock, outer)
    assert response.status_code == 400, response.text
    assert_valid("deepseek/error.schema.json", response.json())
    assert "took longer than 0.0 s of CPU" in response.text
