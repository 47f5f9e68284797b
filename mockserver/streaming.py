"""A finished completion replayed as the deltas and SSE frames the live API sends.

One delta per token of DeepSeek's tokenizer: a token that ends inside a UTF-8 character gives
an empty piece and the character arrives with the next one, as in the live captures. Joining
the deltas gives back exactly the non-streamed message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mockserver import tokens
from mockserver.responder import Choice

Json = dict[str, Any]
DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a setattr call per field, per token
class Delta:
    """One chunk's worth of a choice: the delta object, and the finish reason on the last one."""

    index: int
    delta: Json
    finish_reason: str | None = None
    logprob: Json | None = None  # the logprobs item of the token this delta carries


def deltas(choice: Choice, *, role_chunk: bool) -> Iterator[Delta]:
    """DeepSeek's order: (role), reasoning pieces, content pieces, tool calls, then finish.

    With `role_chunk` the stream opens with `{"role": "assistant", "content": ""}` (or, for a
    thinking model, `content: null, reasoning_content: ""`); without it the first delta
    already carries text (AceData). Dialects add their own per-delta extras.
    """
    i = choice.index
    thinking = choice.reasoning is not None
    if role_chunk:
        opening: Json = {"role": "assistant", "content": ""}
        if thinking:
            opening = {"role": "assistant", "content": None, "reasoning_content": ""}
        yield Delta(i, opening)
    if thinking:
        for piece in tokens.pieces(choice.reasoning or ""):
            yield Delta(i, {"content": None, "reasoning_content": piece})
    logprobs = choice.logprobs or []
    for n, piece in enumerate(tokens.pieces(choice.content or "")):
        delta: Json = (
            {"content": piece, "reasoning_content": None} if thinking else {"content": piece}
        )
        yield Delta(i, delta, logprob=logprobs[n] if n < len(logprobs) else None)
    for k, call in enumerate(choice.tool_calls):
        header = {"index": k, "id": call.id, "type": "function"}
        yield Delta(
            i, {"tool_calls": [header | {"function": {"name": call.name, "arguments": ""}}]}
        )
        for fragment in tokens.pieces(call.arguments):
            yield Delta(i, {"tool_calls": [{"index": k, "function": {"arguments": fragment}}]})
    closing: Json = {"content": "", "reasoning_content": None} if thinking else {"content": ""}
    yield Delta(i, {} if choice.tool_calls else closing, choice.finish_reason)


def sse(payloads: Iterable[Json], dumps: Callable[[Any], bytes]) -> Iterator[bytes]:
    """`data: <json>` and a blank line per event, then `data: [DONE]`. JSON never contains a
    raw newline, so nothing in a prompt or reply can break the framing. Lazy: a frame is
    built when delivery asks for it, so the first one leaves before the last is made."""
    for payload in payloads:
        yield b"data: %b\n\n" % dumps(payload)
    yield DONE


def join(chunks: Iterable[Json]) -> Json:
    """Reassemble a streamed message (content, reasoning, tool calls) for choice 0."""
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, Json] = {}
    finish = None
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {
        "content": "".join(content),
        "reasoning_content": "".join(reasoning),
        "tool_calls": [calls[k] for k in sorted(calls)],
        "finish_reason": finish,
    }
