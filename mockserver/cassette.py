"""Cassettes: recorded exchanges on disk, byte for byte, with the secrets taken out on the way in.

A cassette is one JSON file (`schemas/cassette.schema.json`) holding the interactions of one
test or name, in the order they happened. Each response keeps its status, an allow-list of its
headers and every frame of its body exactly as it arrived (keep-alive comments and blank lines
too) with the offset in milliseconds from when the request was sent, so replay can give the
same bytes at the same pace. Requests are matched on method, path and canonical JSON body.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

# The record modes, as vcrpy names them (what each does: `mockserver.replay`). Here, with the
# format, so the command line can offer them without importing replay and its HTTP client.
MODES = ("none", "once", "new_episodes", "all")

SCHEMA = "cassette.schema.json"
SCHEMA_VERSION = 1
REDACTED = "REDACTED"
KEY_PLACEHOLDER = "sk-" + REDACTED
# Request headers worth keeping: they explain an answer and carry nothing secret.
REQUEST_HEADERS = frozenset({"content-type", "accept"})
REQUEST_HEADER_PREFIXES = ("x-mock-",)
# Response headers replay gives back; everything else (dates, cookies, lengths) is dropped.
RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "cache-control",
        "retry-after",
        "retry-after-ms",
        "x-ds-trace-id",
        "x-inference-id",
        "x-client-request-id",
        "x-aimlapi-credits-used",
        "x-aimlapi-usd-spent",
    }
)
RESPONSE_HEADER_PREFIXES = ("x-ratelimit-",)
SECRET_QUERY = frozenset({"api_key", "key", "token", "access_token"})
# Key-shaped text: OpenAI-style keys and bearer tokens. What is already a placeholder is not.
KEY_SHAPED = re.compile(r"\bsk-(?!REDACTED\b)[A-Za-z0-9][A-Za-z0-9_\-]{5,}")
BEARER = re.compile(r"(?i)\b(bearer\s+)(?!REDACTED\b)[A-Za-z0-9._~+/=\-]{8,}")
DEFAULT_IGNORE = ("user",)
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$")
MAX_EVENT_BYTES = 1024 * 1024  # one frame longer than this is kept in pieces, never unbounded

Json = dict[str, Any]


# ------------------------------------------------------------------------------ redaction


@dataclass(frozen=True, slots=True)
class Redaction:
    """What is kept of a request and a response. Allow-lists for headers (what is not named is
    dropped), patterns scrubbed from every string, query keys blanked."""

    request_headers: frozenset[str] = REQUEST_HEADERS
    response_headers: frozenset[str] = RESPONSE_HEADERS
    patterns: tuple[re.Pattern[str], ...] = (KEY_SHAPED,)
    query_keys: frozenset[str] = SECRET_QUERY

    def with_extra(self, *, headers: Iterable[str] = (), patterns: Iterable[str] = ()) -> Redaction:
        extra = frozenset(h.lower() for h in headers)
        return Redaction(
            self.request_headers | extra,
            self.response_headers | extra,
            self.patterns + tuple(re.compile(p) for p in patterns),
            self.query_keys,
        )

    def text(self, value: str) -> str:
        value = BEARER.sub(lambda m: m.group(1) + REDACTED, value)
        for pattern in self.patterns:
            value = pattern.sub(KEY_PLACEHOLDER if pattern is KEY_SHAPED else REDACTED, value)
        return value

    def value(self, value: Any) -> Any:
        """Every string in a JSON value scrubbed, keys included."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.text(k): self.value(v) for k, v in value.items()}
        return value

    def headers(self, headers: Iterable[tuple[str, str]], *, response: bool) -> dict[str, str]:
        allowed = self.response_headers if response else self.request_headers
        prefixes = RESPONSE_HEADER_PREFIXES if response else REQUEST_HEADER_PREFIXES
        kept: dict[str, str] = {}
        for name, value in headers:
            name = name.lower()
            if name in allowed or name.startswith(prefixes):
                kept[name] = self.text(value)
        return dict(sorted(kept.items()))

    def path(self, path: str, query: str) -> str:
        if not query:
            return path
        pairs = parse_qsl(query, keep_blank_values=True)
        clean = [(k, REDACTED if k.lower() in self.query_keys else self.text(v)) for k, v in pairs]
        return f"{path}?{urlencode(clean)}"


DEFAULT_REDACTION = Redaction()


def key_shaped(text: str) -> list[str]:
    """Everything in `text` that looks like a key, each cut to its first 6 characters."""
    found = [m.group(0) for m in KEY_SHAPED.finditer(text)]
    found += [m.group(0) for m in BEARER.finditer(text)]
    return [f"{hit[:6]}… ({len(hit)} chars)" for hit in found]


# ------------------------------------------------------------------------------ frames


