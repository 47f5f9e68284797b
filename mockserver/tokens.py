"""DeepSeek's tokenizer and chat template: exact token counts and the pieces a stream sends.

The encoding itself is `bpe.py` (DeepSeek's vocabulary, run by tiktoken); this module counts
with it, caches what it counted and lays out DeepSeek's chat template.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from mockserver import bpe
from mockserver.caches import ByteBoundedCache

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
TOOL_OUTPUT_BEGIN = "<｜tool▁output▁begin｜>"
TOOL_OUTPUT_END = "<｜tool▁output▁end｜>"


def encode(text: str) -> tuple[int, ...]:
    """Token ids of `text`; special tokens inside the text count as one token each."""
    if not text:
        return ()
    return _encode(text)


# A reply is counted, truncated, split into stream pieces and given logprobs: one encoding
# serves them all, and a repeated request (the usual case in a test suite) costs nothing.
# Bounded by bytes (a token id costs a tuple slot and an int object, ~36 bytes; a character ~1),
# so a multi-megabyte prompt is counted again rather than pinned; `/__mock/reset` empties it.
# A text is kept from its second sighting on: a new prompt every request (a counter at its
# end) would otherwise fill the bound with texts and last pieces never asked for again, ~7 MiB
# of a server's memory and a put and an eviction per request, while the pieces it shares with
# the others are kept all the same.
ENCODE_CACHE_BYTES = 16 * 1024 * 1024
_encoded: ByteBoundedCache[str, tuple[int, ...]] = ByteBoundedCache(
    ENCODE_CACHE_BYTES, lambda text, ids: 100 + len(text) + 36 * len(ids), doorkeeper=True
)


def _encode(text: str) -> tuple[int, ...]:
    ids = _encoded.get(text)
    if ids is None:
        if len(text) <= PIECE_CHARS:
            ids = _encode_fresh(text)
        else:
            ids = tuple(itertools.chain.from_iterable(map(_encode_piece, pieces_of(text))))
        _encoded.put(text, ids)
    return ids


def _encode_fresh(text: str) -> tuple[int, ...]:
    return tuple(bpe.encoder().encode(text))


def _encode_piece(piece: str) -> tuple[int, ...]:
    ids = _encoded.get(piece)
    if ids is None:
        ids = _encode_fresh(piece)
        _encoded.put(piece, ids)
    return ids


# Encoding costs ~0.14 µs a character, and a test suite or a load test sends the same long
# text again with something new at its end (a counter, the next question). A long text is
# encoded in pieces of about this many characters, each kept in the cache, so only the piece
# that changed is encoded again.
PIECE_CHARS = 256
# Where a piece may end: a space between two ASCII letters. The tokenizer always cuts there
# itself, and what comes before never changes what comes after: its digit and CJK splits do
# not touch letters or spaces; in its word pattern, every alternative that takes a letter
# stops at a space, and none that takes a space can begin before a letter; no added token
# has a space or begins or ends with an ASCII letter (tokens.json, checked in
# tests/test_tokens.py); and BPE runs within one pre-token. So the pieces' ids, one after
# the other, are the text's ids.
_CUT = re.compile(r"(?<=[A-Za-z]) (?=[A-Za-z])")


def pieces_of(text: str) -> list[str]:
    """`text` cut at the first allowed place past every PIECE_CHARS characters: the same
    beginning is always cut the same way, whatever follows it."""
    pieces = []
    start = 0
    while len(text) - start > PIECE_CHARS:
        found = _CUT.search(text, start + PIECE_CHARS)
        if found is None:
            break
        pieces.append(text[start : found.start()])
        start = found.start()
    pieces.append(text[start:])
    return pieces


def cache_bytes() -> int:
    return _encoded.bytes


def clear_cache() -> None:
    _encoded.clear()
    _pieces.clear()


def count(text: str) -> int:
    return len(encode(text))


def _text(content: Any) -> str:
    """Message content as the model sees it: a string, or the text of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


THINK = "<think>"
END_THINK = "</think>"
LATEST_REMINDER = "<｜latest_reminder｜>"
FIM_BEGIN, FIM_HOLE, FIM_END = "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"
SPECIALS = frozenset(
    {
        BOS,
        EOS,
        USER,
        ASSISTANT,
        TOOL_OUTPUT_BEGIN,
        TOOL_OUTPUT_END,
        THINK,
        END_THINK,
        LATEST_REMINDER,
        FIM_BEGIN,
        FIM_HOLE,
        FIM_END,
    }
)


def _call_text(message: Mapping[str, Any]) -> str:
    calls = message.get("tool_calls")
    text = ""
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            text += str(function.get("name", "")) + str(function.get("arguments", ""))
    return text


