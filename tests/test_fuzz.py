"""Nested-field fuzzing: valid requests with one nested part mutated (tools and their parameter
schemas, tool_choice, message content parts, tool calls, response_format). Whatever arrives,
the answer is a 2xx or a 4xx in the dialect's envelope: never a 5xx, never a hang.

The bulk runs in-process through Starlette's test client (the whole ASGI app, middleware and
journal included, but no sockets), which keeps thousands of cases within seconds; the last test
sends the same kind of cases to a real server over loopback. The server checks its own answers
against schemas/ (self_check), so an answer that breaks its schema is a 500 here as well.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from starlette.testclient import TestClient

from mockserver.app import create_app
from mockserver.schemas import assert_valid
from mockserver.server import MockServer
from mockserver.settings import Settings

Json = dict[str, Any]
AUTH = {"Authorization": "Bearer sk-test"}
MODELS = {"deepseek": "deepseek-chat", "aimlapi": "deepseek-chat", "acedata": "deepseek-v3"}
ROOTS = {"deepseek": "", "aimlapi": "/aimlapi/v1", "acedata": "/deepseek"}
EXAMPLES = 400  # per test: five tests in-process, 2,000 cases in all
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any JSON value, kept small: the point is the shape, not the size.
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
NAMES = st.sampled_from(["f", "get_weather", "x-1"]) | st.text(max_size=70)

# Tool parameter schemas: JSON Schema keywords with values that fit them, and values that do not.
KEYWORDS = st.sampled_from(
    ["type", "properties", "required", "items", "prefixItems", "enum", "const", "minimum", "maximum",
     "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "format",
     "minItems", "maxItems", "uniqueItems", "anyOf", "oneOf", "allOf", "not", "$ref", "$defs",
     "additionalProperties", "minProperties", "dependentRequired", "contains"]
)  # fmt: skip
TYPES = st.sampled_from(["object", "array", "string", "integer", "number", "boolean", "null"])
FITTING = st.one_of(
    TYPES,
    st.lists(TYPES, min_size=1, max_size=3, unique=True),
    st.integers(-5, 40),
    st.floats(-1e308, 1e308, allow_nan=False),
    st.sampled_from(
        ["^[a-z]{2,5}$", "\\d+", "(a|b)*c", "((a{9}){9}){9}", "[", "date", "email", "uuid"]
    ),
    st.sampled_from(["#", "#/$defs/a", "#/properties", "#/nowhere", "https://example.com/s.json"]),
    st.lists(st.text(max_size=4), max_size=3),
    st.booleans(),
)


KEYWORD_VALUES = st.dictionaries(KEYWORDS, FITTING | JSON, max_size=4)


def schemas() -> st.SearchStrategy[Any]:
    # Mostly typed nodes, where generators go wrong, with any keyword beside the type.
    leaf = (
        st.builds(lambda kind, rest: {"type": kind} | rest, TYPES | FITTING, KEYWORD_VALUES)
        | KEYWORD_VALUES
        | st.booleans()
    )
    return st.recursive(
        leaf,
        lambda inner: st.fixed_dictionaries(
            {},
            optional={
                "type": TYPES,
                "properties": st.dictionaries(st.text(max_size=4), inner, max_size=3) | JSON,
                "items": inner,
                "anyOf": st.lists(inner, min_size=1, max_size=2),
                "allOf": st.lists(inner, min_size=1, max_size=2),
                "$defs": st.dictionaries(st.just("a"), inner, max_size=1),
                "required": st.lists(st.text(max_size=4), max_size=3) | JSON,
                "minItems": st.integers(0, 5),
            },
        ),
        max_leaves=12,
    )


VALID_NAMES = st.sampled_from(["f", "get_weather", "x-1"])
FUNCTIONS = st.fixed_dictionaries(
    {"name": VALID_NAMES, "parameters": schemas()},
    optional={"description": st.text(max_size=10), "strict": st.booleans()},
)
# Mostly well-formed tools with any parameter schema; now and then a broken wrapper.
TOOLS = st.lists(
    st.fixed_dictionaries({"type": st.just("function"), "function": FUNCTIONS})
    | st.fixed_dictionaries(
        {"type": st.just("function") | JSON},
        optional={
            "function": st.fixed_dictionaries(
                {}, optional={"name": NAMES | JSON, "parameters": JSON, "strict": JSON}
            )
            | JSON
        },
    )
    | JSON,
    min_size=1,
    max_size=3,
)
TOOL_CHOICES = (
    st.sampled_from(["none", "auto", "required"])
    | st.text(max_size=10)
    | st.integers()
    | st.lists(JSON, max_size=2)
    | st.fixed_dictionaries(
        {
            "type": st.just("function") | st.text(max_size=8),
            "function": st.fixed_dictionaries({}, optional={"name": NAMES | JSON}) | JSON,
        }
    )
    | st.dictionaries(st.sampled_from(["type", "function", "name"]), JSON, max_size=3)
)
PARTS = st.lists(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=20) | JSON})
    | st.fixed_dictionaries({"type": st.just("image_url"), "image_url": JSON})
    | st.dictionaries(st.sampled_from(["type", "text", "image_url"]), JSON, max_size=3)
    | JSON,
    max_size=3,
)
TOOL_CALLS = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.text(max_size=8) | JSON,
            "type": st.just("function") | JSON,
            "function": st.fixed_dictionaries(
                {"name": NAMES | JSON, "arguments": st.text(max_size=20) | JSON}
            ),
        }
    )
    | JSON,
    max_size=2,
)
RESPONSE_FORMATS = (
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "json_schema"]) | JSON},
        optional={
            "json_schema": st.fixed_dictionaries(
                {}, optional={"name": JSON, "schema": schemas() | JSON, "strict": JSON}
            )
            | JSON
        },
    )
    | JSON
)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(self_check=True, journal_size=50))
    with TestClient(app, raise_server_exceptions=False) as running:
        yield running


def base(dialect: str, **extra: Any) -> Json:
    return {"model": MODELS[dialect], "messages": [{"role": "user", "content": "hi"}]} | extra


class Answer(Protocol):
    """What httpx and Starlette's test client both return."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


