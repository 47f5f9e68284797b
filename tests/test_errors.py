"""Bad input gets a clear error in the dialect's own envelope with the right status: never a
500, never a crash, and always a journal entry."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mockserver.schemas import assert_valid
from mockserver.server import MockServer
from mockserver.settings import Settings
from tests.conftest import LATE_2025

Json = dict[str, Any]
AUTH = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
MODELS = {"deepseek": "deepseek-chat", "aimlapi": "deepseek-chat", "acedata": "deepseek-v3"}
DIALECTS = sorted(MODELS)


def send(
    server: MockServer, dialect: str, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    url = server.url_for(dialect) + "/chat/completions"
    return httpx.post(url, content=content, headers=AUTH if headers is None else headers)


def ok_body(dialect: str, **extra: Any) -> Json:
    return {"model": MODELS[dialect], "messages": [{"role": "user", "content": "hi"}]} | extra


def check_envelope(response: httpx.Response, dialect: str, status: int) -> Json:
    assert response.status_code == status, response.text
    body: Json = response.json()
    assert_valid(f"{dialect}/error.schema.json", body)
    return body


def message_of(body: Json) -> str:
    error = body.get("error", body)
    return str(error["message"])


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("malformed JSON", b'{"model": "deepseek-chat", "messages": [', "parse the request body as JSON"),
    ("empty body", b"", "EOF while parsing"),
    ("not an object", b"[1, 2]", "invalid type: sequence"),
    ("NaN", b'{"model": "deepseek-chat", "messages": [], "temperature": NaN}', "JSON"),
    ("Infinity", b'{"model": "deepseek-chat", "messages": [], "top_p": Infinity}', "JSON"),
    ("lone surrogate", b'{"model": "deepseek-chat", "messages": [{"role": "user", "content": "\\ud800"}]}', "JSON"),
    ("invalid UTF-8", b'{"model": "deepseek-chat", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "JSON"),
    ("deep nesting", b'{"a": ' * 5000 + b"1" + b"}" * 5000, "JSON"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "content", "hint"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_unparseable_bodies_are_400_in_the_deepseek_envelope(
    mock: MockServer, case: str, content: bytes, hint: str
) -> None:
    body = check_envelope(send(mock, "deepseek", content), "deepseek", 400)
    assert hint in message_of(body)
    assert body["error"]["type"] == "invalid_request_error"


INVALID: list[tuple[str, Json, str]] = [
    ("unknown model", {"model": "gpt-4o"}, "Model Not Exist"),
    ("missing messages", {"messages": None}, "messages"),
    ("empty messages", {"messages": []}, "Empty input messages"),
    ("wrong role", {"messages": [{"role": "robot", "content": "x"}]}, "unknown variant `robot`"),
    ("content of wrong type", {"messages": [{"role": "user", "content": 5}]}, "invalid type: integer `5`"),
    ("temperature too high", {"temperature": 2.5}, "the valid range of temperature is [0, 2]"),
    ("temperature as text", {"temperature": "hot"}, "invalid type: string"),
    ("top_p too high", {"top_p": 1.5}, "the valid range of top_p is [0, 1]"),
    ("presence_penalty too low", {"presence_penalty": -3}, "presence_penalty is [-2, 2]"),
    ("max_tokens zero", {"max_tokens": 0}, "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"),
    ("max_tokens too high", {"max_tokens": 9000}, "the valid range of max_tokens is [1, 8192]"),
    ("max_tokens as float", {"max_tokens": 1.5}, "invalid type: floating point"),
    ("too many tools", {"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]}, "at most 128"),
    ("bad function name", {"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "function.name"),
    ("stream as text", {"stream": "yes"}, "invalid type: string"),
    ("include_usage as text", {"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage: invalid type: string"),
    ("stop list too long", {"stop": [str(i) for i in range(17)]}, "at most 16 stop sequences"),
    ("tool without id", {"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "hint"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_requests_are_400_with_deepseeks_wording(
    mock: MockServer, case: str, change: Json, hint: str
) -> None:
    body = {k: v for k, v in (ok_body("deepseek") | change).items() if v is not None}
    response = httpx.post(mock.url + "/chat/completions", json=body, headers=AUTH)
    assert hint in message_of(check_envelope(response, "deepseek", 400))


def test_thinking_as_a_boolean_is_422(mock: MockServer) -> None:
    response = httpx.post(
        mock.url + "/chat/completions", json=ok_body("deepseek", thinking=True), headers=AUTH
    )
    check_envelope(response, "deepseek", 422)


def test_logprobs_in_thinking_mode_is_400(mock: MockServer) -> None:
    body = {
        "model": "deepseek-reasoner",
        "messages": [{"role": "user", "content": "x"}],
        "logprobs": True,
    }
    response = httpx.post(mock.url + "/chat/completions", json=body, headers=AUTH)
    assert "logprobs" in message_of(check_envelope(response, "deepseek", 400))


def test_context_overflow_quotes_the_real_figures(mock: MockServer) -> None:
    words = "hello " * 130_000  # one token each, past deepseek-chat's 131072 context
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": words}]}
    response = httpx.post(mock.url + "/chat/completions", json=body, headers=AUTH, timeout=30)
    message = message_of(check_envelope(response, "deepseek", 400))
    assert message.startswith("This model's maximum context length is 131072 tokens.")
    assert "4096 in the completion" in message


@pytest.mark.parametrize("dialect", DIALECTS)
def test_errors_use_each_dialects_envelope(mock: MockServer, dialect: str) -> None:
    response = httpx.post(
        mock.url_for(dialect) + "/chat/completions",
        json=ok_body(dialect, temperature=9),
        headers=AUTH,
    )
    check_envelope(response, dialect, 400)
    unknown = httpx.post(
        mock.url_for(dialect) + "/chat/completions",
        json=ok_body(dialect, model="nope"),
        headers=AUTH,
    )
    check_envelope(unknown, dialect, 400)


@pytest.mark.parametrize(
    ("dialect", "status"), [("deepseek", 401), ("aimlapi", 401), ("acedata", 400)]
)
def test_missing_key(mock: MockServer, dialect: str, status: int) -> None:
    response = send(mock, dialect, b"{}", headers={"Content-Type": "application/json"})
    body = check_envelope(response, dialect, status)
    if dialect == "acedata":
        assert body["error"]["code"] == "no_token"


def test_malformed_authorization_header(mock: MockServer) -> None:
    response = send(mock, "deepseek", b"{}", headers={"Authorization": "Token abc"})
    assert "Bearer" in message_of(check_envelope(response, "deepseek", 401))


def test_oversized_body_is_413() -> None:
    with MockServer(Settings(port=0, era=LATE_2025, max_body_bytes=1000)) as small:
        big = (
            b'{"model": "deepseek-chat", "messages": [{"role": "user", "content": "'
            + b"x" * 5000
            + b'"}]}'
        )
        check_envelope(send(small, "deepseek", big), "deepseek", 413)
        assert small.journal.entries()[0].status == 413


def test_unknown_path_and_method_answer_in_the_envelope(mock: MockServer) -> None:
    check_envelope(httpx.get(mock.url + "/v2/nothing"), "deepseek", 404)
    check_envelope(httpx.get(mock.url + "/chat/completions", headers=AUTH), "deepseek", 405)
    check_envelope(httpx.get(mock.url + "/deepseek/nothing"), "acedata", 404)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/chat/completions", "POST"),
        ("DELETE", "/models", "GET, HEAD"),
        ("GET", "/__mock/reset", "POST"),
    ],
)
def test_a_405_says_which_methods_are_allowed(
    mock: MockServer, method: str, path: str, allow: str
) -> None:
    response = httpx.request(method, mock.url + path, headers=AUTH)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == set(allow.split(", "))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_wrong_key_with_a_key_list(dialect: str) -> None:
    with MockServer(Settings(port=0, era=LATE_2025, api_keys=("sk-right-key-0001",))) as strict:
        wrong = openai.OpenAI(
            base_url=strict.url_for(dialect), api_key="sk-wrong-key-9999", max_retries=0
        )
        with wrong, pytest.raises(openai.AuthenticationError) as caught:
            wrong.chat.completions.create(
                model=MODELS[dialect], messages=[{"role": "user", "content": "x"}]
            )
        assert caught.value.status_code == 401
        right = openai.OpenAI(
            base_url=strict.url_for(dialect), api_key="sk-right-key-0001", max_retries=0
        )
        with right:
            right.chat.completions.create(
                model=MODELS[dialect], messages=[{"role": "user", "content": "x"}]
            )
    if dialect == "deepseek":
        assert "****9999" in str(caught.value)


def test_sdk_exception_classes(mock: MockServer) -> None:
    with openai.OpenAI(base_url=mock.base_url, api_key="sk-test", max_retries=0) as sdk:
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
        assert caught.value.code == "invalid_request_error"
        assert caught.value.type == "invalid_request_error"
        with pytest.raises(openai.UnprocessableEntityError):
            sdk.chat.completions.create(
                model="deepseek-chat",
                messages=[{"role": "user", "content": "x"}],
                extra_body={"thinking": True},
            )
    statuses = [entry.status for entry in mock.journal.entries()]
    assert statuses == [400, 422]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = st.sampled_from(
    ["model", "messages", "temperature", "top_p", "max_tokens", "stop", "stream", "tools",
     "tool_choice", "response_format", "logprobs", "top_logprobs", "n", "thinking", "stream_options",
     "frequency_penalty", "presence_penalty"]
)  # fmt: skip


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dialect=st.sampled_from(DIALECTS), field=FIELDS, value=JSON_VALUES)
def test_any_mutated_body_gets_an_answer_never_a_500(
    server: MockServer, dialect: str, field: str, value: Any
) -> None:
    body = ok_body(dialect) | {field: value}
    response = httpx.post(server.url_for(dialect) + "/chat/completions", json=body, headers=AUTH)
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code != 200:
        assert_valid(f"{dialect}/error.schema.json", response.json())
    elif not body.get("stream"):
        assert_valid(f"{dialect}/chat-completion.schema.json", response.json())


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_server(server: MockServer, content: bytes) -> None:
    response = send(server, "deepseek", content)
    assert response.status_code in (400, 422), response.text
    assert_valid("deepseek/error.schema.json", response.json())
