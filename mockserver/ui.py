"""/__mock/ui: the journal as a live page in a browser.

One page, served as it is shipped (`static/`: no build step, nothing fetched from elsewhere),
and a script that draws every value with `textContent`: nothing a client sent reaches the
page as HTML, and the Content-Security-Policy allows only this server's own script. The rows
arrive as server-sent events (`/__mock/ui/events`); a reconnecting page sends the id of the
last event it had (`Last-Event-ID`, the journal's cursor) and gets only what came after, or a
clear. The page has the admin API's guard, and resets and clears through the admin API.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mockserver import admin, ui_data
from mockserver.errors import ApiError
from mockserver.journal import ADMIN_PREFIX
from mockserver.wire import BodyStream, OpenBodies

if TYPE_CHECKING:
    from mockserver.context import Mock
    from mockserver.state import Space

PAGE = ADMIN_PREFIX + "ui"
# One read of the journal waits this long in a worker thread; then the status is looked at
# again. A page that leaves is noticed at once; its thread ends within this.
POLL_SECONDS = 0.5
KEEP_ALIVE_SECONDS = 15.0  # a comment line when nothing else was sent, so proxies keep it open
RETRY_MS = 1000  # how soon a browser reconnects after the stream breaks
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
ASSETS = {
    "ui.js": "text/javascript; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
}


def _shipped(name: str) -> bytes:
    return files("mockserver").joinpath("static", name).read_bytes()


def check_page_request(request: Request, token: str | None) -> None:
    """The admin API's guard. A browser cannot put a header on a link or an event stream, so
    the token may come as `?token=` as well (the access log and the journal never keep it)."""
    sent = request.query_params.get("token")
    if token is not None and sent is None and "authorization" not in request.headers:
        admin.check_request(request, None)  # the other checks first, then what a browser can do
        raise ApiError(
            "invalid_key", "the page needs the admin token: ?token=<token> on its address"
        )
    if token is None or sent is None or "authorization" in request.headers:
        admin.check_request(request, token)
        return
    admin.check_request(request, None)
    if not hmac.compare_digest(sent.encode(), token.encode()):
        raise ApiError(
            "invalid_key", "the page needs the admin token: ?token=<token> on its address"
        )


def _cursor(request: Request) -> int:
    """Where a stream starts: after the `Last-Event-ID` a reconnecting browser sends, else at
    the start of the journal."""
    sent = request.headers.get("last-event-id", "").strip()
    if not sent:
        return 0
    if not sent.isdigit() or len(sent) > 18:
        raise ApiError(
            "invalid_request",
            f"Last-Event-ID must be a cursor this page sent (a whole number), not {sent[:40]!r}",
        )
    return int(sent)


def _event(kind: bytes, data: object) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (kind, orjson.dumps(data))


async def events(mock: Mock, space: Space, after: int, pages: OpenBodies) -> AsyncIterator[bytes]:
    """The page's event stream: the status whenever it changes, the journal as it grows, a
    keep-alive comment when nothing else was sent for a while. It ends when the client leaves
    or the server stops (`BodyStream`, endless)."""
    yield b"retry: %d\n\n" % RETRY_MS
    shown = b""
    quiet_since = anyio.current_time()
    while True:
        status = _event(b"status", ui_data.status(mock, space, pages.count))
        if status != shown:
            yield status
            shown, quiet_since = status, anyio.current_time()
        # The journal's read blocks (it may wait on a shared store): in a worker thread, which
        # also encodes the entries so a full journal never holds the event loop.
        batch = await anyio.to_thread.run_sync(
            ui_data.read, space, after, POLL_SECONDS, abandon_on_cancel=True
        )
        if batch.cursor != after or batch.cleared:
            yield await anyio.to_thread.run_sync(ui_data.entries_event, batch)
            after, quiet_since = batch.cursor, anyio.current_time()
        elif anyio.current_time() - quiet_since >= KEEP_ALIVE_SECONDS:
            yield b": keep-alive\n\n"
            quiet_since = anyio.current_time()


def routes(mock: Mock) -> list[Route]:
    page_html = _shipped("ui.html")
    assets = {name: (_shipped(name), kind) for name, kind in ASSETS.items()}
    pages = OpenBodies()  # the pages open now, shown in the status panel

    def guard(request: Request) -> None:
        check_page_request(request, mock.settings.admin_token)

    async def page(request: Request) -> Response:
        guard(request)
        return Response(page_html, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    async def asset(request: Request) -> Response:
        # Unguarded: the same shipped bytes for everyone, and a browser fetching them from the
        # page's <link> and <script> has no way to add the token.
        found = assets.get(request.path_params["name"])
        if found is None:
            raise ApiError("not_found", f"no such file of the page: {request.url.path}")
        body, kind = found
        return Response(body, media_type=kind, headers=PAGE_HEADERS)

    async def stream(request: Request) -> BodyStream:
        guard(request)
        return BodyStream(
            events(mock, mock.space(request.headers), _cursor(request), pages),
            media_type="text/event-stream; charset=utf-8",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
            tracker=pages,
            endless=True,
        )

    async def entry(request: Request) -> Response:
        guard(request)
        # Taken as text: Starlette's int convertor reads any run of digits, and Python refuses
        # to read one of over 4,300 (a 500); no entry has a number of over 18.
        sent: str = request.path_params["seq"]
        if not (sent.isascii() and sent.isdigit()) or len(sent) > 18:
            raise ApiError("not_found", f"exchange {sent[:40]!r} is not in the journal")
        seq = int(sent)
        space = mock.space(request.headers)

        def look() -> bytes | None:
            found = ui_data.find(space, seq)
            return None if found is None else orjson.dumps(ui_data.detail(found))

        shown = await anyio.to_thread.run_sync(look)
        if shown is None:
            raise ApiError("not_found", f"exchange {seq} is not in the journal (or no longer)")
        return Response(
            shown,
            media_type="application/json",
            headers={"cache-control": "no-store"},
        )

    async def slash(request: Request) -> Response:
        # The page's own links are relative to `/__mock/ui`; under `ui/` they would miss. The
        # target is relative too, so a namespace's prefix (`/ns/NAME`) and `?token=` stay.
        query = request.url.query
        return RedirectResponse("../ui" + ("?" + query if query else ""), status_code=308)

    # Paths inside the admin mount (/__mock), which routes them before its own: there another
    # method is a 405, where beside the mount it was the mount's 404.
    inside = "/" + PAGE.removeprefix(ADMIN_PREFIX)
    return [
        Route(inside, page, methods=["GET"]),
        Route(inside + "/", slash, methods=["GET"]),
        Route(inside + "/events", stream, methods=["GET"]),
        Route(inside + "/entry/{seq}", entry, methods=["GET"]),
        Route(inside + "/{name}", asset, methods=["GET"]),
    ]
