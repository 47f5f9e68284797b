"""The validating proxy and the recorder: forwarded unchanged and unbuffered, checked after."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from mockserver.cassette import load
from mockserver.dialects import DIALECTS
from mockserver.proxy import Proxy, proxy_app
from mockserver.recorder import Forwarder
from mockserver.server import MockServer, ThreadedServer
from mockserver.settings import Settings
from mockserver.tools import record_app
from tests.test_record_replay import BODY, CHAT, KEY, STREAM, fetch

DEEPSEEK = DIALECTS["deepseek"]


def proxy_for(upstream: str) -> tuple[Proxy, ThreadedServer]:
    watcher = Proxy(DEEPSEEK, upstream)
    app = proxy_app(watcher, Forwarder(upstream))
    return watcher, ThreadedServer(app, Settings(port=0))


@pytest.fixture
def upstream() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, dialect="deepseek")) as server:
        yield server


def test_the_proxy_forwards_unchanged_and_a_good_upstream_shows_no_drift(
    upstream: MockServer,
) -> None:
    watcher, server = proxy_for(upstream.url)
    with server:
        pace = {"X-Mock-Delivery": "keep_alives=2"}
        streamed = fetch(
            server.url + CHAT,
            STREAM | {"stream_options": {"include_usage": True}},
            headers=KEY | pace,
        )
        plain = fetch(server.url + CHAT, BODY, headers=KEY)
        error = fetch(server.url + CHAT, BODY, headers=KEY | {"X-Mock-Fault": "429:retry_after=3"})
        cut = fetch(server.url + CHAT, STREAM, headers=KEY | {"X-Mock-Fault": "reset_after=2"})
        report = httpx.get(server.url + "/__mock/drift").json()
    entries = upstream.journal.entries()
    assert [e.status for e in entries] == [200, 200, 429, 200]
    assert streamed.body.startswith(b": keep-alive\n\n: keep-alive\n\ndata: {")
    assert streamed.body.endswith(b"data: [DONE]\n\n")
    assert error.status == 429 and error.headers["retry-after"] == "3"
    assert cut.reset, "a broken upstream connection is broken for the client too"
    assert plain.headers["x-ds-trace-id"]
    assert report["undeclared_fields"] == [] and report["missing_required_fields"] == []
    assert report["status_differences"] == []
    assert [p["problem"] for p in report["problems"]] == [
        "the connection broke mid-body",
        "the stream ended without data: [DONE]",
    ]
    assert report["requests_sent"] == 4 and report["bodies_checked"] >= 8
    assert {c["status"] for c in report["error_cases"]} == {429}
    assert watcher.drift.drifted  # the cut is news, even from a correct upstream


def breaking_upstream(gate: threading.Event | None = None) -> Any:
    """A DeepSeek look-alike that breaks the contract on purpose: each chunk carries a field
    no schema declares, and the stream ends without `data: [DONE]`. With a gate, it waits for
    it after the first frame."""

    def chunk(n: int, **delta: Any) -> bytes:
        body = {
            "id": "x1",
            "object": "chat.completion.chunk",
            "created": 1796000000,
            "model": "deepseek-flash",
            "surprise": n,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                | ({"finish_reason": "stop"} if n == 2 else {})
            ],
        }
        if n == 2:
            body["usage"] = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        frames = [
            chunk(0, role="assistant", content=""),
            chunk(1, content="Hi"),
            chunk(2, content="!"),
        ]
        for n, frame in enumerate(frames):
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            if n == 0 and gate is not None:
                # The second frame waits until the client has the first: proof of no buffering.
                await anyio.to_thread.run_sync(gate.wait, 10)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def test_the_proxy_reports_an_added_field_and_a_missing_done_as_drift() -> None:
    with ThreadedServer(breaking_upstream(), Settings(port=0)) as bad:
        watcher, server = proxy_for(bad.url)
        with server:
            got = fetch(server.url + CHAT, STREAM, headers=KEY)
            report = httpx.get(server.url + "/__mock/drift").json()
    assert got.status == 200 and got.body.count(b"data: ") == 3  # forwarded, all the same
    (undeclared,) = report["undeclared_fields"]
    assert undeclared["path"] == "$.surprise" and undeclared["count"] == 3
    assert undeclared["schema"] == "deepseek/chat-completion-chunk.schema.json"
    problems = [p["problem"] for p in report["problems"]]
    assert "the stream ended without data: [DONE]" in problems
    assert watcher.drift.drifted


def test_a_client_gets_the_first_frame_before_the_upstream_sends_the_second(
    tmp_path: Path,
) -> None:
    """The upstream holds its second frame until the client has read the first through the
    proxy (and through the recorder): a proxy that buffered would never deliver it."""

    def proxying(url: str) -> ThreadedServer:
        return proxy_for(url)[1]

    def recording(url: str) -> ThreadedServer:
        return ThreadedServer(record_app(url, tmp_path, dialect=DEEPSEEK), Settings(port=0))

    for make in (proxying, recording):
        gate = threading.Event()
        with (
            ThreadedServer(breaking_upstream(gate), Settings(port=0)) as gated,
            make(gated.url) as server,
        ):
            with (
                httpx.Client(timeout=httpx.Timeout(5.0)) as client,
                client.stream("POST", server.url + CHAT, json=STREAM, headers=KEY) as response,
            ):
                pieces = response.iter_raw()
                first = next(pieces)
                assert first.startswith(b"data: ") and b'"surprise": 0' in first
                assert not gate.is_set()
                gate.set()
                rest = b"".join(pieces)
            assert rest.count(b"data: ") == 2
    (recorded,) = load(tmp_path / "default.json").interactions
    assert [e.kind for e in recorded.events] == ["data"] * 3


def test_the_proxy_can_record_at_the_same_time(upstream: MockServer, tmp_path: Path) -> None:
    from mockserver.replay import Tapes

    tapes = Tapes(tmp_path, mode="all", upstream=upstream.url, dialect="deepseek")
    watcher = Proxy(DEEPSEEK, upstream.url)
    with ThreadedServer(
        proxy_app(watcher, Forwarder(upstream.url), tapes), Settings(port=0)
    ) as server:
        got = fetch(server.url + CHAT, STREAM, headers=KEY)
    (interaction,) = load(tmp_path / "default.json").interactions
    assert interaction.body == got.body


def _start(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", *args, "--port", "0"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"DEEPSEEK_API_KEY": ""},
    )
    assert process.stderr is not None
    for _ in range(50):  # bounded: the start-up says where it listens within a few lines
        line = process.stderr.readline()
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return process, found.group(1)
    process.kill()
    raise AssertionError("the command never said where it listens")


def test_proxy_strict_exits_non_zero_and_writes_the_report(tmp_path: Path) -> None:
    with ThreadedServer(breaking_upstream(), Settings(port=0)) as bad:
        process, url = _start(
            ["proxy", "--upstream", bad.url, "--dialect", "deepseek", "--strict"], tmp_path
        )
        try:
            assert fetch(url + CHAT, STREAM, headers=KEY).status == 200
        finally:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=20)
    assert process.returncode == 1, err
    report = json.loads((tmp_path / "contract-drift.json").read_text())
    assert report["undeclared_fields"][0]["path"] == "$.surprise"
    assert "undeclared" in err and "sk-test-record" not in err


def test_record_command_writes_a_cassette(upstream: MockServer, tmp_path: Path) -> None:
    process, url = _start(
        ["record", "--upstream", upstream.url, "--cassettes", "rec", "--cassette", "hello"],
        tmp_path,
    )
    try:
        got = fetch(url + CHAT, STREAM, headers=KEY)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    (interaction,) = load(tmp_path / "rec" / "hello.json").interactions
    assert interaction.body == got.body
    assert "sk-test-record" not in err


def test_a_bad_cassette_name_at_the_recorder_is_a_400(upstream: MockServer, tmp_path: Path) -> None:
    with ThreadedServer(
        record_app(upstream.url, tmp_path, dialect=DEEPSEEK), Settings(port=0)
    ) as rec:
        got = fetch(rec.url + CHAT, BODY, headers=KEY | {"X-Mock-Cassette": "../up"})
        other = fetch(rec.url + CHAT, BODY, headers=KEY | {"X-Mock-Cassette": "named"})
    assert got.status == 400 and b"cassette name" in got.body
    assert other.status == 200 and (tmp_path / "named.json").exists()
    assert upstream.journal.wait_for(1) and len(upstream.journal.entries()) == 1


def test_the_drift_report_answers_loopback_peers_only() -> None:
    watcher = Proxy(DEEPSEEK, "http://127.0.0.1:9")
    app = proxy_app(watcher, Forwarder("http://127.0.0.1:9"))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def ask(peer: str) -> int:
        sent.clear()
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/__mock/drift",
            "headers": [],
            "client": (peer, 5000),
        }
        await app(scope, receive, send)  # type: ignore[arg-type]
        return int(sent[0]["status"])

    assert anyio.run(ask, "10.1.2.3") == 403
    assert anyio.run(ask, "127.0.0.1") == 200


def test_an_error_outside_the_envelope_is_a_status_difference() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": b"upstream fell over"})

    with ThreadedServer(app, Settings(port=0)) as bad:
        _, server = proxy_for(bad.url)
        with server:
            got = fetch(server.url + CHAT, BODY, headers=KEY)
            report = httpx.get(server.url + "/__mock/drift").json()
    assert (got.status, got.body) == (500, b"upstream fell over")  # passed on as it came
    (difference,) = report["status_differences"]
    assert difference["status"] == 500 and difference["case"] == "POST /chat/completions"
    assert difference["envelope_problems"] == ["not JSON (text/plain)"]
