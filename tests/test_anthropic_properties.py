"""Property: for any request, the stream's events joined back together are the non-streamed
message (blocks, stop reason, usage), and both fit the schemas."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings, strategies as st

from mockserver import MockServer, tokens
from mockserver.schemas import assert_valid
from tests.test_anthropic_stream import parse

Json = dict[str, Any]
KEY = {"x-api-key": "sk-test"}
TOOL = {
    "name": "lookup",
    "description": "Look a word up",
    "input_schema": {
        "type": "object",
        "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["q"],
    },
}
WORDS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
)


@st.composite
def requests(draw: st.DrawFn) -> Json:
    body: Json = {
        "model": draw(st.sampled_from(["deepseek-flash", "deepseek-v4-pro", "claude-sonnet-4-5"])),
        "max_tokens": draw(st.integers(1, 120)),
        "messages": [{"role": "user", "content": draw(WORDS)}],
    }
    if draw(st.booleans()):
        body["thinking"] = {"type": draw(st.sampled_from(["enabled", "disabled"]))}
    if draw(st.booleans()):
        body["system"] = draw(WORDS)
    if draw(st.booleans()):
        body["stop_sequences"] = draw(
            st.lists(st.sampled_from(["the", "a", ".", "mock"]), max_size=2)
        )
    if draw(st.booleans()):
        body["tools"] = [TOOL]
        body["tool_choice"] = {"type": draw(st.sampled_from(["auto", "any", "none"]))}
    return body


def join(events: list[tuple[str, Json]]) -> Json:
    """The message a client rebuilds from the events (an oracle independent of the server)."""
    message: Json = {}
    blocks: list[Json] = []
    partial: dict[int, str] = {}
    for name, data in events:
        if name == "message_start":
            message = dict(data["message"])
        elif name == "content_block_start":
            assert data["index"] == len(blocks)
            blocks.append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = blocks[data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
            else:
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop":
            if data["index"] in partial:
                blocks[data["index"]]["input"] = json.loads(partial[data["index"]])
        elif name == "message_delta":
            message |= data["delta"]
            message["usage"] = message["usage"] | data["usage"]
    return message | {"content": blocks}


def _without_ids(message: Json) -> Json:
    """Message and tool-call ids are drawn afresh for every answer."""
    blocks = [{k: v for k, v in b.items() if k != "id"} for b in message["content"]]
    return {k: v for k, v in message.items() if k != "id"} | {"content": blocks}


def _post(server: MockServer, body: Json) -> httpx.Response:
    server.reset()  # a cold cache for both: the second would otherwise read the first's prefix
    return httpx.post(server.url_for("anthropic") + "/v1/messages", json=body, headers=KEY)


@settings(
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=requests())
def test_joined_events_equal_the_message(server_now: MockServer, body: Json) -> None:
    assert_valid("anthropic/request.schema.json", body)
    whole = _post(server_now, body)
    streamed = _post(server_now, body | {"stream": True})
    if whole.status_code != 200:  # refused (e.g. tool_choice in thinking mode): the same way
        assert streamed.status_code == whole.status_code
        assert streamed.json() == whole.json()
        assert_valid("anthropic/error.schema.json", whole.json())
        return
    message = whole.json()
    assert_valid("anthropic/message.schema.json", message)
    frames = parse(streamed.content)
    for _, data in frames.events:
        assert_valid("anthropic/stream-event.schema.json", data)
    assert _without_ids(join(frames.events)) == _without_ids(message)
    usage = message["usage"]
    calls = "".join(
        b["name"] + json.dumps(b["input"]) for b in message["content"] if b["type"] == "tool_use"
    )
    if not calls:
        # Each block is its own run of tokens (the thinking ends before the text starts), so
        # the counts add up block by block, not as one joined string.
        counted = sum(
            tokens.count(b.get("text", "") + b.get("thinking", "")) for b in message["content"]
        )
        assert usage["output_tokens"] == counted <= body["max_tokens"]
    for stop in body.get("stop_sequences", []):
        text_only = "".join(b.get("text", "") for b in message["content"])
        assert stop not in text_only