def check(response: Answer, dialect: str, body: Json) -> None:
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        if response.headers["content-type"].startswith("application/json"):
            assert_valid(f"{dialect}/error.schema.json", response.json())
    elif not body.get("stream"):
        assert_valid(f"{dialect}/chat-completion.schema.json", response.json())


def send(client: TestClient, dialect: str, body: Json) -> None:
    check(client.post(ROOTS[dialect] + "/chat/completions", json=body, headers=AUTH), dialect, body)


DIALECTS = st.sampled_from(sorted(MODELS))


@FUZZ
@given(
    dialect=DIALECTS,
    tools=TOOLS,
    choice=st.sampled_from(["required", "auto", None]),
    stream=st.booleans(),
)
def test_tools_and_their_parameter_schemas(
    client: TestClient, dialect: str, tools: Any, choice: str | None, stream: bool
) -> None:
    send(client, dialect, base(dialect, tools=tools, tool_choice=choice, stream=stream))


@FUZZ
@given(dialect=DIALECTS, choice=TOOL_CHOICES, with_tools=st.booleans())
def test_tool_choice(client: TestClient, dialect: str, choice: Any, with_tools: bool) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    send(
        client,
        dialect,
        base(dialect, tool_choice=choice, **({"tools": tools} if with_tools else {})),
    )


@FUZZ
@given(dialect=DIALECTS, parts=PARTS, role=st.sampled_from(["user", "system", "assistant", "tool"]))
def test_message_content_parts(client: TestClient, dialect: str, parts: Any, role: str) -> None:
    message: Json = {"role": role, "content": parts}
    if role == "tool":
        message["tool_call_id"] = "call_1"
    messages = [{"role": "user", "content": "hi"}, message] if role != "user" else [message]
    send(client, dialect, base(dialect, messages=messages))


@FUZZ
@given(dialect=DIALECTS, calls=TOOL_CALLS, content=st.none() | st.text(max_size=10) | PARTS)
def test_assistant_tool_calls_and_tool_results(
    client: TestClient, dialect: str, calls: Any, content: Any
) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": content, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 °C"},
    ]
    send(client, dialect, base(dialect, messages=messages))


@FUZZ
@given(dialect=DIALECTS, response_format=RESPONSE_FORMATS, stream=st.booleans())
def test_response_format(
    client: TestClient, dialect: str, response_format: Any, stream: bool
) -> None:
    send(client, dialect, base(dialect, response_format=response_format, stream=stream))


BODIES = st.one_of(
    st.builds(lambda d, t: base(d, tools=t, tool_choice="required"), DIALECTS, TOOLS),
    st.builds(lambda d, c: base(d, tool_choice=c), DIALECTS, TOOL_CHOICES),
    st.builds(lambda d, p: base(d, messages=[{"role": "user", "content": p}]), DIALECTS, PARTS),
    st.builds(lambda d, r: base(d, response_format=r), DIALECTS, RESPONSE_FORMATS),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES)
def test_the_same_cases_over_a_real_socket(server: MockServer, body: Json) -> None:
    dialect = next(d for d, m in MODELS.items() if m == body["model"] and d != "aimlapi")
    url = server.url_for(dialect) + "/chat/completions"
    check(httpx.post(url, json=body, headers=AUTH, timeout=30), dialect, body)
