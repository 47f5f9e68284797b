"""The wire-contract schemas: well-formed, satisfied by every capture, and able to fail.

Every file under fixtures/captures/ becomes one test. Each rule that matters to a client
(envelope keys, enums, required keys) has a test with a body that breaks it, because a schema that
accepts everything would let every other test pass.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import hypothesis
import hypothesis_jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.internal.conjecture import utils as conjecture_utils
from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from mockserver import schemas
from mockserver.resources import data_dir

Json = dict[str, Any]

CAPTURES = sorted(data_dir("fixtures").joinpath("captures").glob("*/*.json"))
REQUEST = "chat-request.schema.json"


def _capture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _read(path: Path) -> Json:
    data: Json = json.loads(path.read_text(encoding="utf-8"))
    return data


def _body_schema(capture: Json) -> str | None:
    """Which schema a recorded response body answers to; None for plain text, which has none."""
    response, dialect = capture["response"], capture["dialect"]
    if "text" in response:
        return None
    if response["status"] >= 400:
        return f"{dialect}/error.schema.json"
    if "sse" in response:
        return f"{dialect}/chat-completion-chunk.schema.json"
    path = (capture["request"] or {}).get("path", "")
    if path.endswith("/models"):
        return f"{dialect}/models.schema.json"
    if path.endswith("/user/balance"):
        return f"{dialect}/balance.schema.json"
    return f"{dialect}/chat-completion.schema.json"


# --- the schema files themselves ----------------------------------------------------------------


def test_the_layout_is_complete() -> None:
    expected = {"capture.schema.json", REQUEST}
    for dialect in ("deepseek", "aimlapi", "acedata"):
        for kind in ("chat-completion", "chat-completion-chunk", "error"):
            expected.add(f"{dialect}/{kind}.schema.json")
    expected |= {
        "deepseek/models.schema.json",
        "deepseek/balance.schema.json",
        "aimlapi/models.schema.json",
    }
    assert expected <= set(schemas.names())


@pytest.mark.parametrize("name", schemas.names())
def test_schema_file_is_a_2020_12_schema_without_id(name: str) -> None:
    schema = schemas.load(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "$id" not in schema, "the file path is the identity"
    Draft202012Validator.check_schema(schema)
    schemas.validator(name)  # every $ref in the file must resolve through the registry


def _walk(node: object) -> list[Json]:
    if isinstance(node, dict):
        return [node, *(sub for value in node.values() for sub in _walk(value))]
    if isinstance(node, list):
        return [sub for value in node for sub in _walk(value)]
    return []


# Our own file format is strict on purpose: a misspelt rule key must fail loudly.
OWN_FORMATS = {"scenario.schema.json", "catalog.schema.json"}


@pytest.mark.parametrize("name", sorted(set(schemas.names()) - OWN_FORMATS))
def test_wire_schemas_never_forbid_extra_fields(name: str) -> None:
    # Live services add fields without notice; a contract test must not break on that.
    closed = [
        node for node in _walk(schemas.load(name)) if node.get("additionalProperties") is False
    ]
    assert closed == []


def test_the_registry_never_fetches_unknown_uris() -> None:
    with pytest.raises(Unresolvable):
        schemas.registry().resolver().lookup("https://example.com/other.schema.json")


def test_unknown_or_escaping_names_are_refused() -> None:
    with pytest.raises(KeyError):
        schemas.validator("deepseek/nothing.schema.json")
    with pytest.raises(KeyError):
        schemas.load("../tests/test_schemas.py")


def test_problems_are_readable_and_most_specific_first() -> None:
    body = _deepseek_completion()
    body["usage"]["prompt_tokens"] = -1
    found = schemas.problems("deepseek/chat-completion.schema.json", body)
    assert found[0] == "$.usage.prompt_tokens: -1 is less than the minimum of 0"
    chunk = _deepseek_chunk()
    chunk["usage"] = {"prompt_tokens": -1, "completion_tokens": 1}
    found = schemas.problems("deepseek/chat-completion-chunk.schema.json", chunk)
    assert found[0] == "$.usage.prompt_tokens: -1 is less than the minimum of 0"
    assert "$.usage: 'total_tokens' is a required property" in found


def test_assert_valid_lists_the_problems() -> None:
    with pytest.raises(AssertionError, match=r"\$\.error: 'type' is a required property"):
        schemas.assert_valid("deepseek/error.schema.json", {"error": {"message": "x"}})
    schemas.assert_valid("deepseek/error.schema.json", _deepseek_error())


# --- captures ----------------------------------------------------------------------------------


def test_there_are_captures_for_every_dialect() -> None:
    assert {path.parent.name for path in CAPTURES} == {"deepseek", "aimlapi", "acedata"}


@pytest.mark.parametrize("path", CAPTURES, ids=_capture_id)
def test_capture_conforms(path: Path) -> None:
    capture = _read(path)
    schemas.assert_valid("capture.schema.json", capture)
    assert capture["dialect"] == path.parent.name
    response = capture["response"]
    name = _body_schema(capture)
    if name is None:
        assert response["status"] >= 400, "plain-text bodies are only recorded for errors"
    elif "sse" in response:
        *payloads, last = response["sse"]
        assert last == "[DONE]"
        assert payloads
        for payload in payloads:
            schemas.assert_valid(name, json.loads(payload))
    else:
        schemas.assert_valid(name, response["json"])


@pytest.mark.parametrize("path", CAPTURES, ids=_capture_id)
def test_captures_hold_no_real_keys(path: Path) -> None:
    request = _read(path)["request"] or {}
    for header, value in request.get("headers", {}).items():
        if header.lower() == "authorization":
            assert value == "Bearer sk-test"


CHAT_REQUESTS = [
    pytest.param(capture["request"]["json"], id=_capture_id(path))
    for path in CAPTURES
    if (capture := _read(path))["request"] and "json" in capture["request"]
]


@pytest.mark.parametrize("body", CHAT_REQUESTS)
def test_request_schema_accepts_captured_requests(body: Json) -> None:
    schemas.assert_valid(REQUEST, body)


# --- the request schema ------------------------------------------------------------------------


def _request(**changes: Any) -> Json:
    body: Json = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hello"}]}
    body.update(changes)
    return body


def _tool(name: str) -> Json:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


GOOD_REQUESTS = [
    pytest.param(_request(), id="minimal"),
    pytest.param(
        _request(
            temperature=0,
            top_p=1,
            frequency_penalty=-2,
            presence_penalty=2,
            max_tokens=8192,
            stop=["```"] * 16,
            stream=True,
            stream_options={"include_usage": True},
            response_format={"type": "json_object"},
            tools=[_tool("get_weather")] * 128,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            logprobs=True,
            top_logprobs=20,
            n=128,
            seed=0,
            user="u-1",
            thinking={"type": "enabled"},
            reasoning_effort="max",
        ),
        id="every-limit",
    ),
    pytest.param(
        _request(
            temperature=None,
            top_p=None,
            max_tokens=None,
            stop=None,
            tools=None,
            tool_choice=None,
            response_format=None,
            thinking=None,
        ),
        id="documented-nulls",
    ),
    pytest.param(
        _request(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use JSON."}]},
                {"role": "user", "content": "Weather?", "name": "ann"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_00_abc",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "content": "Sunny", "tool_call_id": "call_00_abc"},
                {"role": "assistant", "content": "```python\n", "prefix": True},
            ]
        ),
        id="every-role",
    ),
    pytest.param(
        _request(
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
        ),
        id="json-schema-format",
    ),
]

BAD_REQUESTS = [
    pytest.param(_request(temperature=3), id="temperature-3"),
    pytest.param(_request(top_p=1.5), id="top-p-1.5"),
    pytest.param(_request(max_tokens=0), id="max-tokens-0"),
    pytest.param(_request(max_tokens=1.5), id="max-tokens-fraction"),
    pytest.param({"model": "deepseek-chat"}, id="messages-missing"),
    pytest.param(_request(messages=[]), id="messages-empty"),
    pytest.param({"messages": [{"role": "user", "content": "Hi"}]}, id="model-missing"),
    pytest.param(_request(tools=[_tool("f")] * 129), id="tools-129"),
    pytest.param(_request(tools=[_tool("get weather")]), id="function-name-space"),
    pytest.param(_request(tools=[_tool("f" * 65)]), id="function-name-65"),
    pytest.param(_request(tool_choice="any"), id="tool-choice-unknown"),
    pytest.param(_request(tool_choice={"type": "function", "name": "f"}), id="tool-choice-flat"),
    pytest.param(_request(stop=["x"] * 17), id="stop-17"),
    pytest.param(_request(frequency_penalty=-2.5), id="frequency-penalty"),
    pytest.param(_request(top_logprobs=21), id="top-logprobs-21"),
    pytest.param(_request(n=0), id="n-0"),
    pytest.param(_request(thinking=True), id="thinking-bool"),
    pytest.param(_request(response_format={"type": "xml"}), id="response-format-xml"),
    pytest.param(_request(messages=[{"role": "robot", "content": "Hi"}]), id="role-unknown"),
    pytest.param(_request(messages=[{"role": "user"}]), id="user-without-content"),
    pytest.param(_request(messages=[{"role": "user", "content": None}]), id="user-null-content"),
    pytest.param(_request(messages=[{"role": "tool", "content": "x"}]), id="tool-without-call-id"),
]


@pytest.mark.parametrize("body", GOOD_REQUESTS)
def test_request_schema_accepts(body: Json) -> None:
    schemas.assert_valid(REQUEST, body)


@pytest.mark.parametrize("body", BAD_REQUESTS)
def test_request_schema_rejects(body: Json) -> None:
    assert schemas.problems(REQUEST, body)


@pytest.fixture(scope="module")
def fast_request_validator() -> Callable[[object], object]:
    validate: Callable[[object], object] = fastjsonschema.compile(schemas.load(REQUEST))
    return validate


@pytest.mark.parametrize("body", GOOD_REQUESTS + CHAT_REQUESTS)
def test_fastjsonschema_accepts(
    fast_request_validator: Callable[[object], object], body: Json
) -> None:
    fast_request_validator(body)


@pytest.mark.parametrize("body", BAD_REQUESTS)
def test_fastjsonschema_rejects(
    fast_request_validator: Callable[[object], object], body: Json
) -> None:
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        fast_request_validator(body)


# hypothesis-jsonschema 0.23.1 drives hypothesis' private `many(...).more()`, which hypothesis
# removed in 6.170.10: pyproject pins 6.170.9, and this fails loudly if that pin ever moves.
def test_hypothesis_is_a_version_hypothesis_jsonschema_can_drive() -> None:
    assert hasattr(conjecture_utils.many, "more"), hypothesis.__version__


@settings(
    max_examples=10,  # the full request schema is slow to draw from; the server's own
    deadline=None,  # property tests (test_properties.py) draw many more, narrowed per dialect
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(hypothesis_jsonschema.from_schema(schemas.load(REQUEST)))
def test_generated_requests_conform(body: Json) -> None:
    schemas.assert_valid(REQUEST, body)


# --- response schemas must be able to fail -----------------------------------------------------


def _deepseek_usage() -> Json:
    return {
        "prompt_tokens": 11,
        "completion_tokens": 11,
        "total_tokens": 22,
        "prompt_tokens_details": {"cached_tokens": 0},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 11,
    }


def _deepseek_completion() -> Json:
    return {
        "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
        "object": "chat.completion",
        "created": 1766977481,
        "model": "deepseek-chat",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _deepseek_usage(),
        "system_fingerprint": "fp_eaab8d114b_prod0820_fp8_kvcache",
    }


def _deepseek_chunk() -> Json:
    return {
        "id": "27ad2e90-0000-4000-8000-000000000000",
        "object": "chat.completion.chunk",
        "created": 1752103042,
        "model": "deepseek-chat",
        "system_fingerprint": "fp_8802369eaa_prod0623_fp8_kvcache",
        "choices": [
            {"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}
        ],
        "usage": None,
    }


def _deepseek_error() -> Json:
    return {
        "error": {
            "message": "Insufficient Balance",
            "type": "unknown_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }


def _capture_body(name: str) -> Json:
    path = data_dir("fixtures") / "captures" / f"{name}.json"
    body: Json = _read(path)["response"]["json"]
    return body


def _aiml_error() -> Json:
    return {
        "message": "Too Many Requests",
        "path": "/v1/chat/completions",
        "requestId": "798b860e-98c2-4e8e-8c50-550bcfc2eccc",
        "statusCode": 429,
        "timestamp": "2025-03-11T07:13:27.813Z",
    }


def _acedata_chunk() -> Json:
    sse = _read(data_dir("fixtures") / "captures/acedata/seed-stream-hello.json")["response"]["sse"]
    chunk: Json = json.loads(sse[0])
    return chunk


def _ds_tool_call() -> Json:
    body = _deepseek_completion()
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "index": 0,
                "id": "call_0_6a3f",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


def _aiml_usage_chunk() -> Json:
    """The separate usage chunk of the AI/ML streaming example, with the documented meta cost."""
    return {
        "id": "gen-1744194041-A363xKnsNwtv6gPnUPnO",
        "object": "chat.completion.chunk",
        "created": 1744194041,
        "model": "deepseek/deepseek-chat-v3-0324",
        "choices": [],
        "usage": {"prompt_tokens": 4, "completion_tokens": 12, "total_tokens": 16},
        "meta": {"usage": {"credits_used": 2480, "usd_spent": 0.00124}},
    }


def _aiml_models() -> Json:
    """One entry in the shape of the AI/ML models spec (values are illustrative)."""
    return {
        "object": "list",
        "data": [
            {
                "id": "deepseek/deepseek-chat-v3-0324",
                "aliases": ["deepseek-chat", "deepseek/deepseek-chat"],
                "type": "openai/chat-completions",
                "info": {"name": "DeepSeek V3", "developer": "DeepSeek", "contextLength": 128000},
                "tags": ["playground:chat"],
            }
        ],
    }


SAMPLES: dict[str, Callable[[], Json]] = {
    "deepseek/chat-completion.schema.json": _deepseek_completion,
    "deepseek/chat-completion-chunk.schema.json": _deepseek_chunk,
    "deepseek/error.schema.json": _deepseek_error,
    "deepseek/models.schema.json": lambda: _capture_body("deepseek/models"),
    "deepseek/balance.schema.json": lambda: _capture_body("deepseek/balance"),
    "aimlapi/chat-completion.schema.json": lambda: _capture_body(
        "aimlapi/seed-deepseek-chat-hello"
    ),
    "aimlapi/chat-completion-chunk.schema.json": _aiml_usage_chunk,
    "aimlapi/error.schema.json": _aiml_error,
    "aimlapi/models.schema.json": _aiml_models,
    "acedata/chat-completion.schema.json": lambda: _capture_body("acedata/seed-basic-v3.2-exp"),
    "acedata/chat-completion-chunk.schema.json": _acedata_chunk,
    "acedata/error.schema.json": lambda: _capture_body("acedata/spec-error-401-invalid-token"),
}


def _set(path: str, value: object) -> Callable[[Json], None]:
    """A change that sets a dotted path ("choices.0.finish_reason") to `value`."""

    def change(body: Json) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _drop(path: str) -> Callable[[Json], None]:
    """A change that removes the key at a dotted path."""

    def change(body: Json) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return change


def _replace(other: Json) -> Callable[[Json], None]:
    """A change that swaps the whole body for another (e.g. another dialect's envelope)."""

    def change(body: Json) -> None:
        body.clear()
        body.update(copy.deepcopy(other))

    return change


# (schema, change, a fragment of the expected problem)
BREAKS = [
    # DeepSeek
    ("deepseek/chat-completion.schema.json", _drop("choices"), "'choices' is a required"),
    ("deepseek/chat-completion.schema.json", _drop("system_fingerprint"), "'system_fingerprint'"),
    ("deepseek/chat-completion.schema.json", _set("object", "chat.completion.chunk"), "$.object"),
    ("deepseek/chat-completion.schema.json", _set("choices", []), "should be non-empty"),
    ("deepseek/chat-completion.schema.json", _drop("usage.prompt_cache_hit_tokens"), "hit_tokens"),
    ("deepseek/chat-completion.schema.json", _set("usage.total_tokens", "22"), "not of type"),
    ("deepseek/chat-completion.schema.json", _drop("choices.0.message.content"), "'content'"),
    ("deepseek/chat-completion.schema.json", _drop("choices.0.logprobs"), "'logprobs'"),
    ("deepseek/chat-completion.schema.json", _set("choices.0.finish_reason", "eos"), "'eos'"),
    ("deepseek/chat-completion.schema.json", _set("choices.0.finish_reason", None), "None"),
    ("deepseek/chat-completion.schema.json", _set("choices.0.message.role", "user"), "assistant"),
    (
        "deepseek/chat-completion.schema.json",
        _set(
            "choices.0.message.tool_calls",
            [{"id": "call_00_x", "type": "function", "function": {"name": "f", "arguments": {}}}],
        ),
        "is not of type 'string'",
    ),
    ("deepseek/chat-completion-chunk.schema.json", _set("object", "chat.completion"), "$.object"),
    ("deepseek/chat-completion-chunk.schema.json", _drop("choices.0.delta"), "'delta'"),
    ("deepseek/chat-completion-chunk.schema.json", _set("choices.0.delta.role", "user"), "role"),
    ("deepseek/chat-completion-chunk.schema.json", _set("usage", {"prompt_tokens": 1}), "usage"),
    ("deepseek/error.schema.json", _drop("error.type"), "'type' is a required"),
    ("deepseek/error.schema.json", _drop("error.param"), "'param' is a required"),
    ("deepseek/error.schema.json", _set("error", "Insufficient Balance"), "not of type 'object'"),
    ("deepseek/models.schema.json", _set("object", "model"), "$.object"),
    ("deepseek/models.schema.json", _drop("data.0.owned_by"), "'owned_by'"),
    ("deepseek/balance.schema.json", _set("balance_infos.0.total_balance", 110.0), "not of type"),
    ("deepseek/balance.schema.json", _set("balance_infos.0.currency", "EUR"), "'EUR'"),
    ("deepseek/balance.schema.json", _drop("is_available"), "'is_available'"),
    # AI/ML API
    ("aimlapi/chat-completion.schema.json", _drop("choices"), "'choices' is a required"),
    ("aimlapi/chat-completion.schema.json", _set("object", "chat.completion.chunk"), "$.object"),
    ("aimlapi/chat-completion.schema.json", _drop("usage"), "'usage' is a required"),
    ("aimlapi/chat-completion.schema.json", _drop("choices.0.logprobs"), "'logprobs'"),
    ("aimlapi/chat-completion.schema.json", _set("usage.prompt_tokens", -1), "minimum of 0"),
    (
        "aimlapi/chat-completion.schema.json",
        _set("meta", {"usage": {"credits": 1}}),
        "credits_used",
    ),
    ("aimlapi/chat-completion-chunk.schema.json", _set("object", "chat.completion"), "$.object"),
    ("aimlapi/chat-completion-chunk.schema.json", _set("choices", [{"index": 0}]), "finish_reason"),
    ("aimlapi/error.schema.json", _drop("requestId"), "'requestId'"),
    ("aimlapi/error.schema.json", _replace(_deepseek_error()), "'message' is a required"),
    ("aimlapi/error.schema.json", _set("statusCode", "Too Many"), "statusCode"),
    ("aimlapi/error.schema.json", _set("statusCode", 4290), "statusCode"),
    ("aimlapi/models.schema.json", _drop("data.0.aliases"), "'aliases'"),
    ("aimlapi/models.schema.json", _drop("data.0.info.developer"), "'developer'"),
    # AceData
    ("acedata/chat-completion.schema.json", _drop("choices"), "'choices' is a required"),
    ("acedata/chat-completion.schema.json", _set("choices.0.finish_reason", "done"), "'done'"),
    ("acedata/chat-completion.schema.json", _drop("usage"), "'usage' is a required"),
    ("acedata/chat-completion.schema.json", _set("choices.0.flag", "0"), "not of type 'integer'"),
    ("acedata/chat-completion-chunk.schema.json", _drop("choices.0.delta.role"), "'role'"),
    ("acedata/chat-completion-chunk.schema.json", _drop("system_fingerprint"), "fingerprint"),
    ("acedata/chat-completion-chunk.schema.json", _set("object", "chat.completion"), "$.object"),
    ("acedata/error.schema.json", _set("error", "The specified token is invalid"), "'object'"),
    ("acedata/error.schema.json", _set("error.code", "quota_exceeded"), "'quota_exceeded'"),
    ("acedata/error.schema.json", _drop("trace_id"), "'trace_id'"),
    ("acedata/error.schema.json", _set("success", True), "$.success"),
]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_used_below_are_valid(name: str) -> None:
    schemas.assert_valid(name, SAMPLES[name]())


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    BREAKS,
    ids=[f"{name.removesuffix('.schema.json')}-{i}" for i, (name, _, _) in enumerate(BREAKS)],
)
def test_schema_rejects(name: str, change: Callable[[Json], None], expected: str) -> None:
    body = copy.deepcopy(SAMPLES[name]())
    change(body)
    found = schemas.problems(name, body)
    assert found, f"{name} accepted a broken body"
    assert any(expected in line for line in found), found


