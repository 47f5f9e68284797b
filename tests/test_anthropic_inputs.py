"""Bad input on the Anthropic surface gets a 400 in its envelope, never a 500; the schemas and
the surface's data can fail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mockserver import MockServer
from mockserver.anthropic.surface import document, surface
from mockserver.catalog import packaged
from mockserver.schemas import assert_valid, problems

Json = dict[str, Any]
KEY = {"x-api-key": "sk-test"}
OK: Json = {
    "model": "deepseek-flash",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "user", "any"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "text", "role", "content", "id", "name", "input", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["model", "max_tokens", "messages", "system", "stop_sequences", "stream", "temperature",
     "top_p", "tools", "tool_choice", "thinking", "metadata", "output_config"]
)  # fmt: skip


def _post(server: MockServer, body: Any) -> httpx.Response:
    return httpx.post(server.url_for("anthropic") + "/v1/messages", json=body, headers=KEY)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=FIELDS, value=VALUES)
def test_any_mutated_field_gets_an_answer_never_a_500(
    server_now: MockServer, field: str, value: Any
) -> None:
    response = _post(server_now, OK | {field: value})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert_valid("anthropic/error.schema.json", response.json())


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(role=st.sampled_from(["user", "assistant"]), content=VALUES)
def test_any_message_content_gets_an_answer_never_a_500(
    server_now: MockServer, role: str, content: Any
) -> None:
    messages = [{"role": role, "content": content}, {"role": "user", "content": "go on"}]
    response = _post(server_now, OK | {"messages": messages})
    assert response.status_code in (200, 400), response.text


def test_a_body_that_is_not_json_is_a_400_in_the_envelope(mock_now: MockServer) -> None:
    response = httpx.post(
        mock_now.url_for("anthropic") + "/v1/messages",
        content=b'{"model": ',
        headers=KEY | {"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"temperature": "hot"}, "temperature: Input should be a valid number, got a string"),
        ({"top_p": True}, "top_p: Input should be a valid number, got a boolean"),
        ({"stream": "yes"}, "stream: Input should be a valid boolean, got a string"),
        (
            {"messages": [{"role": "user", "content": []}]},
            "messages.0: all messages must have non-empty content except for the optional "
            "final assistant message",
        ),
    ],
)
def test_wrong_types_are_worded_as_anthropic_words_them(
    mock_now: MockServer, extra: Json, says: str
) -> None:
    """Checked on this surface, not left to the chat parser, whose serde words would leak."""
    response = _post(mock_now, OK | extra)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == says


def test_an_empty_final_assistant_turn_is_still_taken(mock_now: MockServer) -> None:
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": []}]
    assert _post(mock_now, OK | {"messages": turns}).status_code == 200


@pytest.mark.parametrize("user_id", [7, {}, ["u"], True])
def test_a_user_id_that_is_not_a_string_is_a_400(mock_now: MockServer, user_id: Any) -> None:
    """It keys the prompt cache; the request schema says a string, and Schemathesis holds the
    served document to it."""
    response = _post(mock_now, OK | {"metadata": {"user_id": user_id}})
    assert response.status_code == 400
    assert "metadata.user_id" in response.json()["error"]["message"]
    assert _post(mock_now, OK | {"metadata": {"user_id": None}}).status_code == 200


def test_a_body_over_the_limit_is_request_too_large() -> None:
    with MockServer(max_body_bytes=1000) as server:
        response = _post(server, OK | {"system": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


MESSAGE: Json = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "deepseek-flash",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        ("anthropic/message.schema.json", MESSAGE | {"type": "chat.completion"}),
        ("anthropic/message.schema.json", MESSAGE | {"stop_reason": "stop"}),
        ("anthropic/message.schema.json", MESSAGE | {"content": [{"type": "thinking", "thinking": "x"}]}),
        ("anthropic/message.schema.json", MESSAGE | {"content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}),
        ("anthropic/message.schema.json", {k: v for k, v in MESSAGE.items() if k != "usage"}),
        ("anthropic/stream-event.schema.json", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}),
        ("anthropic/stream-event.schema.json", {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 1}}),
        ("anthropic/stream-event.schema.json", {"type": "message_start", "message": MESSAGE}),
        ("anthropic/stream-event.schema.json", {"type": "content_block_stop"}),
        ("anthropic/error.schema.json", {"error": {"message": "x", "type": "api_error"}}),
        ("anthropic/error.schema.json", {"type": "error", "error": {"message": "x"}}),
        ("anthropic/request.schema.json", {"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    ],
)  # fmt: skip
def test_the_schemas_refuse_what_breaks_the_format(name: str, instance: Json) -> None:
    assert problems(name, instance)


def test_every_mapped_model_is_served_in_its_era() -> None:
    catalog = packaged("deepseek")
    for era in catalog.eras:
        here = surface(era)
        targets = [model for _, model in here.prefixes] + [here.fallback or "deepseek-flash"]
        if here.fallback is None:
            targets = targets[:-1]
        for model in targets:
            assert model in era.models, f"{era.name}: {model} is not served"
        for name in ("claude-opus-4", "claude-3-haiku", "deepseek-v4-pro"):
            assert here.model_for(name) in era.models or here.model_for(name) == name
    assert [entry["from"] for entry in document()["eras"]] == sorted(
        entry["from"] for entry in document()["eras"]
    )
    for entry in document()["eras"]:
        assert entry["source"], "every entry names its source"
