"""The completion endpoints as plain ASGI, beside the Starlette app that keeps everything else.

Starlette's exception middleware, router and request-response wrapper cost more per request
than the mock's own checks; a completion is answered by a dict lookup on its path instead. The
answers are the same: the endpoint is the one Starlette would route to, its expected errors go
to the same handlers, and anything else rises to the server-error handler outside, as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mockserver.wire import BodyStream, WholeBody

Endpoint = Callable[[Request], Awaitable[Response | BodyStream | WholeBody]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


class DirectRoutes:
    """In front of Starlette's exception middleware: a POST to a completion path is answered
    here; every other request (other methods, other paths, the admin API) goes on to the
    router, so its 404s, 405s and redirects are Starlette's as ever."""

    def __init__(
        self,
        app: ASGIApp,
        endpoints: Mapping[str, Endpoint],
        handlers: Mapping[type[Exception], Handler],
    ) -> None:
        self.app = app
        self.endpoints = dict(endpoints)
        # Exception itself is the server-error handler's, which sits outside every middleware.
        self.handlers = {kind: h for kind, h in handlers.items() if kind is not Exception}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await self.answer(endpoint, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def answer(self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self.handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def handler_for(self, exc: Exception) -> Handler | None:
        """The handler of the nearest class of `exc` that has one, as Starlette looks it up."""
        for kind in type(exc).__mro__:
            if kind in self.handlers:
                return self.handlers[kind]
        return None