ACCEPTED_VARIANTS = [
    pytest.param("deepseek/chat-completion.schema.json", _ds_tool_call, id="ds-tool-call"),
    pytest.param(
        "deepseek/chat-completion.schema.json",
        lambda: _with(_deepseek_completion(), "x_new_field", 1),
        id="ds-extra-field",
    ),
    pytest.param(
        "deepseek/chat-completion.schema.json",
        lambda: _with(
            _deepseek_completion(), "choices.0.finish_reason", "insufficient_system_resource"
        ),
        id="ds-insufficient-system-resource",
    ),
    pytest.param(
        "deepseek/chat-completion-chunk.schema.json",
        lambda: _with(_deepseek_chunk(), "choices", []),
        id="ds-separate-usage-chunk",
    ),
    pytest.param(
        "deepseek/chat-completion-chunk.schema.json",
        lambda: _drop_from(_deepseek_chunk(), "usage"),
        id="ds-chunk-without-usage",
    ),
    pytest.param(
        "aimlapi/error.schema.json",
        lambda: _with(_aiml_error(), "statusCode", "429"),
        id="aiml-string-status",
    ),
    pytest.param("aimlapi/chat-completion-chunk.schema.json", _aiml_usage_chunk, id="aiml-usage"),
    pytest.param(
        "acedata/error.schema.json",
        lambda: _capture_body("acedata/seed-error-500-api-error"),
        id="acedata-success-false",
    ),
]


def _with(body: Json, path: str, value: object) -> Json:
    _set(path, value)(body)
    return body


def _drop_from(body: Json, path: str) -> Json:
    _drop(path)(body)
    return body


@pytest.mark.parametrize(("name", "make"), ACCEPTED_VARIANTS)
def test_schema_accepts_documented_variants(name: str, make: Callable[[], Json]) -> None:
    schemas.assert_valid(name, make())


def test_capture_schema_rejects_two_bodies_and_unknown_dialects() -> None:
    capture = _read(data_dir("fixtures") / "captures/deepseek/models.json")
    both = copy.deepcopy(capture)
    both["response"]["text"] = "{}"
    assert schemas.problems("capture.schema.json", both)
    other = copy.deepcopy(capture)
    other["dialect"] = "openai"
    assert schemas.problems("capture.schema.json", other)
