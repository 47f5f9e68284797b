"""The admin API's doors: loopback peers, loopback names, same-origin, JSON only, the token."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from starlette.requests import Request

from mockserver.admin import check_request, is_loopback_address, is_loopback_name
from mockserver.errors import ApiError
from mockserver.server import MockServer
from mockserver.settings import Settings
from tests.conftest import LATE_2025

FLAKY = {"rules": [{"name": "flaky", "probability": 0.2, "error": {"status": 500}}]}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback, as a dual-stack socket reports it
        ("::1:0:0:5", False),  # starts with "::1", is not loopback
        ("127.0.0.1.attacker.example", False),
        ("1270.0.0.1", False),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("localhost", False),  # a name, not an address: the peer is always an address
        ("", False),
    ],
)
def test_loopback_peers_are_told_by_ipaddress(host: str, loopback: bool) -> None:
    assert is_loopback_address(host) is loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("attacker.example", False),
        ("localhost.attacker.example", False),
    ],
)
def test_loopback_names(host: str, loopback: bool) -> None:
    assert is_loopback_name(host) is loopback


def _request(client: str, headers: dict[str, str], method: str = "GET") -> Request:
    return Request(
        {
            "type": "http",
            "method": method,
            "path": "/__mock/journal",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": (client, 50000),
        }
    )


@pytest.mark.parametrize(
    ("client", "allowed"), [("::ffff:127.0.0.1", True), ("::1:0:0:5", False), ("10.0.0.1", False)]
)
def test_the_peer_decides(client: str, allowed: bool) -> None:
    request = _request(client, {"host": "127.0.0.1:8000"})
    if allowed:
        check_request(request, None)
    else:
        with pytest.raises(ApiError, match="loopback clients only"):
            check_request(request, None)


def test_a_forwarded_request_is_not_a_loopback_client(mock: MockServer) -> None:
    """Through a proxy on this machine, the client is elsewhere; and the server never takes a
    peer address from X-Forwarded-For (uvicorn runs with proxy_headers off)."""
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        response = httpx.get(mock.url + "/__mock/journal", headers={header: "127.0.0.1"})
        assert response.status_code == 403, header
    assert mock._server.config.proxy_headers is False


def test_dns_rebinding_is_refused(mock: MockServer) -> None:
    """A page on attacker.example that resolves to 127.0.0.1 sends Host: attacker.example."""
    response = httpx.get(mock.url + "/__mock/journal", headers={"Host": "attacker.example"})
    assert response.status_code == 403
    assert "loopback name" in response.json()["error"]["message"]
    for host in ("localhost", f"localhost:{mock.port}", f"127.0.0.1:{mock.port}"):
        assert httpx.get(mock.url + "/__mock/health", headers={"Host": host}).status_code == 200


def test_a_cross_origin_page_cannot_replace_the_rules(mock: MockServer) -> None:
    before = [rule.name for rule in mock.scenario.rules]
    attacks = [
        # fetch(..., {method: "PUT", mode: "no-cors", body}) sends text/plain and an Origin
        {"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://attacker.example"},
        {"Content-Type": "text/plain"},  # the same, from a client that leaves Origin out
        {"Content-Type": "application/json", "Origin": "null"},  # a sandboxed frame
        {"Content-Type": "application/json", "Origin": "http://localhost.attacker.example"},
    ]
    for headers in attacks:
        response = httpx.put(mock.url + "/__mock/scenario", json=FLAKY, headers=headers)
        assert response.status_code in (403, 415), headers
    assert [rule.name for rule in mock.scenario.rules] == before
    same_origin = {"Origin": f"http://localhost:{mock.port}"}
    ok = httpx.put(mock.url + "/__mock/scenario", json=FLAKY, headers=same_origin)
    assert ok.status_code == 200


def test_a_form_post_cannot_reset_the_server(mock: MockServer) -> None:
    httpx.post(mock.url + "/chat/completions", json={}, headers={"Authorization": "Bearer k"})
    form = httpx.post(mock.url + "/__mock/reset", data={"x": "1"})
    assert form.status_code == 415
    assert "application/json" in form.json()["error"]["message"]
    assert len(mock.journal) == 1  # not reset
    assert httpx.post(mock.url + "/__mock/reset").status_code == 204  # no body: fine


def test_a_non_json_body_gets_a_clear_message(mock: MockServer) -> None:
    response = httpx.put(
        mock.url + "/__mock/scenario",
        content=b"rules: []",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("the body is not valid JSON")
    assert '{"rules": [' in message


def test_the_same_scenario_added_twice_is_there_once(mock: MockServer) -> None:
    startup = [rule.name for rule in mock.scenario.rules]
    for _ in range(2):
        response = httpx.post(mock.url + "/__mock/scenario", json=FLAKY)
        assert response.json() == {"rules": [*startup, "flaky"]}
    twice = {"rules": [{"name": "a", "error": {"status": 500}}] * 2}
    response = httpx.post(mock.url + "/__mock/scenario", json=twice)
    assert response.status_code == 400
    assert "repeated: ['a']" in response.json()["error"]["message"]


def test_the_admin_root_lists_its_endpoints(mock: MockServer) -> None:
    response = httpx.get(mock.url + "/__mock/")
    assert response.status_code == 200
    listed = {(e["method"], e["path"]) for e in response.json()["endpoints"]}
    assert ("GET", "/__mock/journal") in listed and ("POST", "/__mock/reset") in listed
    assert len(listed) == 11 and ("GET", "/__mock/ui") in listed
    # Beside them, where each OpenAPI document is served: the admin API's and each dialect's.
    documents = response.json()["documents"]
    mounted = {dialect.name for _, dialect in mock.mock.mounts}
    assert len(mounted) == 4 and set(documents) == {"admin", *mounted}
    for name, path in documents.items():
        document = httpx.get(mock.url + path).json()
        assert document["openapi"].startswith("3."), name
    assert documents["admin"] == "/__mock/openapi.json"
    assert documents["acedata"] == "/deepseek/openapi.json"


def test_health_gives_each_dialect_a_base_url_its_sdk_takes_as_it_is(mock: MockServer) -> None:
    health = httpx.get(mock.url + "/__mock/health").json()
    urls = health["base_urls"]
    assert urls == {name: mock.url + path for name, path in health["base_paths"].items()}
    assert urls["deepseek"] == mock.url and urls["anthropic"] == mock.url + "/anthropic"
    for dialect in ("deepseek", "aimlapi"):
        with openai.OpenAI(base_url=urls[dialect], api_key="sk-test", max_retries=0) as sdk:
            answer = sdk.chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "Hello"}]
            )
        assert answer.choices[0].message.content, dialect
    with anthropic.Anthropic(base_url=urls["anthropic"], api_key="sk-test") as client:
        message = client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "Hello"}],
        )
    assert message.content
    acedata = httpx.post(
        urls["acedata"] + "/chat/completions",
        json={"model": "deepseek-v3", "messages": [{"role": "user", "content": "Hello"}]},
        headers={"Authorization": "Bearer sk-test"},
    )
    assert acedata.status_code == 200


def test_the_token_takes_bearer_in_any_case_and_only_with_it() -> None:
    with MockServer(Settings(port=0, era=LATE_2025, admin_token="admin-secret")) as server:
        health = server.url + "/__mock/health"
        for scheme in ("Bearer", "bearer", "BEARER"):
            sent = {"Authorization": f"{scheme} admin-secret"}
            assert httpx.get(health, headers=sent).status_code == 200, scheme
        for refused in ("admin-secret", "Basic admin-secret", "Bearer", "Bearer admin-secretx"):
            sent = {"Authorization": refused}
            assert httpx.get(health, headers=sent).status_code == 401, refused


def test_the_readme_admin_examples_run(mock: MockServer) -> None:
    """The README's curl block, as written, against this server (-f: an HTTP error fails)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    block = readme.split("### The admin API", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    script = block.replace("http://127.0.0.1:8000", mock.url).replace("curl -s ", "curl -sf ")
    assert script.count("curl -sf ") == 9
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [rule.name for rule in mock.scenario.rules] == [rule.name for rule in mock.mock.startup]


