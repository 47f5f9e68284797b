"""Forwarding: a request goes to the upstream and its answer comes back as it arrives.

Nothing is buffered: every piece the upstream sends is written to the client first, then shown
to the observers (the cassette recorder, the validating proxy). Statuses, errors, cut streams
and broken connections reach the client as the upstream gave them.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import httpx
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from mockserver.cassette import (
    DEFAULT_REDACTION,
    Event,
    Framer,
    Interaction,
    Json,
    Redaction,
    request_record,
)
from mockserver.delivery import ConnectionDropped
from mockserver.dialects import DIALECTS, Dialect
from mockserver.errors import ApiError

log = logging.getLogger("mockserver")

# Connection-level headers belong to one hop; accept-encoding is replaced so the bytes that
# arrive are the bytes the upstream wrote (no compression to undo).
HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
# uvicorn writes its own date and server headers; the upstream's would come twice.
HOP_RESPONSE = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "date", "server"}
)
# DeepSeek may hold a request in its queue, sending keep-alives, for up to 30 minutes.
READ_TIMEOUT = 35 * 60.0
PLACEHOLDER_KEYS = frozenset({"sk-deepseek-mock"})  # what the pytest plugin's clients send


class UpstreamUnreachable(Exception):
    """No answer started: the upstream could not be reached or timed out before its headers."""


class Observer(Protocol):
    """Sees a forwarded exchange after each piece has gone to the client."""

    def head(self, status: int, headers: list[tuple[str, str]], t_ms: float) -> None: ...
    def chunk(self, data: bytes, t_ms: float) -> None: ...
    # ending: "complete", "reset" (the upstream broke the connection) or "client_left"
    def end(self, ending: str, t_ms: float) -> None: ...


def upstream_key(dialect: Dialect) -> str | None:
    """The real key to send when the client sends a placeholder: the dialect's variable."""
    return os.environ.get(dialect.key_env) or None


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every forwarded request: building one costs ~20 ms, which would
    be added to the first byte of every answer (a client per request keeps nothing open)."""
    return httpx.create_ssl_context()


def _loopback(url: str) -> bool:
    host = httpx.URL(url).host
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


class RedactKeys(logging.Filter):
    """httpx logs every URL it requests, query and all: a key sent as ?api_key= must not
    reach a log line, nor anything key-shaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = DEFAULT_REDACTION.text(message)
        if "?" in clean:
            head, _, rest = clean.partition("?")
            query, space, tail = rest.partition(" ")
            clean = head + "?" + _redact_query(query) + space + tail
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def _redact_query(query: str) -> str:
    from mockserver.journal import redact_query

    return redact_query(query)


def install_key_filter() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactKeys) for f in logger.filters):
        logger.addFilter(RedactKeys())


@dataclass(frozen=True, slots=True)
class Forwarder:
    upstream: str  # a server root, e.g. https://api.deepseek.com; the client's path is appended
    key: str | None = None  # replaces a missing or placeholder key (never written anywhere)
    read_timeout: float = READ_TIMEOUT

    def __post_init__(self) -> None:
        install_key_filter()

    def outgoing_headers(self, scope: Scope) -> list[tuple[str, str]]:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in HOP
        ]
        headers.append(("accept-encoding", "identity"))
        if self.key:
            auth = next((v for k, v in headers if k.lower() == "authorization"), None)
            token = (auth or "").partition(" ")[2].strip()
            if auth is None or token in PLACEHOLDER_KEYS:
                headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
                headers.append(("authorization", f"Bearer {self.key}"))
        return headers

    async def forward(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        observers: Sequence[Observer],
    ) -> str:
        """Forward one request and stream its answer back; returns how the body ended."""
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.upstream.rstrip("/") + scope["path"] + (f"?{query}" if query else "")
        clock = time.perf_counter()

        def ms() -> float:
            return round((time.perf_counter() - clock) * 1000, 1)

        timeout = httpx.Timeout(30.0, read=self.read_timeout)
        async with httpx.AsyncClient(
            timeout=timeout, trust_env=not _loopback(self.upstream), verify=_tls()
        ) as client:
            request = client.build_request(
                scope["method"], url, headers=self.outgoing_headers(scope), content=body
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise UpstreamUnreachable(f"{type(exc).__name__}: {exc}") from None
            try:
                headers = [
                    (k, v)
                    for k, v in response.headers.multi_items()
                    if k.lower() not in HOP_RESPONSE
                ]
                t_head = ms()
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
                    }
                )
                _tell(observers, "head", response.status_code, headers, t_head)
                ending = await _pump(response, receive, send, observers, ms)
            finally:
                await response.aclose()
        _tell(observers, "end", ending, ms())
        if ending == "reset":
            raise ConnectionDropped("the upstream broke the connection mid-body")
        return ending


def _tell(observers: Sequence[Observer], what: str, *args: Any) -> None:
    """An observer's bug must never break what the client receives."""
    for observer in observers:
        try:
            getattr(observer, what)(*args)
        except Exception:
            log.exception("observer %s failed on %s", type(observer).__name__, what)


