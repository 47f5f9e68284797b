"""/__mock/: read and clear the journal, replace the rules, reset, health.

The journal holds prompts, and the rules decide every answer, so the admin API answers only a
client on this machine, talking to it by a loopback name, in JSON; with a token, only a client
that also knows the token. Each check closes one way in:

- the socket's peer must be a loopback address (checked with `ipaddress`, on the peer uvicorn
  saw, never an address from `X-Forwarded-For`): other machines;
- `Host` must be a loopback name or address: DNS rebinding, where a web page's own host name
  resolves to 127.0.0.1;
- `Origin`, when sent, must be a loopback origin: a page on another site, in the same browser;
- a body must be `application/json`: the cross-origin `text/plain` and form POSTs a browser
  sends without asking (JSON needs a CORS preflight, which is never granted).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from mockserver.errors import ApiError
from mockserver.journal import ADMIN_PREFIX, Entry, dump_entry
from mockserver.openapi import ADMIN_DOCUMENT, document_path
from mockserver.scenario import rule_to_json, rules_from_json
from mockserver.state import namespace_of

if TYPE_CHECKING:
    from mockserver.context import Mock

PREFIX = ADMIN_PREFIX.rstrip("/")
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
ENDPOINTS = (
    ("GET", "/__mock/", "this list"),
    ("GET", "/__mock/health", "status, dialects and their base URLs, open streams, journal size"),
    ("GET", "/__mock/journal", "every exchange, secrets redacted (?wait_for=N&timeout=S waits)"),
    ("DELETE", "/__mock/journal", "empty the journal"),
    ("GET", "/__mock/scenario", "rule names and how often each answered"),
    ("PUT", "/__mock/scenario", "replace the rules with a scenario (JSON)"),
    ("POST", "/__mock/scenario", "add a scenario's rules; a rule with a name in use replaces it"),
    ("DELETE", "/__mock/scenario", "remove every rule"),
    ("POST", "/__mock/reset", "start-up rules, empty journal, cold cache"),
    ("DELETE", "/__mock/namespace", "forget the namespace's state (X-Mock-Namespace)"),
    ("GET", "/__mock/ui", "the live page: the journal as it happens, in a browser"),
)
# Each route reads and changes the namespace the request names (X-Mock-Namespace or /ns/NAME).
MAX_WAIT_SECONDS = 60.0
# Journal waits parked at once, each in a thread of its own: anyio's default pool (40 threads)
# is also where big prompts are parsed and the live page reads, so waits never take from it.
# Past this many, a wait takes its turn; its timeout still runs from its request.
MAX_WAITS = 256


def is_loopback_address(host: str) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped ::ffff:127.x; anything that is not an address is not."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_loopback_name(host: str) -> bool:
    """A host (no port) that can only mean this machine: a loopback address or `localhost`."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost") or is_loopback_address(host)


def _host_of(authority: str) -> str | None:
    """The host of `name:port` or `[v6]:port`; None when it does not parse."""
    try:
        return urlsplit(f"//{authority}").hostname
    except ValueError:
        return None


def _json(value: object, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _journal_body(entries: Sequence[Entry], raw: bool, timed_out: str | None = None) -> bytes:
    """`GET /__mock/journal`'s answer: the entries as JSON (`raw`: whole, as the stores keep
    them), and what a wait that timed out says."""
    if raw:
        body: dict[str, object] = {"raw": [orjson.Fragment(dump_entry(e)) for e in entries]}
    else:
        body = {"entries": [entry.to_json() for entry in entries]}
    if timed_out is not None:
        body["timed_out"] = timed_out
    return orjson.dumps(body)


def _wait_args(count: str, timeout: str) -> tuple[int, float]:
    try:
        n, seconds = int(count), float(timeout)
    except ValueError:
        n, seconds = -1, -1.0
    if n < 0 or not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise ApiError(
            "invalid_request",
            f"wait_for takes a count and timeout seconds from 0 to {MAX_WAIT_SECONDS:g} "
            f"(got wait_for={count[:20]!r}, timeout={timeout[:20]!r})",
        )
    return n, seconds


def check_request(request: Request, token: str | None) -> None:
    """Raise the refusal this request earns, if any (see the module's docstring)."""
    peer = request.client.host if request.client else ""
    if not is_loopback_address(peer) or any(h in request.headers for h in PROXY_HEADERS):
        raise ApiError("forbidden", "the admin API answers loopback clients only")
    host = _host_of(request.headers.get("host", ""))
    if host is None or not is_loopback_name(host):
        raise ApiError(
            "forbidden",
            "the admin API answers requests addressed to a loopback name only "
            "(Host: 127.0.0.1, [::1] or localhost)",
        )
    origin = request.headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin) if origin != "null" else None
        if parts is None or parts.hostname is None or not is_loopback_name(parts.hostname):
            raise ApiError("forbidden", f"the admin API refuses cross-origin requests ({origin})")
    if request.method in ("POST", "PUT", "DELETE", "PATCH"):
        kind = request.headers.get("content-type")
        length = request.headers.get("content-length", "0")
        has_body = length != "0" or "transfer-encoding" in request.headers
        if (kind is not None or has_body) and (
            kind is None or kind.split(";")[0].strip().lower() != "application/json"
        ):
            raise ApiError(
                "invalid_request",
                f"the admin API takes JSON bodies only: send Content-Type: application/json "
                f"(got {kind or 'none'})",
                status=415,
            )
    if token is not None:
        scheme, _, sent = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), token.encode()
        ):
            raise ApiError(
                "invalid_key", "the admin API needs its token: Authorization: Bearer <token>"
            )


