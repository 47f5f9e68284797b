"""`/ns/NAME/…`: a namespace in the URL, for clients that cannot add a header.

A base URL such as `http://127.0.0.1:8000/ns/team-a` puts every request of a client in the
namespace `team-a`, exactly as `X-Mock-Namespace: team-a` does: the prefix is taken off the
path and the header is set before anything else sees the request. The pytest plugin gives
each test such a base URL, so a client built from it needs no extra configuration.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/ns/"


class NamespacePath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(PREFIX):
            name, slash, rest = path[len(PREFIX) :].partition("/")
            if name:
                headers = [(k, v) for k, v in scope["headers"] if k != b"x-mock-namespace"]
                headers.append((b"x-mock-namespace", name.encode("latin-1")))
                scope = {
                    **scope,
                    "path": slash + rest or "/",
                    "raw_path": (slash + rest or "/").encode("latin-1"),
                    "headers": headers,
                }
        await self.app(scope, receive, send)
