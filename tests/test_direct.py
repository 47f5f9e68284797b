"""The completion endpoints answer in front of Starlette's router, and nothing else changes."""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from mockserver.server import MockServer

AUTH = {"Authorization": "Bearer k"}
CHAT = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}


def _no_router(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: Router, scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError(f"routed {scope['method']} {scope['path']}")

    monkeypatch.setattr(Router, "__call__", refuse)


@pytest.mark.parametrize(
    ("dialect", "path"),
    [
        ("deepseek", "/chat/completions"),
        ("deepseek", "/v1/chat/completions"),
        ("deepseek", "/beta/chat/completions"),
        ("acedata", "/deepseek/chat/completions"),
        ("aimlapi", "/aimlapi/v1/chat/completions"),
    ],
)
def test_a_completion_is_answered_without_the_router(
    mock: MockServer, monkeypatch: pytest.MonkeyPatch, dialect: str, path: str
) -> None:
    _no_router(monkeypatch)
    model = "deepseek-v3" if dialect == "acedata" else "deepseek-chat"
    body = CHAT | {"model": model, "stream": True}
    answered = httpx.post(mock.url + path, json=body, headers=AUTH)
    assert answered.status_code == 200, answered.text
    assert answered.text.endswith("data: [DONE]\n\n")
    (entry,) = mock.journal.wait_for(1)
    assert (entry.dialect, entry.status, entry.stream, entry.complete) == (dialect, 200, True, True)


def test_a_fim_completion_and_its_errors_skip_the_router_too(
    mock: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_router(monkeypatch)
    fim = {"model": "deepseek-chat", "prompt": "def f():"}
    assert httpx.post(mock.url + "/beta/completions", json=fim, headers=AUTH).status_code == 200
    refused = httpx.post(mock.url + "/chat/completions", json=CHAT)  # no key
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"


def test_everything_else_still_goes_through_the_router(
    mock: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_method = httpx.get(mock.url + "/chat/completions", headers=AUTH)
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
    assert httpx.get(mock.url + "/models", headers=AUTH).status_code == 200
    _no_router(monkeypatch)
    # The router is now broken: whatever it served fails, through the one error door.
    assert httpx.get(mock.url + "/models", headers=AUTH).status_code == 500
