"""Inputs sized or shaped to hurt: deep nesting, huge headers, huge prompts. Each gets a clear
answer, and the server stays bounded in memory and keeps serving everyone else."""

from __future__ import annotations

import httpx
import pytest

from mockserver.schemas import assert_valid
from mockserver.server import MockServer

AUTH = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
MODELS = {"deepseek": "deepseek-chat", "aimlapi": "deepseek-chat", "acedata": "deepseek-v3"}


def nested_body(dialect: str, levels: int) -> bytes:
    head = (
        f'{{"model": "{MODELS[dialect]}", "messages": [{{"role": "user", "content": "hi"}}], "x": '
    )
    return head.encode() + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize("dialect", sorted(MODELS))
@pytest.mark.parametrize("levels", [128, 254, 255, 600, 1024])
def test_deep_nesting_is_the_documented_400_and_the_journal_still_reads(
    mock: MockServer, dialect: str, levels: int
) -> None:
    url = mock.url_for(dialect) + "/chat/completions"
    response = httpx.post(url, content=nested_body(dialect, levels), headers=AUTH)
    assert response.status_code == 400, response.text
    assert_valid(f"{dialect}/error.schema.json", response.json())
    assert "depth limit exceeded" in response.text
    journal = httpx.get(mock.url + "/__mock/journal")
    assert journal.status_code == 200, journal.text
    (entry,) = journal.json()["entries"]
    assert entry["status"] == 400 and entry["request"]["json"] is None
    assert entry["request"]["text"].startswith('{"model"')


def test_nesting_up_to_the_limit_is_accepted(mock: MockServer) -> None:
    url = mock.url_for("deepseek") + "/chat/completions"
    response = httpx.post(url, content=nested_body("deepseek", 127), headers=AUTH)
    assert response.status_code == 200, response.text
    assert httpx.get(mock.url + "/__mock/journal").status_code == 200