def prompt_segments(
    messages: Sequence[Mapping[str, Any]],
    tools_text: str = "",
    *,
    template: str = "v3",
    thinking: bool = False,
) -> list[str]:
    """DeepSeek's chat template as a list: BOS, system text, `<｜User｜>` turns, `<｜Assistant｜>`
    turns closed by EOS, and a final `<｜Assistant｜>` that the reply continues from. Special
    tokens are entries of their own.

    The "v3.2" template (V3.2 and V4) opens every assistant turn with a think marker, as
    DeepSeek's V3.2 encoding does: `</think>` for a turn whose reasoning is dropped (every
    turn in non-thinking mode, and turns before the last user message in thinking mode),
    `<think>` + reasoning + `</think>` for a turn of the current tool loop in thinking mode,
    and `<think>` (thinking) or `</think>` after the final `<｜Assistant｜>`."""
    marked = template == "v3.2"
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    out = [BOS]
    if tools_text:
        out.append(tools_text)
    for index, message in enumerate(messages):
        role = message.get("role")
        text = _text(message.get("content"))
        if role in ("system", "developer"):
            out.append(text)
        elif role == "latest_reminder":
            out += [LATEST_REMINDER, text]
        elif role == "user":
            out += [USER, text]
        elif role == "assistant":
            out.append(ASSISTANT)
            reasoning = message.get("reasoning_content")
            keeps_reasoning = thinking and index > last_user
            if message.get("prefix"):
                # A prefix is the start of the reply itself: no end-of-sentence after it.
                if marked and thinking:
                    out += [THINK, _text(reasoning)]
                    if text:
                        out += [END_THINK, text]
                else:
                    out += [END_THINK, text] if marked else [text]
                return out
            if marked and keeps_reasoning:
                out += [THINK, _text(reasoning), END_THINK]
            elif marked:
                out.append(END_THINK)
            out += [text + _call_text(message), EOS]
        elif role == "tool":
            out += [TOOL_OUTPUT_BEGIN, text, TOOL_OUTPUT_END]
    out.append(ASSISTANT)
    if marked:
        out.append(THINK if thinking else END_THINK)
    return out


def render_prompt(
    messages: Sequence[Mapping[str, Any]],
    tools_text: str = "",
    *,
    template: str = "v3",
    thinking: bool = False,
) -> str:
    return "".join(prompt_segments(messages, tools_text, template=template, thinking=thinking))


def prompt_ids(
    messages: Sequence[Mapping[str, Any]],
    tools_text: str = "",
    *,
    template: str = "v3",
    thinking: bool = False,
) -> tuple[int, ...]:
    """The ids of the rendered prompt, encoded piece by piece: the tokenizer splits on special
    tokens before anything else, so each stretch between them encodes on its own, and a
    conversation that grows by one turn only encodes the new turn (the rest is cached)."""
    return ids_of(prompt_segments(messages, tools_text, template=template, thinking=thinking))


def ids_of(segments: Iterable[str]) -> tuple[int, ...]:
    ids: list[int] = []
    pending = ""
    for segment in segments:
        if segment in SPECIALS:
            ids += encode(pending)
            ids.append(_special_id(segment))
            pending = ""
        else:
            pending += segment  # text next to text is one stretch, as in the whole string
    ids += encode(pending)
    return tuple(ids)


@cache
def _special_id(token: str) -> int:
    found = bpe.encoder().added.get(token)
    if found is None:  # pragma: no cover - the shipped vocabulary has every one of them
        raise RuntimeError(f"{token} is not in DeepSeek's vocabulary")
    return found


@cache
def token_bytes(token_id: int) -> bytes:
    return bpe.encoder().token_bytes(token_id)


# A canned reply is streamed again and again: its pieces are split once. Bounded like the
# encode cache (a piece costs a list slot and a small str object, ~60 bytes, plus its text).
PIECES_CACHE_BYTES = 4 * 1024 * 1024
_pieces: ByteBoundedCache[str, tuple[str, ...]] = ByteBoundedCache(
    PIECES_CACHE_BYTES, lambda text, split: 100 + 2 * len(text) + 60 * len(split)
)


def pieces(text: str) -> list[str]:
    """The text as the live API streams it: one piece per token. A token that ends inside a
    UTF-8 character gives an empty piece, and all of its text (a leading space included)
    arrives with the next one: the capture shows `""` then `" 😊"`."""
    if not text:
        return []
    split = _pieces.get(text)
    if split is None:
        split = tuple(_split(text))
        _pieces.put(text, split)
    return list(split)


def _split(text: str) -> list[str]:
    out: list[str] = []
    pending = b""
    for token_id in encode(text):
        pending += token_bytes(token_id)
        if _complete_prefix(pending) < len(pending):
            out.append("")
            continue
        out.append(pending.decode("utf-8"))
        pending = b""
    if pending:  # pragma: no cover - tokens of valid text always end on a character boundary
        out.append(pending.decode("utf-8", errors="replace"))
    return out


def _complete_prefix(data: bytes) -> int:
    """Length of the longest prefix of `data` that ends on a UTF-8 character boundary."""
    end = len(data)
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): is its character complete?
            need = (
                1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            )
            return end if back >= need else end - back
    return end


def truncate(text: str, limit: int) -> tuple[str, int]:
    """The first `limit` tokens of `text` (whole characters only) and how many tokens that is."""
    ids = encode(text)
    if len(ids) <= limit:
        return text, len(ids)
    data = b"".join(token_bytes(i) for i in ids[:limit])
    return data[: _complete_prefix(data)].decode("utf-8"), limit
