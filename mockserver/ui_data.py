"""What the live page shows, read from the server's state in this one place.

The page reads one namespace's state (`Space`: its journal, rules, limits and balance, in memory
or in a shared store) through its public methods, and only here. The rest turns entries into the
plain JSON the page draws (rows, a detail view, the status panel); none of it is HTML.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from mockserver.journal import DATA, DONE, ERROR, FRAMES_HEAD, KEEP_ALIVE, Batch, Entry

if TYPE_CHECKING:
    from mockserver.context import Mock
    from mockserver.state import Space

Json = dict[str, Any]
PROMPT_KEEP = 1000  # characters of a prompt a row carries for the filter (its end: the question)
FRAME_TEXT_KEEP = 2000  # characters of one frame the detail view shows


# ---------------------------------------------------------------------------- reading state


def read(space: Space, after: int, timeout: float) -> Batch:
    """The journal after cursor `after` (see `Journal.read`); blocks up to `timeout`."""
    return space.journal.read(after, timeout)


def find(space: Space, seq: int) -> Entry | None:
    """The kept entry with this `seq`, if the journal still has it."""
    return next((entry for entry in space.journal.entries() if entry.seq == seq), None)


def status(mock: Mock, space: Space, pages: int) -> Json:
    """The panel beside the rows: the rules and their uses, streams, limits, balance."""
    limiter, balance = space.limiter, space.balance
    return {
        "namespace": space.name,
        "rules": [
            {"name": rule.name, "uses": uses, "times": rule.times}
            for rule, uses in space.scenario.usage()
        ],
        "open_streams": mock.bodies.count,
        "pages": pages,
        "journal": len(space.journal),
        "limits": {
            "concurrent": limiter.concurrent,
            "in_flight": limiter.in_flight,
            "per_window": limiter.per_window,
            "window": limiter.window,
        },
        "balance": {"left": balance.left, "initial": balance.initial},
    }


# ---------------------------------------------------------------------------- shaping entries


def _texts(value: Any) -> list[str]:
    """The text of a message's `content`: a string, or the text parts of a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [part["text"] for part in value if isinstance(part, dict) and _is_text(part)]
    return []


def _is_text(part: dict[str, Any]) -> bool:
    return isinstance(part.get("text"), str)


def prompt_of(body: Any) -> str:
    """A request's prompt as text: its messages (and system prompt) in order, or a FIM
    prompt; the last PROMPT_KEEP characters."""
    if not isinstance(body, dict):
        return ""
    texts = _texts(body.get("system"))
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            texts += _texts(message.get("content"))
    texts += _texts(body.get("prompt"))
    return "\n".join(texts)[-PROMPT_KEEP:]


def summary(entry: Entry) -> Json:
    """One row of the page."""
    body = entry.json
    model = body.get("model") if isinstance(body, dict) else None
    return {
        "seq": entry.seq,
        "started": entry.started,
        "dialect": entry.dialect,
        "method": entry.method,
        "path": entry.path,
        "model": model if isinstance(model, str) else None,
        "rule": entry.rule,
        "fault": entry.fault,
        "status": entry.status,
        "stream": entry.stream,
        "complete": entry.complete,
        "end": ending(entry),
        "bytes": entry.bytes,
        "ttfb_ms": entry.ttfb_ms,
        "elapsed_ms": entry.elapsed_ms,
        "prompt": prompt_of(body),
    }


def entries_event(batch: Batch) -> bytes:
    """The SSE event that carries a read: its cursor as the id, so a reconnecting page resumes
    after it (`Last-Event-ID`), and whether the journal was cleared first."""
    data = orjson.dumps(
        {"cleared": batch.cleared, "entries": [summary(entry) for entry in batch.entries]}
    )
    return b"id: %d\nevent: entries\ndata: %s\n\n" % (batch.cursor, data)


_WORD = re.compile(r"(cut_after|reset_after|stall_after|malformed_at|error_at)=(\d+)")
_STOPS = {  # the faults that end a stream early: what the row says, what the frame says
    "cut_after": ("cut", "cut here: the stream ended without [DONE]"),
    "reset_after": ("reset", "reset here: the connection was broken"),
    "stall_after": ("stalled", "stalled here: nothing more was sent"),
}


def _asked(entry: Entry) -> dict[str, int]:
    return {name: int(n) for name, n in _WORD.findall(entry.fault or "")}


def stopped_by(entry: Entry) -> str | None:
    """The fault that ended this stream early, if one did: one was asked for, the stream has
    as many frames as it allowed (keep-alives aside) and no [DONE]."""
    asked = _asked(entry)
    if not any(name in asked for name in _STOPS):
        return None
    kinds = [kind for _, _, kind in entry.frames if kind != KEEP_ALIVE]
    if DONE in kinds or not kinds:
        return None
    sent = len(kinds) + entry.frames_dropped
    return next((name for name in _STOPS if asked.get(name) == sent), None)


