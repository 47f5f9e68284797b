"""Inputs sized or shaped to hurt: deep nesting, huge headers, huge prompts. Each gets a clear
answer, and the server stays bounded in memory and keeps serving everyone else."""

from __future__ import annotations

import threading

import httpx
import pytest

from mockserver import tokens
from mockserver.journal import BODY_KEEP, HEADER_VALUE_KEEP, Entry, Journal, entry_cost
from mockserver.schemas import assert_valid
from mockserver.server import MockServer

AUTH = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
MODELS = {"deepseek": "deepseek-chat", "aimlapi": "deepseek-chat", "acedata": "deepseek-v3"}


def longest(server: MockServer) -> str:
    """The model with the longest context in the server's era, for prompts of hundreds of
    thousands of tokens."""
    models = server.mock.catalogs["deepseek"].at(server.mock.moment).models
    return max(models.items(), key=lambda item: item[1].context)[0]


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


def test_huge_headers_are_kept_cut_with_a_marker(mock: MockServer) -> None:
    big = "v" * (1024 * 1024)
    url = mock.url_for("deepseek") + "/chat/completions"
    body = nested_body("deepseek", 1)
    response = httpx.post(url, content=body, headers=AUTH | {"x-big": big, "x-small": "ok"})
    assert response.status_code == 200, response.text
    (entry,) = mock.journal.wait_for(1)
    assert entry.headers["x-small"] == "ok"
    kept = entry.headers["x-big"]
    assert len(kept) < HEADER_VALUE_KEEP + 64
    assert kept.startswith("vvvv") and kept.endswith(f"[{len(big) - HEADER_VALUE_KEEP} more bytes]")
    shown = httpx.get(mock.url + "/__mock/journal").json()["entries"][0]["request"]
    assert shown["truncated"] is True and shown["headers"]["x-big"] == kept


def test_a_body_over_the_kept_size_is_marked_truncated(mock: MockServer) -> None:
    content = "x" * (BODY_KEEP * 2)
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": content}]}
    httpx.post(mock.url + "/chat/completions", json=body, headers=AUTH, timeout=30)
    (entry,) = mock.journal.wait_for(1)
    assert len(entry.body) == BODY_KEEP and entry.body_bytes > BODY_KEEP
    shown = httpx.get(mock.url + "/__mock/journal").json()["entries"][0]
    assert shown["request"]["truncated"] is True
    assert shown["request"]["body_bytes"] == entry.body_bytes


def test_the_journal_is_bounded_by_bytes_oldest_out_first() -> None:
    journal = Journal(size=1000, max_bytes=1_000_000)
    for seq in range(1, 101):
        journal.record(Entry(seq=seq, method="POST", path="/x", body=b"b" * 60_000))
    kept = journal.entries()
    assert journal.bytes <= 1_000_000
    assert 10 <= len(kept) < 17 and kept[-1].seq == 100
    assert [e.seq for e in kept] == list(range(101 - len(kept), 101))
    journal.clear()
    assert journal.bytes == 0


def test_many_huge_headers_leave_the_journal_small(mock: MockServer) -> None:
    big = "h" * (1024 * 1024)
    url = mock.url_for("deepseek") + "/chat/completions"
    with httpx.Client(headers=AUTH) as client:
        for _ in range(20):
            assert (
                client.post(
                    url, content=nested_body("deepseek", 1), headers={"x-big": big}
                ).status_code
                == 200
            )
    entries = mock.journal.wait_for(20)
    assert sum(entry_cost(entry) for entry in entries) < 20 * (HEADER_VALUE_KEEP + BODY_KEEP)


def test_the_token_cache_is_bounded_by_bytes_and_freed_by_reset(mock: MockServer) -> None:
    tokens.clear_cache()
    words = " ".join(f"w{i}" for i in range(200_000))  # ~1.3 MB, ~400k tokens
    body = {"model": longest(mock), "messages": [{"role": "user", "content": words}]}
    response = httpx.post(mock.url + "/chat/completions", json=body, headers=AUTH, timeout=60)
    assert response.status_code in (200, 400), response.text  # 400: over the context, once counted
    assert tokens.cache_bytes() <= tokens.ENCODE_CACHE_BYTES
    httpx.post(mock.url + "/chat/completions", json=nested_body_json(), headers=AUTH)
    assert tokens.cache_bytes() > 0
    assert httpx.post(mock.url + "/__mock/reset").status_code == 204
    assert tokens.cache_bytes() == 0


def nested_body_json() -> dict[str, object]:
    return {"model": "deepseek-chat", "messages": [{"role": "user", "content": "cache me"}]}


def test_a_small_request_is_answered_while_a_huge_prompt_is_counted(
    mock: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting a multi-megabyte prompt once held every other client for seconds."""
    counting, release = threading.Event(), threading.Event()
    encode = tokens.encode

    def slow_encode(text: str) -> tuple[int, ...]:
        if len(text) > 1_000_000:  # only the huge prompt waits, and only until released
            counting.set()
            release.wait(timeout=20)
        return encode(text)

    monkeypatch.setattr(tokens, "encode", slow_encode)
    huge = {
        "model": longest(mock),
        "messages": [{"role": "user", "content": "w " * 1_000_000}],
    }
    url = mock.url + "/chat/completions"
    statuses: list[int] = []
    sender = threading.Thread(
        target=lambda: statuses.append(
            httpx.post(url, json=huge, headers=AUTH, timeout=60).status_code
        )
    )
    sender.start()
    try:
        assert counting.wait(timeout=20), "the huge prompt never reached the tokenizer"
        small = httpx.post(url, json=nested_body_json(), headers=AUTH, timeout=5)
        assert small.status_code == 200
    finally:
        release.set()
        sender.join(timeout=60)
    assert statuses in ([200], [400])  # 400: over the model's context, once counted