async def _pump(
    response: httpx.Response,
    receive: Receive,
    send: Send,
    observers: Sequence[Observer],
    ms: Callable[[], float],
) -> str:
    ending = "complete"
    finished = False  # the server reports a disconnect once the answer is complete, too
    async with anyio.create_task_group() as group:

        async def watch_for_disconnect() -> None:
            nonlocal ending
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                ending = "client_left"
                group.cancel_scope.cancel()

        group.start_soon(watch_for_disconnect)
        try:
            async for piece in response.aiter_raw():
                t = ms()  # arrival, before anything else is done with it
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                _tell(observers, "chunk", piece, t)
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.TransportError:
            ending = "reset"
        except OSError:
            ending = "client_left"
        finally:
            group.cancel_scope.cancel()
    return ending


@dataclass
class Recording:
    """An `Observer` that turns one exchange into an `Interaction`, redacted before it is
    handed on (to be written): nothing secret is ever kept in it."""

    request: Json
    done: Callable[[Interaction], None]
    redaction: Redaction = DEFAULT_REDACTION
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    head_ms: float = 0.0
    events: list[Event] = field(default_factory=list)
    framer: Framer = field(default_factory=lambda: Framer(sse=False))

    def head(self, status: int, headers: list[tuple[str, str]], t_ms: float) -> None:
        self.status, self.head_ms = status, t_ms
        self.headers = self.redaction.headers(headers, response=True)
        stream = self.headers.get("content-type", "").startswith("text/event-stream")
        self.framer = Framer(sse=stream)

    def chunk(self, data: bytes, t_ms: float) -> None:
        self.events += self.framer.feed(data, t_ms)

    def end(self, ending: str, t_ms: float) -> None:
        if ending == "client_left":
            return  # says nothing about the upstream: not recorded
        self.events += self.framer.close(t_ms)
        self.done(
            Interaction(
                request=self.request,
                status=self.status,
                headers=self.headers,
                events=[self._scrub(e) for e in self.events],
                head_ms=self.head_ms,
                stream=self.framer.sse,
                ending=ending,
            )
        )

    def _scrub(self, event: Event) -> Event:
        try:
            text = event.raw.decode("utf-8")
        except UnicodeDecodeError:
            return event
        clean = self.redaction.text(text)
        return event if clean == text else Event(event.t_ms, event.kind, clean.encode())


def recording_for(
    scope: Scope, body: bytes, done: Callable[[Interaction], None], redaction: Redaction
) -> Recording:
    request = request_record(
        scope["method"],
        scope["path"],
        scope.get("query_string", b"").decode("latin-1"),
        ((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]),
        body,
        redaction,
    )
    return Recording(request=request, done=done, redaction=redaction)


async def read_all(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit`."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


async def send_error(send: Send, dialect: Dialect, error: ApiError, path: str) -> None:
    rendered = dialect.error(error, path)
    headers = [(b"content-type", rendered.media_type.encode())]
    headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": rendered.status, "headers": headers})
    await send({"type": "http.response.body", "body": rendered.body, "more_body": False})


async def send_json(send: Send, status: int, document: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def dialect_of(name: str | None) -> Dialect:
    return DIALECTS[name or "deepseek"]


def _loopback_peer(scope: Scope) -> bool:
    client = scope.get("client")
    try:
        return client is not None and ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


ObserversFor = Callable[[Scope, bytes], list[Observer]]
AdminRoute = Callable[[], Any]


class ForwardApp:
    """The ASGI app of `deepseek-mock record` and `proxy`: every request forwarded, each
    exchange shown to the observers `observers_for` gives; `/__mock/<name>` routes answer
    from `admin` (GET, JSON)."""

    def __init__(
        self,
        forwarder: Forwarder,
        dialect: Dialect,
        observers_for: ObserversFor,
        *,
        admin: dict[str, AdminRoute] | None = None,
        max_body_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.forwarder = forwarder
        self.dialect = dialect
        self.observers_for = observers_for
        self.admin = admin or {}
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.startswith("/__mock/"):
            route = self.admin.get(path.removeprefix("/__mock/").strip("/"))
            if not _loopback_peer(scope):  # what drifted is about your traffic: yours only
                await send_json(send, 403, {"error": "the admin API answers loopback peers only"})
            elif route is None or scope["method"] != "GET":
                await send_json(send, 404, {"error": f"no admin route {path}"})
            else:
                await send_json(send, 200, route())
            return
        body = await read_all(receive, self.max_body_bytes)
        if body is None:
            limit = f"Request body is too large: the limit is {self.max_body_bytes} bytes"
            await send_error(send, self.dialect, ApiError("too_large", limit), path)
            return
        scope.setdefault("state", {}).update(dialect=self.dialect.name, rule="forwarded")
        try:
            observers = self.observers_for(scope, body)
        except ValueError as exc:  # e.g. an X-Mock-Cassette name that is not a name
            await send_error(send, self.dialect, ApiError("invalid_request", str(exc)), path)
            return
        await forward_or_502(self.forwarder, self.dialect, scope, body, receive, send, observers)


async def forward_or_502(
    forwarder: Forwarder,
    dialect: Dialect,
    scope: Scope,
    body: bytes,
    receive: Receive,
    send: Send,
    observers: Sequence[Observer],
) -> None:
    try:
        await forwarder.forward(scope, body, receive, send, observers)
    except UpstreamUnreachable as exc:
        log.warning("upstream %s unreachable: %s", forwarder.upstream, exc)
        message = f"deepseek-mock could not reach the upstream {forwarder.upstream}: {exc}"
        await send_error(send, dialect, ApiError("bad_gateway", message), scope["path"])


def journaled(app: ASGIApp, journal: Any) -> ASGIApp:
    from mockserver.journal import JournalMiddleware

    return JournalMiddleware(app, journal)
