"""The Messages stream as raw frames: named events in Anthropic's order, every delta kind, and
the faults every dialect has (in-band error, cuts, resets, stalls, broken events)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic.types import MessageParam

from mockserver import MockServer, Reply, Rule, ToolCall

Json = dict[str, Any]
HI: list[MessageParam] = [{"role": "user", "content": "hi"}]
KEY = {"x-api-key": "sk-test"}
TOOL = {
    "name": "lookup",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}


@dataclass(frozen=True)
class Frames:
    events: list[tuple[str, Json]]  # (event name, data)
    comments: list[str]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def parse(body: bytes) -> Frames:
    """Strictly: each event is `event: NAME` then `data: JSON`, a blank line after it."""
    text = body.decode("utf-8")
    assert text.endswith("\n\n") and "\r" not in text
    events: list[tuple[str, Json]] = []
    comments: list[str] = []
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        if lines[0].startswith(":"):
            comments.append(lines[0])
            continue
        assert len(lines) == 2, lines
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), lines
        name, data = lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])
        assert data["type"] == name, "the event name is the data's type"
        events.append((name, data))
    return Frames(events, comments)


def _stream(server: MockServer, body: Json, headers: dict[str, str] | None = None) -> Frames:
    answer = httpx.post(
        server.url_for("anthropic") + "/v1/messages",
        json=body | {"stream": True},
        headers=KEY | (headers or {}),
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    return parse(answer.content)


def test_events_come_in_the_documented_order(mock_now: MockServer) -> None:
    frames = _stream(mock_now, {"model": "deepseek-flash", "max_tokens": 80, "messages": HI})
    names = frames.names
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert "[DONE]" not in json.dumps(frames.events)
    # Two blocks, thinking then text, each opened, filled and closed in turn.
    body = names[1:-2]
    starts = [i for i, n in enumerate(body) if n == "content_block_start"]
    stops = [i for i, n in enumerate(body) if n == "content_block_stop"]
    assert len(starts) == len(stops) == 2 and starts[0] < stops[0] < starts[1] < stops[1]
    indexes = [data["index"] for name, data in frames.events if "index" in data]
    assert indexes == sorted(indexes) and set(indexes) == {0, 1}
    deltas = [
        data["delta"]["type"] for name, data in frames.events if name == "content_block_delta"
    ]
    thinking = [d for d in deltas if d != "text_delta"]
    assert thinking[-1] == "signature_delta" and set(thinking[:-1]) == {"thinking_delta"}
    assert deltas.index("text_delta") > deltas.index("signature_delta")
    start = frames.events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["output_tokens"] == 0 and start["usage"]["input_tokens"] > 0
    (_, final), (_, stop) = frames.events[-2:]
    assert final["delta"]["stop_reason"] in ("end_turn", "max_tokens")
    assert final["usage"]["output_tokens"] > 0
    assert stop == {"type": "message_stop"}


def test_a_tool_call_streams_as_input_json_delta(mock_now: MockServer) -> None:
    mock_now.add(
        Rule(
            name="call",
            reply=Reply(
                content="",
                reasoning_content="Look it up.",
                tool_calls=(ToolCall(name="lookup", arguments='{"q": "naïve 😊 search"}'),),
            ),
        )
    )
    frames = _stream(
        mock_now,
        {"model": "deepseek-flash", "max_tokens": 80, "messages": HI, "tools": [TOOL]},
    )
    opened = [
        data["content_block"] for name, data in frames.events if name == "content_block_start"
    ]
    assert [block["type"] for block in opened] == ["thinking", "tool_use"]
    assert opened[1]["name"] == "lookup" and opened[1]["input"] == {}
    assert opened[1]["id"].startswith("call_")
    partial = "".join(
        data["delta"]["partial_json"]
        for name, data in frames.events
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(partial) == {"q": "naïve 😊 search"}
    assert frames.events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_keep_alives_are_comments_the_sdk_skips(mock_now: MockServer) -> None:
    frames = _stream(
        mock_now,
        {"model": "deepseek-flash", "max_tokens": 10, "messages": HI},
        {"X-Mock-Delivery": "keep_alives=2"},
    )
    assert frames.comments == [": keep-alive", ": keep-alive"]
    with (
        anthropic.Anthropic(
            base_url=mock_now.url_for("anthropic"), api_key="sk-test", max_retries=0
        ) as sdk,
        sdk.messages.stream(
            model="deepseek-flash",
            max_tokens=10,
            messages=HI,
            extra_headers={"X-Mock-Delivery": "keep_alives=2"},
        ) as stream,
    ):
        assert stream.get_final_message().content


def test_error_at_is_an_error_event_and_nothing_follows(mock_now: MockServer) -> None:
    body: Json = {"model": "deepseek-flash", "max_tokens": 40, "messages": HI}
    frames = _stream(mock_now, body, {"X-Mock-Fault": "error_at=3"})
    assert frames.names == ["message_start", "content_block_start", "ping", "error"]
    assert frames.events[-1][1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with (
        anthropic.Anthropic(
            base_url=mock_now.url_for("anthropic"), api_key="sk-test", max_retries=0
        ) as sdk,
        pytest.raises(anthropic.APIStatusError) as raised,
        sdk.messages.stream(
            **body,
            extra_headers={"X-Mock-Fault": "error_at=3"},
        ) as stream,
    ):
        stream.get_final_message()
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["error"]["type"] == "overloaded_error"


def test_error_at_zero_without_a_stream_is_the_error_object(mock_now: MockServer) -> None:
    answer = httpx.post(
        mock_now.url_for("anthropic") + "/v1/messages",
        json={"model": "deepseek-flash", "max_tokens": 10, "messages": HI},
        headers=KEY | {"X-Mock-Fault": "error_at=0"},
    )
    assert answer.status_code == 200
    assert answer.json()["type"] == "error"


def test_cut_after_ends_without_message_stop(mock_now: MockServer) -> None:
    body = {"model": "deepseek-flash", "max_tokens": 40, "messages": HI}
    frames = _stream(mock_now, body, {"X-Mock-Fault": "cut_after=5"})
    assert len(frames.events) == 5 and "message_stop" not in frames.names
    (entry,) = mock_now.journal.entries()
    assert entry.dialect == "anthropic" and entry.stream and entry.complete


def test_reset_after_breaks_the_connection(mock_now: MockServer) -> None:
    # Once the stream has begun the SDK lets its HTTP client's own error through.
    with (
        anthropic.Anthropic(
            base_url=mock_now.url_for("anthropic"), api_key="sk-test", max_retries=0
        ) as sdk,
        pytest.raises(httpx2.RemoteProtocolError),
        sdk.messages.stream(
            model="deepseek-flash",
            max_tokens=40,
            messages=HI,
            extra_headers={"X-Mock-Fault": "reset_after=4"},
        ) as stream,
    ):
        stream.get_final_message()


def test_stall_after_times_the_sdk_out(mock_now: MockServer) -> None:
    with (
        anthropic.Anthropic(
            base_url=mock_now.url_for("anthropic"), api_key="sk-test", max_retries=0, timeout=0.5
        ) as sdk,
        pytest.raises(httpx2.ReadTimeout),
        sdk.messages.stream(
            model="deepseek-flash",
            max_tokens=40,
            messages=HI,
            extra_headers={"X-Mock-Fault": "stall_after=3"},
        ) as stream,
    ):
        stream.get_final_message()
    mock_now.journal.wait_for(1)


def test_malformed_at_cuts_an_event_mid_json(mock_now: MockServer) -> None:
    answer = httpx.post(
        mock_now.url_for("anthropic") + "/v1/messages",
        json={"model": "deepseek-flash", "max_tokens": 40, "messages": HI, "stream": True},
        headers=KEY | {"X-Mock-Fault": "malformed_at=4"},
    )
    blocks = answer.text.split("\n\n")
    data = blocks[4].split("\ndata: ", 1)[1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)
    assert json.loads(blocks[5].split("\ndata: ", 1)[1])["type"] == "content_block_delta"


@pytest.mark.parametrize("at", [0, 1, 2, 3])
def test_malformed_at_cuts_inside_the_json_after_the_event_line(
    mock_now: MockServer, at: int
) -> None:
    """The cut falls in the data's JSON whatever the event's name, the short ping's too."""
    answer = httpx.post(
        mock_now.url_for("anthropic") + "/v1/messages",
        json={"model": "deepseek-flash", "max_tokens": 40, "messages": HI, "stream": True},
        headers=KEY | {"X-Mock-Fault": f"malformed_at={at}"},
    )
    cut = answer.text.split("\n\n")[at]
    name, data = cut.split("\ndata: ", 1)
    assert name.startswith("event: ") and data.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)


def test_a_stream_error_status_before_the_body_is_the_envelope(mock_now: MockServer) -> None:
    answer = httpx.post(
        mock_now.url_for("anthropic") + "/v1/messages",
        json={"model": "deepseek-flash", "max_tokens": 40, "messages": HI, "stream": True},
        headers=KEY | {"X-Mock-Fault": "529"},
    )
    assert answer.status_code == 529
    assert answer.json()["error"]["type"] == "overloaded_error"