@dataclass(frozen=True, slots=True)
class Event:
    """One piece of a body as it arrived: an SSE frame (`data`, `comment`), a blank line,
    a plain body (`body`), or bytes cut off before their frame ended (`partial`)."""

    t_ms: float
    kind: str
    raw: bytes

    def to_json(self) -> Json:
        out: Json = {"t_ms": self.t_ms, "kind": self.kind}
        try:
            out["raw"] = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            out["raw_hex"] = self.raw.hex()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        raw = bytes.fromhex(data["raw_hex"]) if "raw_hex" in data else str(data["raw"]).encode()
        return cls(float(data["t_ms"]), str(data["kind"]), raw)


_TERMINATORS = (b"\r\n\r\n", b"\n\n", b"\r\r")


def _kind(frame: bytes) -> str:
    if frame.strip(b"\r\n") == b"":
        return "blank"
    if frame.startswith(b":"):
        return "comment"
    return "data"


class Framer:
    """Cuts a stream of bytes into SSE frames as they arrive, each frame kept whole with its
    line endings, so the frames joined are the bytes received."""

    def __init__(self, *, sse: bool) -> None:
        self.sse = sse
        self._buffer = bytearray()
        self._body_at: float | None = None

    def feed(self, data: bytes, t_ms: float) -> list[Event]:
        self._buffer += data
        out: list[Event] = []
        while self._buffer:
            # A line ending with nothing before it is a blank line: a keep-alive before JSON,
            # or an empty line between frames.
            for ending in (b"\r\n", b"\n", b"\r"):
                if self._buffer.startswith(ending) and not (
                    ending == b"\r" and len(self._buffer) == 1
                ):
                    out.append(Event(t_ms, "blank", bytes(ending)))
                    del self._buffer[: len(ending)]
                    break
            else:
                if not self.sse:
                    if self._body_at is None:
                        self._body_at = t_ms
                    break  # a plain body is kept whole until it ends
                ends = [(i + len(t), t) for t in _TERMINATORS if (i := self._buffer.find(t)) >= 0]
                if not ends:
                    if len(self._buffer) > MAX_EVENT_BYTES:
                        out.append(Event(t_ms, "partial", bytes(self._buffer)))
                        self._buffer.clear()
                    break
                end = min(ends)[0]
                frame = bytes(self._buffer[:end])
                del self._buffer[:end]
                out.append(Event(t_ms, _kind(frame), frame))
        return out

    def close(self, t_ms: float) -> list[Event]:
        if not self._buffer:
            return []
        kind = "partial" if self.sse else "body"
        at = self._body_at if self._body_at is not None else t_ms
        event = Event(at, kind, bytes(self._buffer))
        self._buffer.clear()
        return [event]


# ------------------------------------------------------------------------------ interactions


@dataclass(slots=True)
class Interaction:
    request: Json  # {method, path, headers, json | text}
    status: int
    headers: dict[str, str]
    events: list[Event]
    head_ms: float = 0.0
    stream: bool = False
    # How the body ended: "complete" (the upstream finished it, [DONE] or not) or "reset"
    # (the connection broke mid-body).
    ending: str = "complete"

    @property
    def complete(self) -> bool:
        return self.ending == "complete"

    @property
    def body(self) -> bytes:
        return b"".join(event.raw for event in self.events)

    def to_json(self) -> Json:
        return {
            "request": self.request,
            "response": {
                "status": self.status,
                "headers": self.headers,
                "stream": self.stream,
                "head_ms": self.head_ms,
                "events": [event.to_json() for event in self.events],
                "ending": self.ending,
            },
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Interaction:
        response = data["response"]
        return cls(
            request=dict(data["request"]),
            status=int(response["status"]),
            headers=dict(response.get("headers") or {}),
            events=[Event.from_json(e) for e in response.get("events") or []],
            head_ms=float(response.get("head_ms", 0.0)),
            stream=bool(response.get("stream", False)),
            ending=str(response.get("ending", "complete")),
        )


def canonical_body(body: bytes) -> tuple[str, Any]:
    """("json", value) for a JSON body, ("text", str) otherwise, ("none", None) when empty."""
    if not body:
        return "none", None
    try:
        return "json", sort_keys(orjson.loads(body))
    except orjson.JSONDecodeError:
        return "text", body.decode("utf-8", "replace")


def sort_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(v) for v in value]
    return value


def request_record(
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    redaction: Redaction = DEFAULT_REDACTION,
) -> Json:
    """The request as a cassette keeps it (and as replay compares it): redacted already."""
    record: Json = {
        "method": method,
        "path": redaction.path(path, query),
        "headers": redaction.headers(headers, response=False),
    }
    kind, value = canonical_body(body)
    if kind != "none":
        record[kind] = redaction.value(value)
    return record


# ------------------------------------------------------------------------------ matching


def _strip(value: Any, path: Sequence[str]) -> Any:
    """`value` without the field at `path` (`[]` steps into every element of a list)."""
    if not path:
        return value
    step, rest = path[0], path[1:]
    if step == "[]" and isinstance(value, list):
        return [_strip(item, rest) for item in value]
    if isinstance(value, dict) and step in value:
        if not rest:
            return {k: v for k, v in value.items() if k != step}
        return {**value, step: _strip(value[step], rest)}
    return value


def parse_field(spec: str) -> tuple[str, ...]:
    """`user`, `metadata.trace_id`, `messages[].name` → steps."""
    return tuple(part for part in spec.replace("[]", ".[].").split(".") if part)


