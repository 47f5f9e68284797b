"""The record of what crossed the wire: every exchange, including rejected, failed and cut-off
ones, written before the response is finished. Secrets never enter it."""

from __future__ import annotations

import asyncio
import base64
import builtins
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.nesting import MAX_BODY_DEPTH, deeper_than, may_be_deeper_than

if TYPE_CHECKING:
    from mockserver.state import JournalBook

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
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if room <= 0:
            dropped += 1
            continue
        value = raw_value.decode("latin-1")
        value = fingerprint(value) if name in SECRET_HEADERS else cut(value, HEADER_VALUE_KEEP)
        out[name] = value
        room -= len(name) + len(value)
    if dropped:
        out["…"] = f"[{dropped} more headers]"
    cut_any = dropped > 0 or any(value.endswith(" more bytes]") for value in out.values())
    return out, cut_any


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, fingerprint(v) if k.lower() in SECRET_PARAMS else v) for k, v in pairs])


@dataclass(slots=True, kw_only=True)
class Entry:
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
    seq: int = 0  # given by the journal when it records the entry

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


ENTRY_FIELDS = frozenset(f.name for f in fields(Entry))


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

    async def arecord(self, entry: Entry) -> None:
        """`record`, for the request path (a shared store waits for Redis without blocking)."""
        self.record(entry)

    def record(self, entry: Entry) -> None:
        """Keep `entry`, numbered in the order of recording (numbers are never reused)."""
        with self._changed:
            self._seq += 1
            entry.seq = self._seq
            self._entries.append(entry)
            self.bytes += entry_cost(entry)
            while len(self._entries) > 1 and (
                len(self._entries) > self._size or self.bytes > self._max_bytes
            ):
                self.bytes -= entry_cost(self._entries.popleft())
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


def dump_entry(entry: Entry) -> bytes:
    """An entry as JSON, whole (the body as base64), for a store outside this process."""
    data = {f.name: getattr(entry, f.name) for f in fields(entry)}
    data["body"] = base64.b64encode(entry.body).decode()
    return orjson.dumps(data)


def load_entry(raw: builtins.bytes) -> Entry:
    """The inverse of `dump_entry`."""
    return entry_from_data(orjson.loads(raw))


def entry_from_data(data: dict[str, Any]) -> Entry:
    """An entry from `dump_entry`'s JSON, parsed; fields this version does not know are left
    out."""
    data = {name: data[name] for name in ENTRY_FIELDS if name in data}
    data["body"] = base64.b64decode(data.get("body", ""))
    return Entry(**data)


def entry_cost(entry: Entry) -> int:
    headers = sum(len(k) + len(v) for k, v in entry.headers.items())
    return ENTRY_OVERHEAD + len(entry.body) + len(entry.query) + headers


class JournalMiddleware:
    """Wraps receive/send, so what is recorded is what really crossed the wire."""

    def __init__(
        self,
        app: ASGIApp,
        journal: JournalBook | None = None,
        *,
        journal_for: Callable[[Scope], JournalBook] | None = None,
    ) -> None:
        """One journal for every exchange, or `journal_for(scope)`: the journal of the
        request's namespace."""
        self.app = app
        if journal_for is None:
            if journal is None:
                raise TypeError("JournalMiddleware needs a journal or journal_for")
            only = journal

            def journal_for(scope: Scope) -> JournalBook:
                return only

        self.journal_for = journal_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The admin API is how tests read the journal: recording it would only add noise.
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.time()
        clock = time.perf_counter()
        headers, truncated = redact_headers(scope["headers"])
        raw = scope.get("query_string")
        journal = self.journal_for(scope)
        entry = Entry(
            method=scope["method"],
            path=scope["path"],
            query=cut(redact_query(raw.decode("latin-1")), HEADER_VALUE_KEEP) if raw else "",
            headers=headers,
            started=started,
            truncated=truncated,
        )
        body = bytearray()
        recorded = False

        async def finish() -> None:
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
            await journal.arecord(entry)

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
                    await finish()
            try:
                await send(message)
            except BaseException:
                entry.complete = False  # the client was gone before the last byte
                raise

        try:
            await self.app(scope, receiving, sending)
        finally:
            if not recorded:
                # Shielded: a handler cancelled (its client gone, a shutdown) still leaves its
                # exchange in the journal.
                await asyncio.shield(finish())
