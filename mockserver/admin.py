"""/__mock/: read and clear the journal, replace the rules, reset, health. Loopback only, and
behind a token when the server has one."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from mockserver.errors import ApiError
from mockserver.journal import ADMIN_PREFIX
from mockserver.scenario import rules_from_json

if TYPE_CHECKING:
    from mockserver.app import Mock

PREFIX = ADMIN_PREFIX.rstrip("/")
LOOPBACK = ("127.", "::1", "localhost")


def _json(value: object, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def mount(mock: Mock) -> Mount:
    def guard(request: Request) -> None:
        request.state.rule = "admin"
        client = request.client.host if request.client else ""
        if not client.startswith(LOOPBACK):
            raise ApiError("forbidden", "the admin API answers loopback clients only")
        token = mock.settings.admin_token
        if token is not None:
            sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(sent.encode(), token.encode()):
                raise ApiError(
                    "invalid_key", "the admin API needs its token: Authorization: Bearer <token>"
                )

    async def health(request: Request) -> Response:
        guard(request)
        return _json(
            {
                "status": "ok",
                "dialects": [d.name for _, d in mock.mounts],
                "open_bodies": mock.bodies.count,
                "journal": len(mock.journal),
            }
        )

    async def journal(request: Request) -> Response:
        guard(request)
        if request.method == "DELETE":
            mock.journal.clear()
            return Response(status_code=204)
        return _json({"entries": [entry.to_json() for entry in mock.journal.entries()]})

    async def scenario(request: Request) -> Response:
        guard(request)
        if request.method == "GET":
            return _json(
                {"rules": [rule.name for rule in mock.scenario.rules], "uses": mock.scenario.uses()}
            )
        if request.method == "DELETE":
            mock.scenario.replace(())
            return Response(status_code=204)
        try:
            document = orjson.loads(await request.body())
            rules = rules_from_json(document)
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise ApiError("invalid_request", str(exc)) from None
        if request.method == "PUT":
            mock.scenario.replace(rules)
        else:
            for rule in rules:
                mock.scenario.add(rule)
        return _json({"rules": [rule.name for rule in mock.scenario.rules]})

    async def reset(request: Request) -> Response:
        guard(request)
        mock.reset()
        return Response(status_code=204)

    return Mount(
        PREFIX,
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/journal", journal, methods=["GET", "DELETE"]),
            Route("/scenario", scenario, methods=["GET", "PUT", "POST", "DELETE"]),
            Route("/reset", reset, methods=["POST"]),
        ],
    )