def match_key(request: Mapping[str, Any], ignore: Iterable[str]) -> Json:
    """What two requests must share to match: method, path (query excluded), the body less
    the ignored fields."""
    body: Any = request.get("json", request.get("text"))
    for spec in ignore:
        body = _strip(body, parse_field(spec))
    return {
        "method": request.get("method"),
        "path": str(request.get("path", "")).partition("?")[0],
        "body": body,
    }


def differences(recorded: Any, got: Any, path: str = "$", limit: int = 12) -> list[str]:
    """Where `got` differs from `recorded`, one line per field, at most `limit` lines."""
    out: list[str] = []
    _diff(recorded, got, path, out, limit)
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:79] + "…"


def _diff(a: Any, b: Any, path: str, out: list[str], limit: int) -> None:
    if len(out) >= limit or a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            where = f"{path}.{key}"
            if key not in b:
                out.append(f"{where}: recorded {_show(a[key])}, missing now")
            elif key not in a:
                out.append(f"{where}: not recorded, now {_show(b[key])}")
            else:
                _diff(a[key], b[key], where, out, limit)
            if len(out) >= limit:
                return
        return
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{path}[{i}]", out, limit)
        if len(a) != len(b):
            out.append(f"{path}: recorded {len(a)} items, now {len(b)}")
        return
    out.append(f"{path}: recorded {_show(a)}, now {_show(b)}")


@dataclass(frozen=True, slots=True)
class Miss:
    """A request no recording answers, with the nearest recording and how it differs."""

    cassette: str
    method: str
    path: str
    closest: int | None  # index of the nearest interaction, None when the cassette is empty
    diff: tuple[str, ...]
    exhausted: bool = False  # a recording matched, but every one of them was replayed already
    missing_file: str | None = None  # the cassette's file, when there is none yet

    def message(self) -> str:
        head = f"no recording in cassette {self.cassette!r} answers {self.method} {self.path}"
        if self.exhausted:
            return (
                f"{head}: the {len(self.diff) or 'matching'} recording(s) of this request were "
                "all replayed already (identical requests replay in recorded order, once each)"
            )
        if self.missing_file is not None:
            return (
                f"{head}: there is no cassette file {self.missing_file} yet; record it with "
                "--record-mode once (pytest: --deepseek-mock-record-mode=once)"
            )
        if self.closest is None:
            return f"{head}: the cassette holds no recordings"
        return f"{head}; closest is interaction #{self.closest}, which differs at: " + "; ".join(
            self.diff
        )


# ------------------------------------------------------------------------------ files


@dataclass
class Cassette:
    path: Path
    name: str
    interactions: list[Interaction] = field(default_factory=list)
    recorded_at: str = ""
    upstream: str = ""
    dialect: str | None = None
    existed: bool = False  # there was a file when it was opened

    @property
    def complete(self) -> bool:
        return all(i.complete for i in self.interactions)

    def to_json(self, recorder: str) -> Json:
        return {
            "schema_version": SCHEMA_VERSION,
            "recorded_at": self.recorded_at or now(),
            "complete": self.complete,
            "recorder": recorder,
            "upstream": self.upstream,
            "dialect": self.dialect,
            "interactions": [i.to_json() for i in self.interactions],
        }

    def save(self, recorder: str) -> None:
        """Written whole to a temporary file and renamed: a reader never sees half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = dumps(self.to_json(recorder))
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, self.path)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def dumps(document: Json) -> str:
    """Indented, non-ASCII kept, key order as built (stable): a diff shows one field a line."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def cassette_path(directory: Path, name: str) -> Path:
    if not NAME.match(name) or ".." in name.split("/"):
        raise ValueError(
            f"cassette name {name!r}: use letters, digits, '_', '-', '.' and '/' between parts"
        )
    # `greeting.json` names the file it would be as well as `greeting` does.
    return directory / f"{name.removesuffix('.json')}.json"


def load(path: Path, name: str | None = None, *, validate: bool = True) -> Cassette:
    """The cassette at `path` (an empty one when there is no file)."""
    name = name or path.stem
    if not path.exists():
        return Cassette(path=path, name=name)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable cassette: {exc}") from None
    if validate:
        from mockserver.schemas import problems

        found = problems(SCHEMA, document)
        if found:
            raise ValueError(f"{path}: breaks {SCHEMA}: " + "; ".join(found[:5]))
    return Cassette(
        path=path,
        name=name,
        interactions=[Interaction.from_json(i) for i in document.get("interactions", [])],
        recorded_at=str(document.get("recorded_at", "")),
        upstream=str(document.get("upstream", "")),
        dialect=document.get("dialect"),
        existed=True,
    )


def files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every cassette under the given files and folders, sorted within each folder."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if not p.name.startswith("."))
        else:
            yield path


def lint(path: Path) -> list[str]:
    """Key-shaped text anywhere in the file, by line: what redaction let through."""
    found: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found += [f"{path}:{number}: key-shaped text {hit}" for hit in key_shaped(line)]
    return found
