"""The record of what crossed the wire: every exchange, including rejected, failed and cut-off
ones, written before the response is finished. Secrets never enter it."""

from __future__ import annotations

import builtins
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.nesting import MAX_BODY_DEPTH, deeper_than, may_be_deeper_than

SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"}
)
SECRET_PARAMS = frozenset({"api_key", "key", "token", "access_token"})
# What one entry keeps, and what the whole journal may hold: a client that sends megabytes of
# headers or body cannot grow the server's memory through its record.
BODY_KEEP = 64 * 1024  # request body bytes kept per entry
HEADER_VALUE_KEEP = 4 * 1024  # characters kept of one header value, then a marker
HEADERS_KEEP = 32 * 1024  # characters of header names and values kept per entry
JOURNAL_BYTES = 32 * 1024 * 1024  # all entries together; the oldest go first
ENTRY_OVERHEAD = 512  # an entry's own fields, roughly
ADMIN_PREFIX = "/__mock/"


def fingerprint(secret: str) -> str:
    """At most the last four characters, so two keys can be told apart and none recovered."""
    secret = secret.strip()
    if secret.lower().startswith("bearer "):
        secret = secret[7:].strip()
    return "…" + secret[-4:] if len(secret) >= 12 else "…"


def cut(value: str, keep: int) -> str:
    """`value` whole, or its first `keep` characters and a marker saying how much was left."""
    return value if len(value) <= keep else f"{value[:keep]}…[{len(value) - keep} more bytes]"


def redact_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[dict[str, str], bool]:
    """The headers as kept (secrets fingerprinted, long values cut, at most HEADERS_KEEP in
    all), and whether anything was cut."""
    out: dict[str, str] = {}
    room = HEADERS_KEEP
    dropped = 0
    cut_any = False
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if room <= 0:
            dropped += 1
            continue
        value = raw_value.decode("latin-1")
        if name in SECRET_HEADERS:
            value = fingerprint(value)
        elif len(value) > HEADER_VALUE_KEEP:
            value = cut(value, HEADER_VALUE_KEEP)
            cut_any = True
        out[name] = value
        room -= len(name) + len(value)
    if dropped:
        out["…"] = f"[{dropped} more headers]"
    return out, cut_any or dropped > 0


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, fingerprint(v) if k.lower() in SECRET_PARAMS else v) for k, v in pairs])


@dataclass(slots=True, kw_only=True)
class Entry:
    seq: int
    method: str
    path: str
    query: str = ""
    dialect: str | None = None
    rule: str | None = None
    status: int | None = None  # None: no response started (the client left first)
    stream: bool = False
    complete: bool = False  # the last byte went out (False: cut, reset, stalled or disconnected)
    bytes: int = 0
    started: float = 0.0
    ttfb_ms: float | None = None
    elapsed_ms: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: builtins.bytes = b""  # at most BODY_KEEP bytes of it
    body_bytes: int = 0  # how many the client sent
    truncated: bool = False  # a header or the body was cut before it was kept

    @property
    def json(self) -> Any:
        """The request body as JSON, or None when it was not JSON."""
        try:
            value = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None
        # Deeper than a request may be, it could not be written back out: show it as text.
        too_deep = may_be_deeper_than(self.body, MAX_BODY_DEPTH) and deeper_than(
            value, MAX_BODY_DEPTH
        )
        return None if too_deep else value

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        body = data.pop("body")
        data["request"] = {
            "headers": data.pop("headers"),
            "json": self.json,
            "body_bytes": data.pop("body_bytes"),
            "truncated": data.pop("truncated") or len(body) < self.body_bytes,
        }
        if data["request"]["json"] is None and body:
            data["request"]["text"] = body[:1024].decode("utf-8", errors="replace")
        return data


class Journal:
    """Bounded (oldest dropped first), thread-safe, and waitable so tests never sleep."""

    def __init__(self, size: int = 1000, max_bytes: int = JOURNAL_BYTES) -> None:
        self._entries: deque[Entry] = deque()
        self._size = size
        self._max_bytes = max_bytes
        self.bytes = 0  # what the kept entries hold, roughly
        self._changed = threading.Condition()
        self._seq = 0
        self._recorded = 0  # since the last clear: what wait_for counts, kept or dropped

    def next_seq(self) -> int:
        with self._changed:
            self._seq += 1
            return self._seq

    def record(self, entry: Entry) -> None:
        with self._changed:
            self._entries.append(entry)
            self.bytes += _cost(entry)
            while len(self._entries) > 1 and (
                len(self._entries) > self._size or self.bytes > self._max_bytes
            ):
                self.bytes -= _cost(self._entries.popleft())
            self._recorded += 1
            self._changed.notify_all()

    def entries(self) -> list[Entry]:
        with self._changed:
            return list(self._entries)

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
            self.bytes = 0
            self._recorded = 0
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Entry]:
        """Block until at least `count` exchanges have been recorded since the last clear, and
        return the entries kept (the newest `size` of them, when more were recorded than the
        journal keeps); AssertionError after `timeout`."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._recorded >= count, timeout):
                raise AssertionError(
                    f"journal has recorded {self._recorded} exchanges, expected {count} "
                    f"within {timeout} s"
                )
            return list(self._entries)


def _cost(entry: Entry) -> int:
    # Twice per request (kept, then dropped): sums in C, not a generator per header.
    headers = sum(map(len, entry.headers)) + sum(map(len, entry.headers.values()))
    return ENTRY_OVERHEAD + len(entry.body) + len(entry.query) + headers


class JournalMiddleware:
    """Wraps receive/send, so what is recorded is what really crossed the wire."""

    def __init__(self, app: ASGIApp, journal: Journal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The admin API is how tests read the journal: recording it would only add noise.
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.time()
        clock = time.perf_counter()
        headers, truncated = redact_headers(scope["headers"])
        raw = scope.get("query_string")
        entry = Entry(
            seq=self.journal.next_seq(),
            method=scope["method"],
            path=scope["path"],
            query=cut(redact_query(raw.decode("latin-1")), HEADER_VALUE_KEEP) if raw else "",
            headers=headers,
            started=started,
            truncated=truncated,
        )
        body = bytearray()
        recorded = False

        def finish() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            state = scope.get("state") or {}
            entry.dialect = state.get("dialect")
            entry.rule = state.get("rule")
            entry.stream = bool(state.get("stream", False))
            entry.body = bytes(body)
            entry.elapsed_ms = (time.perf_counter() - clock) * 1000
            self.journal.record(entry)

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                entry.body_bytes += len(chunk)
                if len(body) < BODY_KEEP:
                    body.extend(chunk[: BODY_KEEP - len(body)])
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
                entry.ttfb_ms = (time.perf_counter() - clock) * 1000
            elif message["type"] == "http.response.body":
                entry.bytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    # Recorded before the last byte leaves: a client that has its answer can
                    # read the journal at once.
                    entry.complete = True
                    finish()
            try:
                await send(message)
            except BaseException:
                entry.complete = False  # the client was gone before the last byte
                raise

        try:
            await self.app(scope, receiving, sending)
        finally:
            finish()
