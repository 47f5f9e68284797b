"""A finished completion replayed as the deltas and SSE frames the live API sends.

One delta per token of DeepSeek's tokenizer: a token that ends inside a UTF-8 character gives
an empty piece and the character arrives with the next one, as in the live captures. Joining
the deltas gives back exactly the non-streamed message.

A stream is mostly chunks that are alike but for their piece of text. Those come as one `Run`:
framing encodes its chunk once, with a stand-in where the text goes, and puts each piece's
JSON in its place, so a 10,000-token stream costs one JSON dump of a string per token rather
than a chunk's dicts and a dump of each. A JSON string's encoding does not depend on what
surrounds it, so the frames are the bytes that encoding each chunk would give (checked for
every dialect in tests/test_frames.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mockserver import tokens
from mockserver.responder import Choice

Json = dict[str, Any]
DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"

# Where a run's text goes while its chunk is encoded once: no piece of text holds a NUL and
# this suffix by accident (random per process; a stand-in found anywhere else is not used).
STAND_IN = "\x00piece-" + secrets.token_hex(8)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a setattr call per field, per token
class Delta:
    """One chunk's worth of a choice: the delta object, and the finish reason on the last one."""

    index: int
    delta: Json
    finish_reason: str | None = None
    logprob: Json | None = None  # the logprobs item of the token this delta carries


@dataclass(frozen=True, slots=True)
class Pieces:
    """Deltas of one choice alike but for their text, one per piece: `delta(piece)` each."""

    index: int
    delta: Callable[[str], Json]
    pieces: Sequence[str]


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive chunks alike but for one string: `chunk(value)` for each of `values`."""

    chunk: Callable[[str], Json]
    values: Sequence[str]


Part = Json | Run  # what a dialect's chunks give: a chunk, or a run of them


def expand(parts: Iterable[Part]) -> Iterator[Json]:
    """Every chunk on its own, for whatever reads chunks rather than frames."""
    for part in parts:
        if isinstance(part, Run):
            yield from map(part.chunk, part.values)
        else:
            yield part


def chunked(items: Iterable[Delta | Pieces], chunk: Callable[[Delta], Json]) -> Iterator[Part]:
    """A dialect's chunks from `deltas()`: `chunk(delta)` for each, pieces as one run."""
    for item in items:
        if isinstance(item, Delta):
            yield chunk(item)
        else:
            yield Run(_piece_chunk(item, chunk), item.pieces)


def _piece_chunk(item: Pieces, chunk: Callable[[Delta], Json]) -> Callable[[str], Json]:
    index, delta = item.index, item.delta
    return lambda piece: chunk(Delta(index, delta(piece)))


def deltas(choice: Choice, *, role_chunk: bool) -> Iterator[Delta | Pieces]:
    """DeepSeek's order: (role), reasoning pieces, content pieces, tool calls, then finish.

    With `role_chunk` the stream opens with `{"role": "assistant", "content": ""}` (or, for a
    thinking model, `content: null, reasoning_content: ""`); without it the first delta
    already carries text (AceData). Dialects add their own per-delta extras. Text comes as
    `Pieces`, but for content with logprobs: each of those deltas carries its own.
    """
    i = choice.index
    thinking = choice.reasoning is not None
    if role_chunk:
        opening: Json = {"role": "assistant", "content": ""}
        if thinking:
            opening = {"role": "assistant", "content": None, "reasoning_content": ""}
        yield Delta(i, opening)
    if thinking:
        yield Pieces(i, _reasoning_delta, tokens.pieces(choice.reasoning or ""))
    content = tokens.pieces(choice.content or "")
    content_delta = _thinking_content_delta if thinking else _content_delta
    if choice.logprobs:
        logprobs = choice.logprobs
        for n, piece in enumerate(content):
            logprob = logprobs[n] if n < len(logprobs) else None
            yield Delta(i, content_delta(piece), logprob=logprob)
    else:
        yield Pieces(i, content_delta, content)
    for k, call in enumerate(choice.tool_calls):
        header = {"index": k, "id": call.id, "type": "function"}
        yield Delta(
            i, {"tool_calls": [header | {"function": {"name": call.name, "arguments": ""}}]}
        )
        yield Pieces(i, _arguments_delta(k), tokens.pieces(call.arguments))
    closing: Json = {"content": "", "reasoning_content": None} if thinking else {"content": ""}
    yield Delta(i, {} if choice.tool_calls else closing, choice.finish_reason)


def _content_delta(piece: str) -> Json:
    return {"content": piece}


def _thinking_content_delta(piece: str) -> Json:
    return {"content": piece, "reasoning_content": None}


def _reasoning_delta(piece: str) -> Json:
    return {"content": None, "reasoning_content": piece}


def _arguments_delta(k: int) -> Callable[[str], Json]:
    return lambda fragment: {"tool_calls": [{"index": k, "function": {"arguments": fragment}}]}


def sse(payloads: Iterable[Part], dumps: Callable[[Any], bytes]) -> Iterator[bytes]:
    """`data: <json>` and a blank line per event, then `data: [DONE]`. JSON never contains a
    raw newline, so nothing in a prompt or reply can break the framing. Lazy: a frame is
    built when delivery asks for it, so the first one leaves before the last is made."""
    for payload in payloads:
        if isinstance(payload, Run):
            yield from framed_run(payload, dumps, b"data: ", b"\n\n")
        else:
            yield b"data: %b\n\n" % dumps(payload)
    yield DONE


def framed_run(
    run: Run, dumps: Callable[[Any], bytes], before: bytes, after: bytes
) -> Iterator[bytes]:
    """Each chunk of `run` encoded and framed by `before` and `after`: the chunk encoded once
    around a stand-in, each value's JSON put where the stand-in was."""
    if not run.values:
        return
    stand_in = dumps(STAND_IN)
    head, found, tail = dumps(run.chunk(STAND_IN)).partition(stand_in)
    if not found or stand_in in tail:  # the stand-in is not the one value: as is
        for value in run.values:
            yield before + dumps(run.chunk(value)) + after
        return
    head, tail = before + head, tail + after
    for value in run.values:
        yield head + dumps(value) + tail


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
