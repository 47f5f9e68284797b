"""A finished completion replayed as Anthropic's named SSE events, in the documented order:
message_start, then per block content_block_start, (ping after the first), its deltas,
content_block_stop; then message_delta (stop reason, usage) and message_stop.

One delta per token of DeepSeek's tokenizer, as on the chat stream; a thinking block ends with
its signature_delta, a tool_use block streams its input as input_json_delta pieces. Joining the
deltas gives back exactly the non-streamed message (tests/test_anthropic_properties.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from mockserver import tokens
from mockserver.anthropic.message import (
    IN_STREAM_ERROR,
    render,
    signature,
    stop_reason,
    usage_json,
)
from mockserver.responder import Completion
from mockserver.streaming import Part, Run, framed_run

Json = dict[str, Any]


def _deltas(block: Json, index: int) -> Iterator[Part]:
    """A block's content_block_delta events: its pieces as one run."""
    kind = block["type"]
    if kind == "thinking":
        yield Run(
            _delta_event(index, "thinking_delta", "thinking"), tokens.pieces(block["thinking"])
        )
        delta = {"type": "signature_delta", "signature": signature(block["thinking"])}
        yield {"type": "content_block_delta", "index": index, "delta": delta}
    elif kind == "text":
        yield Run(_delta_event(index, "text_delta", "text"), tokens.pieces(block["text"]))
    else:
        yield Run(_delta_event(index, "input_json_delta", "partial_json"), block["pieces"])


def _delta_event(index: int, kind: str, field: str) -> Callable[[str], Json]:
    return lambda piece: {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": kind, field: piece},
    }


def _opening(block: Json) -> Json:
    """A block as content_block_start announces it: empty, filled by its deltas."""
    kind = block["type"]
    if kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if kind == "text":
        return {"type": "text", "text": ""}
    return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}


def events(c: Completion, include_usage: bool = False) -> Iterator[Part]:
    whole = render(c)
    choice = c.choices[0]
    usage = usage_json(c.usage)
    yield {
        "type": "message_start",
        "message": whole
        | {
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage | {"output_tokens": 0},
        },
    }
    for index, block in enumerate(whole["content"]):
        if block["type"] == "tool_use":
            # The input as JSON text, piece by piece: the pieces join into the same object.
            block = block | {"pieces": tokens.pieces(orjson.dumps(block["input"]).decode())}
        yield {"type": "content_block_start", "index": index, "content_block": _opening(block)}
        if index == 0:
            yield {"type": "ping"}
        yield from _deltas(block, index)
        yield {"type": "content_block_stop", "index": index}
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(choice), "stop_sequence": choice.stop_sequence},
        "usage": usage,
    }
    yield {"type": "message_stop"}


def sse(payloads: Iterable[Part], dumps: Callable[[Any], bytes]) -> Iterator[bytes]:
    """`event: <type>` and `data: <json>` per event, and a blank line; no [DONE]."""
    for payload in payloads:
        if isinstance(payload, Run):  # its events share their type: one `event:` line for all
            event = payload.chunk("")["type"].encode()
            yield from framed_run(payload, dumps, b"event: " + event + b"\ndata: ", b"\n\n")
        else:
            yield b"event: " + payload["type"].encode() + b"\ndata: " + dumps(payload) + b"\n\n"


def error_event(dumps: Callable[[Any], bytes]) -> bytes:
    """Anthropic's mid-stream error: the SDK raises APIStatusError-less `APIError` on it."""
    return b"event: error\ndata: " + dumps(IN_STREAM_ERROR) + b"\n\n"