def test_the_readme_namespace_example(mock: MockServer) -> None:
    """A rule PUT into `team-a` answers requests sent under /ns/team-a/ only; the admin API
    waits for a namespace's exchanges, and forgets the namespace."""
    team = {"X-Mock-Namespace": "team-a", "Content-Type": "application/json"}
    down = {"rules": [{"name": "down", "error": {"status": 503}}]}
    assert httpx.put(mock.url + "/__mock/scenario", json=down, headers=team).status_code == 200
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
    auth = {"Authorization": "Bearer sk-test"}
    assert (
        httpx.post(mock.url + "/ns/team-a/chat/completions", json=body, headers=auth).status_code
        == 503
    )
    assert httpx.post(mock.url + "/chat/completions", json=body, headers=auth).status_code == 200
    waited = httpx.get(mock.url + "/__mock/journal?wait_for=1&timeout=5", headers=team).json()
    assert [(e["path"], e["status"]) for e in waited["entries"]] == [("/chat/completions", 503)]
    too_many = httpx.get(mock.url + "/__mock/journal?wait_for=2&timeout=0", headers=team).json()
    assert "recorded 1 exchange, expected 2" in too_many["timed_out"]
    assert [e.status for e in mock.journal.entries()] == [200]  # the default namespace's own
    bad = httpx.get(mock.url + "/__mock/journal?wait_for=x")
    assert bad.status_code == 400 and "wait_for takes a count" in bad.json()["error"]["message"]
    assert httpx.delete(mock.url + "/__mock/namespace", headers=team).status_code == 204
    assert "team-a" not in mock.mock.store.namespaces()
    assert httpx.get(mock.url + "/__mock/scenario", headers=team).json()["rules"] == [
        rule.name for rule in mock.mock.startup
    ]


def test_parked_journal_waits_leave_the_worker_threads_to_big_prompts(mock: MockServer) -> None:
    """More waits than anyio's default pool has threads (40) are parked, and a prompt big
    enough to be counted in a worker thread is still answered while they wait: each wait has
    a thread from a pool of its own."""
    import select
    import socket

    from mockserver.app import OFFLOAD_BYTES

    auth = {"Authorization": "Bearer sk-test"}
    big = {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": "word " * (OFFLOAD_BYTES // 4)}],
    }
    small = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
    host, port = mock.url.removeprefix("http://").split(":")
    ask = b"GET /__mock/journal?wait_for=2&timeout=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    waits = [socket.create_connection((host, int(port)), timeout=60) for _ in range(50)]
    try:
        for wait in waits:  # each wait is sent whole before the big prompt is
            wait.sendall(ask)
        answered = httpx.post(mock.url + "/chat/completions", json=big, headers=auth, timeout=60)
        assert answered.status_code == 200
        early, _, _ = select.select(waits, [], [], 0)  # none answered yet: all still parked
        assert early == []
        httpx.post(mock.url + "/chat/completions", json=small, headers=auth)  # the 2nd entry
        assert [wait.recv(12) for wait in waits] == [b"HTTP/1.1 200"] * 50
    finally:
        for wait in waits:
            wait.close()