def ending(entry: Entry) -> str:
    """How the exchange ended, in a word for its row."""
    if entry.status is None:
        return "no answer"
    stop = stopped_by(entry)
    if stop is not None:
        return _STOPS[stop][0]
    return "complete" if entry.complete else "left early"


def timeline(entry: Entry) -> list[Json]:
    """A stream's frames for the detail view: when each left, its size, kind and text, and
    where the fault acted on it (counting frames from 0, keep-alives excluded, as the faults
    do)."""
    raw = entry.response_body.encode()
    asked = _asked(entry)
    frames: list[Json] = []
    offset = 0
    counted = 0
    head = FRAMES_HEAD if entry.frames_dropped else len(entry.frames)  # then the kept tail
    for i, (at_ms, size, kind) in enumerate(entry.frames):
        if i == head:
            counted += entry.frames_dropped  # a gap: the texts after it are not known
        shown = (raw[offset : offset + size] if i < head else b"").decode(errors="replace")
        offset += size
        note = None
        if kind == ERROR and "error_at" in asked:
            note = f"error event (error_at={asked['error_at']})"
        elif kind == DATA and asked.get("malformed_at") == counted:
            note = f"malformed: the JSON is cut mid-way (malformed_at={counted})"
        frames.append(
            {
                "n": None if kind == KEEP_ALIVE else counted,
                "at_ms": round(at_ms, 3),
                "bytes": size,
                "kind": kind,
                "text": shown[:FRAME_TEXT_KEEP],
                "says": brief(shown, kind) if i < head else "",
                "note": note,
            }
        )
        counted += kind != KEEP_ALIVE
    stop = stopped_by(entry)
    if stop is not None:
        last = next(frame for frame in reversed(frames) if frame["kind"] != KEEP_ALIVE)
        last["note"] = f"{_STOPS[stop][1]} ({stop}={asked[stop]})"
    return frames


def _quoted(text: Any) -> str:
    return orjson.dumps(text).decode() if isinstance(text, str) else str(text)


def _delta_words(choice: Json) -> list[str]:
    delta = choice.get("delta") or {}
    words = [f"role {delta['role']}"] if delta.get("role") else []
    for field in ("reasoning_content", "content"):
        if delta.get(field):
            words.append(f"{field.split('_')[0]} {_quoted(delta[field])}")
    for call in delta.get("tool_calls") or []:
        function = call.get("function") or {}
        words.append(f"tool call {function.get('name') or ''}{function.get('arguments') or ''}")
    if choice.get("finish_reason"):
        words.append(f"finish {choice['finish_reason']}")
    return words


def brief(text: str, kind: str) -> str:
    """What a frame says, in a few words: a delta's text, a finish, an error's message."""
    if kind in (KEEP_ALIVE, DONE):
        return text.strip()
    data = next(
        (line[5:].strip() for line in reversed(text.splitlines()) if line.startswith("data:")), ""
    )
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return f"not JSON: {data[:60]}" if data else text.strip()[:60]
    if not isinstance(value, dict):
        return data[:60]
    if isinstance(value.get("error"), dict):
        return f"error: {value['error'].get('message')}"
    words: list[str] = []
    for choice in value.get("choices") or []:
        if isinstance(choice, dict):
            words += _delta_words(choice)
            words += [f"text {_quoted(choice['text'])}"] if choice.get("text") else []
    delta = value.get("delta")
    if isinstance(delta, dict):  # Anthropic's content_block_delta and message_delta
        said = delta.get("text") or delta.get("thinking") or delta.get("partial_json")
        words += [_quoted(said)] if said else []
        words += [f"stop {delta['stop_reason']}"] if delta.get("stop_reason") else []
    if value.get("usage"):
        words.append("usage")
    kind_of = value.get("type")
    return " · ".join(([kind_of] if isinstance(kind_of, str) else []) + words) or "(empty delta)"


def _usage_in(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    message = value.get("message")
    found = value.get("usage")
    if found is None and isinstance(message, dict):
        found = message.get("usage")  # Anthropic's message_start
    return found


def usage_of(entry: Entry) -> Any:
    """The usage figures the answer carried: the body's, or a stream's last."""
    if not entry.frames:
        try:
            return _usage_in(orjson.loads(entry.response_body))
        except orjson.JSONDecodeError:
            return None
    found = None
    for line in entry.response_body.splitlines():
        if line.startswith("data: {"):
            try:
                found = _usage_in(orjson.loads(line[6:])) or found
            except orjson.JSONDecodeError:
                continue
    return found


def detail(entry: Entry) -> Json:
    """Everything the detail view shows: the entry as `/__mock/journal` has it, the stream as
    a timeline, the usage, and the row's own fields."""
    data = entry.to_json()
    data["summary"] = summary(entry)
    data["usage"] = usage_of(entry)
    data["timeline"] = timeline(entry)
    data["response"].pop("frames")  # the timeline says it all, with the texts
    return data
