"""A body seen before is not parsed again, and its answer is the one a first parse gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from mockserver.server import MockServer
from mockserver.validated import KEEP_BODY_BYTES
from mockserver.validation import parse_body

AUTH = {"Authorization": "Bearer k"}
LONG_PROMPT = "Tell me about the sea, and about ships that sail on it. " * 20  # > 64 tokens
CHAT = {"model": "deepseek-chat", "messages": [{"role": "user", "content": LONG_PROMPT}]}


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bodies the server parsed, in order."""
    seen: list[bytes] = []
    parse: Callable[[bytes], Any] = parse_body

    def counted(data: bytes) -> Any:
        seen.append(data)
        return parse(data)

    monkeypatch.setattr("mockserver.app.parse_body", counted)
    return seen


def _post(mock: MockServer, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        mock.base_url + "/chat/completions",
        content=body,
        headers=AUTH | {"content-type": "application/json"} | (headers or {}),
    )


def test_a_repeated_body_is_parsed_once_and_counted_the_same(
    mock: MockServer, parses: list[bytes]
) -> None:
    body = orjson.dumps(CHAT)
    first, second = (_post(mock, body).json() for _ in range(2))
    assert parses == [body]
    assert first["usage"]["prompt_tokens"] == second["usage"]["prompt_tokens"]
    # What depends on earlier requests is still decided per request: the second one hits the
    # prompt cache that the first one filled.
    assert first["usage"]["prompt_cache_hit_tokens"] == 0
    assert second["usage"]["prompt_cache_hit_tokens"] > 0
    assert first["choices"] == second["choices"]
    assert first["id"] != second["id"]


def test_another_era_path_or_byte_is_parsed_afresh(mock: MockServer, parses: list[bytes]) -> None:
    body = orjson.dumps(CHAT)
    assert _post(mock, body).status_code == 200
    spaced = body.replace(b":", b": ", 1)
    assert _post(mock, spaced).status_code == 200
    old = _post(mock, body, {"X-Mock-Era": "v4"})
    assert old.status_code == 200, old.text
    beta = httpx.post(mock.url + "/beta/chat/completions", content=body, headers=AUTH)
    assert beta.status_code == 200
    assert parses == [body, spaced, body, body]


def test_a_refused_body_is_refused_every_time(mock: MockServer, parses: list[bytes]) -> None:
    body = orjson.dumps(CHAT | {"temperature": 3})
    for _ in range(2):
        refused = _post(mock, body)
        assert refused.status_code == 400
        assert "temperature" in refused.json()["error"]["message"]
    assert parses == [body, body]


def test_a_big_body_is_not_kept_and_reset_forgets(mock: MockServer, parses: list[bytes]) -> None:
    big = orjson.dumps(CHAT | {"user": "x" * KEEP_BODY_BYTES})
    small = orjson.dumps(CHAT)
    for body in (big, big, small):
        assert _post(mock, body).status_code == 200
    assert len(mock.mock.validated) == 1
    mock.reset()
    assert len(mock.mock.validated) == 0
    assert _post(mock, small).status_code == 200
    assert parses == [big, big, small, small]
