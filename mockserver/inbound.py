"""What a request carries besides its JSON body: the key, the body bytes within their limit,
and per-request delivery settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mockserver.delivery import PLAIN, Delivery
from mockserver.dialects import Dialect
from mockserver.errors import ApiError

DELIVERY_HEADER = "x-mock-delivery"
FLAGS = frozenset({"reset", "duplicate_done", "split_writes"})
COUNTS = frozenset({"keep_alives", "cut_after", "stall_after", "malformed_at", "error_at"})


HEADERS_KEY = "mock.headers"  # where a request's HeaderMap is kept in its scope's state


class HeaderMap(dict[str, str]):
    """A request's headers, decoded once: names lower-case, a repeated header gives its first
    value, and a lookup ignores case, as Starlette's `Headers` do, without a scan per lookup
    (a completion looks up about eight)."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key.lower() if isinstance(key, str) else key)


def request_headers(scope: Scope) -> HeaderMap:
    """The request's HeaderMap, made on the first ask and kept in its state."""
    state = scope.setdefault("state", {})
    found: HeaderMap | None = state.get(HEADERS_KEY)
    if found is None:
        # Reversed, so that the first of a repeated header is the one kept.
        found = state[HEADERS_KEY] = HeaderMap(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in reversed(scope["headers"])
        )
    return found


def api_key(request: Request) -> str | None:
    """The key from `Authorization: Bearer`, `api-key`/`x-api-key`, or `?api_key=`."""
    headers = request_headers(request.scope)
    auth: str | None = headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("missing_key", status=401)
        return token.strip()
    return (
        headers.get("api-key")
        or headers.get("x-api-key")
        or request.query_params.get("api_key")
        or None
    )


def authenticate(request: Request, dialect: Dialect, keys: tuple[str, ...]) -> str:
    key = api_key(request)
    if not key:
        raise ApiError("missing_key")
    if keys and key not in keys:
        raise ApiError("invalid_key", dialect.invalid_key_message(key))
    return key


async def read_body(request: Request, limit: int) -> bytes:
    declared = request_headers(request.scope).get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    # Straight from ASGI receive: Request.stream()'s async generator costs more than the copy.
    body = b""
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            # The client left mid-body: there is nobody to answer, and nothing to judge.
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            break
    return body


def _too_large(limit: int) -> ApiError:
    return ApiError("too_large", f"Request body is too large: the limit is {limit} bytes")


class Unanswered(Response):
    """The answer to a client that has already gone: nothing is sent, so the journal records
    the exchange as incomplete, with no status."""

    def __init__(self) -> None:
        super().__init__(status_code=499)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


async def client_left(request: Request, exc: Exception) -> Response:
    return Unanswered()


def header_delivery(headers: Mapping[str, str]) -> Delivery:
    """`X-Mock-Delivery: first_byte=0.5, gap=0.02, gap_sigma=0.3` — timing for one request."""
    raw = headers.get(DELIVERY_HEADER)
    if not raw:
        return PLAIN
    fields = Delivery.__dataclass_fields__
    values: dict[str, object] = {}
    for item in raw.split(","):
        name, _, value = item.strip().partition("=")
        name = name.strip()
        if name not in fields:
            raise ApiError(
                "invalid_request",
                f"{DELIVERY_HEADER}: unknown setting {name!r}; known: {', '.join(fields)}",
            )
        try:
            if name in FLAGS:
                values[name] = value.strip().lower() in ("", "1", "true", "yes")
            elif name in COUNTS:
                values[name] = int(value)
            elif name == "body":
                values[name] = value
            else:
                values[name] = float(value)
        except ValueError:
            raise ApiError(
                "invalid_request", f"{DELIVERY_HEADER}: {name} needs a number, got {value!r}"
            ) from None
    try:
        return Delivery(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ApiError("invalid_request", f"{DELIVERY_HEADER}: {exc}") from None
