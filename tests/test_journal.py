"""The journal and the admin API: every exchange recorded, secrets never kept."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from mockserver.journal import Entry, Journal
from mockserver.server import MockServer
from mockserver.settings import Settings
from tests.conftest import LATE_2025

AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
CANARY = "sk-canary-0123456789abcdefWXYZ"


def test_a_key_never_appears_in_journal_admin_api_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with MockServer(
        Settings(port=0, api_keys=("sk-right-000000000000",)), log_level="debug"
    ) as server:
        url = server.url + "/chat/completions"
        sent = [
            httpx.post(url, json=BODY, headers={"Authorization": f"Bearer {CANARY}"}),
            httpx.post(url, json=BODY, headers={"api-key": CANARY}),
            httpx.post(url, json=BODY, headers={"x-api-key": CANARY}),
            httpx.post(url, json=BODY, params={"api_key": CANARY}),
            httpx.get(server.url + "/models", params={"api_key": CANARY}),
        ]
        assert [r.status_code for r in sent] == [401] * 5
        entries = server.journal.wait_for(5)
        admin = httpx.get(server.url + "/__mock/journal").text
    recorded = json.dumps([e.to_json() for e in entries], ensure_ascii=False)
    responses = "".join(r.text for r in sent)
    # The client's own loggers (httpx, httpcore) print its URL; everything else is the server.
    server_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    assert CANARY not in recorded
    assert CANARY not in admin
    assert not [line for line in server_lines if CANARY in line]
    assert CANARY not in responses
    assert "…WXYZ" in recorded  # a short fingerprint is enough to tell keys apart
    assert any("api_key=" in line for line in server_lines), "the access log ran"


def test_rejected_failed_and_cut_exchanges_are_all_recorded(mock: MockServer) -> None:
    httpx.post(mock.url + "/chat/completions", json=BODY)  # no key
    httpx.post(mock.url + "/chat/completions", content=b"{", headers=AUTH)  # bad JSON
    httpx.get(mock.url + "/nowhere")
    httpx.post(mock.url + "/chat/completions", json=BODY, headers=AUTH | {"X-Mock-Fault": "500"})
    stream = BODY | {"stream": True}
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            mock.url + "/chat/completions",
            json=stream,
            headers=AUTH | {"X-Mock-Fault": "reset_after=2"},
        )
    entries = mock.journal.wait_for(5)
    assert [(e.status, e.complete) for e in entries] == [
        (401, True), (400, True), (404, True), (500, True), (200, False),
    ]  # fmt: skip
    assert entries[3].rule == "x-mock-fault: 500"
    assert entries[4].stream and entries[4].json == BODY | {"stream": True}
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)


def test_entries_carry_what_crossed_the_wire(mock: MockServer) -> None:
    response = httpx.post(mock.url + "/chat/completions?trace=1", json=BODY, headers=AUTH)
    (entry,) = mock.journal.entries()
    assert entry.method == "POST" and entry.path == "/chat/completions" and entry.query == "trace=1"
    assert entry.dialect == "deepseek" and entry.rule == "generated"
    assert entry.bytes == len(response.content) and entry.status == 200
    assert entry.ttfb_ms is not None and entry.elapsed_ms >= entry.ttfb_ms
    assert entry.headers["authorization"] == "…"  # too short to fingerprint safely


def test_the_journal_is_bounded_oldest_first() -> None:
    journal = Journal(size=3)
    for seq in range(1, 6):
        journal.record(Entry(seq=seq, method="GET", path="/"))
    assert [e.seq for e in journal.entries()] == [3, 4, 5]


def test_wait_for_fails_clearly_instead_of_hanging() -> None:
    with pytest.raises(AssertionError, match=r"expected 1 within 0\.05 s"):
        Journal().wait_for(1, timeout=0.05)


def test_wait_for_counts_past_what_the_journal_keeps() -> None:
    journal = Journal(size=3)
    for seq in range(1, 6):
        journal.record(Entry(seq=seq, method="GET", path="/"))
    assert [e.seq for e in journal.wait_for(5, timeout=0.05)] == [3, 4, 5]
    with pytest.raises(AssertionError, match=r"recorded 5 exchanges, expected 6 within"):
        journal.wait_for(6, timeout=0.05)
    journal.clear()  # counts start again
    with pytest.raises(AssertionError, match=r"recorded 0 exchanges, expected 1 within"):
        journal.wait_for(1, timeout=0.05)


def test_admin_api_replaces_rules_and_reads_the_journal(mock: MockServer) -> None:
    admin = mock.url + "/__mock"
    scenario = {"rules": [{"name": "down", "times": 1, "error": {"status": 503}}]}
    assert httpx.put(admin + "/scenario", json=scenario).json() == {"rules": ["down"]}
    first = httpx.post(mock.url + "/chat/completions", json=BODY, headers=AUTH)
    second = httpx.post(mock.url + "/chat/completions", json=BODY, headers=AUTH)
    assert (first.status_code, second.status_code) == (503, 200)
    journal = httpx.get(admin + "/journal").json()["entries"]
    chat = [e for e in journal if e["path"] == "/chat/completions"]
    assert [e["status"] for e in chat] == [503, 200] and chat[0]["rule"] == "down"
    assert chat[0]["request"]["json"] == BODY
    assert httpx.get(admin + "/scenario").json()["uses"] == {"down": 1}
    assert httpx.delete(admin + "/journal").status_code == 204
    assert httpx.get(admin + "/health").json()["journal"] == 0  # admin calls are not recorded


def test_admin_api_rejects_a_bad_scenario_with_reasons(mock: MockServer) -> None:
    bad = {"rules": [{"name": "x", "error": {"status": 200}, "reply": {"content": "y"}}]}
    response = httpx.put(mock.url + "/__mock/scenario", json=bad)
    assert response.status_code == 400
    assert "not a valid scenario" in response.json()["error"]["message"]


def test_admin_reset_restores_the_start_up_rules(mock: MockServer) -> None:
    startup = [rule.name for rule in mock.scenario.rules]
    httpx.post(
        mock.url + "/__mock/scenario", json={"rules": [{"name": "extra", "error": {"status": 500}}]}
    )
    assert [rule.name for rule in mock.scenario.rules] == [*startup, "extra"]
    assert httpx.post(mock.url + "/__mock/reset").status_code == 204
    assert [rule.name for rule in mock.scenario.rules] == startup
    assert len(mock.journal) == 0


def test_admin_token() -> None:
    with MockServer(Settings(port=0, era=LATE_2025, admin_token="admin-secret")) as server:
        assert httpx.get(server.url + "/__mock/health").status_code == 401
        wrong = httpx.get(server.url + "/__mock/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = httpx.get(
            server.url + "/__mock/health", headers={"Authorization": "Bearer admin-secret"}
        )
        assert right.status_code == 200 and right.json()["status"] == "ok"


def test_a_bad_regular_expression_is_a_400_that_names_the_rule(mock: MockServer) -> None:
    bad = {"rules": [{"name": "x", "match": {"prompt": "(unclosed"}, "reply": {"content": "a"}}]}
    response = httpx.put(mock.url + "/__mock/scenario", json=bad)
    assert response.status_code == 400
    assert "$.rules[0].match.prompt" in response.json()["error"]["message"]