def mount(mock: Mock, pages: Sequence[BaseRoute] = ()) -> Mount:
    """The admin API under /__mock/, with `pages` (the live page's routes, their paths
    inside the mount) routed first."""

    def guard(request: Request) -> None:
        request.state.rule = "admin"
        check_request(request, mock.settings.admin_token)

    async def index(request: Request) -> Response:
        guard(request)
        return _json(
            {
                "endpoints": [
                    {"method": method, "path": path, "does": does}
                    for method, path, does in ENDPOINTS
                ],
                # The OpenAPI documents served beside them: this API's, and each dialect's.
                "documents": {"admin": ADMIN_DOCUMENT}
                | {d.name: document_path(prefix, d) for prefix, d in mock.mounts},
            }
        )

    async def health(request: Request) -> Response:
        guard(request)
        space = mock.space(request.headers)
        root = str(request.base_url).rstrip("/")
        return _json(
            {
                "status": "ok",
                "dialects": [d.name for _, d in mock.mounts],
                "open_bodies": mock.bodies.count,
                "namespace": space.name,
                "base_paths": {d.name: prefix + d.sdk_path for prefix, d in mock.mounts},
                # The same as a client's base_url, as this request reached the server.
                "base_urls": {d.name: root + prefix + d.sdk_path for prefix, d in mock.mounts},
                "journal": len(space.journal),
                "state": mock.store.describe(),
                "pid": os.getpid(),
            }
        )

    waits: list[anyio.CapacityLimiter] = []  # made on the event loop, at the first wait

    async def journal(request: Request) -> Response:
        guard(request)
        if request.method == "DELETE":
            mock.space(request.headers).journal.clear()
            return Response(status_code=204)
        journal = mock.space(request.headers).journal
        wait = request.query_params.get("wait_for")
        raw = request.query_params.get("raw") == "1"
        if wait is None:
            # Read and written in a thread: a full journal is megabytes of JSON, which would
            # hold every other client (and every paced stream) while it is made.
            body = await anyio.to_thread.run_sync(lambda: _journal_body(journal.entries(), raw))
            return Response(body, media_type="application/json")
        count, timeout = _wait_args(wait, request.query_params.get("timeout", "5"))
        deadline = time.monotonic() + timeout

        def waited() -> bytes:
            try:
                entries = journal.wait_for(count, max(deadline - time.monotonic(), 0.0))
            except AssertionError as exc:
                return _journal_body(journal.entries(), raw, timed_out=str(exc))
            return _journal_body(entries, raw)

        if not waits:
            waits.append(anyio.CapacityLimiter(MAX_WAITS))
        body = await anyio.to_thread.run_sync(waited, limiter=waits[0])
        return Response(body, media_type="application/json")

    async def scenario(request: Request) -> Response:
        guard(request)
        book = mock.space(request.headers).scenario
        if request.method == "GET":
            usage = book.usage()
            return _json(
                {
                    "rules": [rule.name for rule, _ in usage],
                    "uses": book.uses(),
                    "usage": [{"rule": rule_to_json(rule), "uses": n} for rule, n in usage],
                }
            )
        if request.method == "DELETE":
            book.replace(())
            return Response(status_code=204)
        try:
            document = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise ApiError(
                "invalid_request",
                f"the body is not valid JSON ({exc}); send a scenario such as "
                '{"rules": [{"name": "down", "error": {"status": 503}}]}',
            ) from None
        try:
            rules = rules_from_json(document)
        except ValueError as exc:
            raise ApiError("invalid_request", str(exc)) from None
        names = [rule.name for rule in rules]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ApiError(
                "invalid_request", f"rule names must be unique in a scenario; repeated: {twice}"
            )
        if request.method == "PUT":
            book.replace(rules)
        else:
            for rule in rules:
                book.add(rule)
        return _json({"rules": [rule.name for rule in book.rules]})

    async def reset(request: Request) -> Response:
        guard(request)
        mock.reset(namespace_of(request.headers))
        return Response(status_code=204)

    async def namespace(request: Request) -> Response:
        guard(request)
        mock.store.forget(namespace_of(request.headers))
        return Response(status_code=204)

    return Mount(
        PREFIX,
        routes=[
            *pages,
            Route("/", index, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/journal", journal, methods=["GET", "DELETE"]),
            Route("/scenario", scenario, methods=["GET", "PUT", "POST", "DELETE"]),
            Route("/reset", reset, methods=["POST"]),
            Route("/namespace", namespace, methods=["DELETE"]),
        ],
    )
