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

SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"}
)
SECRET_PARAMS = frozenset({"api_key", "key", "token", "access_token"})
BODY_KEEP = 64 * 1024  # request bytes kept per entry
ADMIN_PREFIX = "/__mock/"


def fingerprint(secret: str) -> str:
    """At most the last four characters, so two keys can be told apart and none recovered."""
    secret = secret.strip()
    if secret.lower().startswith("bearer "):
        secret = secret[7:].strip()
    return "…" + secret[-4:] if len(secret) >= 12 else "…"


def redact_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        out[name] = fingerprint(value) if name in SECRET_HEADERS else value
    return out


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
    body: builtins.bytes = b""

    @property
    def json(self) -> Any:
        """The request body as JSON, or None when it was not JSON."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        body = data.pop("body")
        data["request"] = {"headers": data.pop("headers"), "json": self.json}
        if data["request"]["json"] is None and body:
            data["request"]["text"] = body[:1024].decode("utf-8", errors="replace")
        return data


class Journal:
    """Bounded (oldest dropped first), thread-safe, and waitable so tests never sleep."""

    def __init__(self, size: int = 1000) -> None:
        self._entries: deque[Entry] = deque(maxlen=size)
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
        entry = Entry(
            seq=self.journal.next_seq(),
            method=scope["method"],
            path=scope["path"],
            query=redact_query(raw.decode("latin-1")) if (raw := scope.get("query_string")) else "",
            headers=redact_headers(scope["headers"]),
            started=started,
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
            if message["type"] == "http.request" and len(body) < BODY_KEEP:
                body.extend(message.get("body", b"")[: BODY_KEEP - len(body)])
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
