"""The socket edge: slow and idle clients, the connection cap, clients that leave mid-upload,
unexpected errors on pooled connections, and a clean stop."""

from __future__ import annotations

import logging
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import orjson
import pytest

from mockserver import cli
from mockserver.connections import connection_cap
from mockserver.server import MockServer
from mockserver.settings import Settings
from tests.conftest import LATE_2025
from tests.test_package import ROOT, _base_url, _serve

CHAT = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
CHAT_NOW = CHAT | {"model": "deepseek-flash"}  # for `deepseek-mock serve`, in the newest era
READ_TIMEOUT = 5.0  # how long a test waits for the server to act; far above the deadlines


@pytest.fixture(scope="module")
def strict() -> Iterator[MockServer]:
    """A server with short deadlines and a small cap, so slow clients are seen quickly."""
    settings = Settings(
        port=0, era=LATE_2025, header_timeout=0.3, body_timeout=0.3, max_connections=3
    )
    with MockServer(settings) as running:
        yield running


def _connect(server: MockServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by READ_TIMEOUT)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _request_head(length: int) -> bytes:
    return (
        b"POST /chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk-test\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length
    )


def test_an_idle_connection_is_closed_after_the_header_timeout(strict: MockServer) -> None:
    with _connect(strict) as sock:
        assert _read_all(sock) == b""  # closed, without an answer to a request never begun


def test_slowloris_headers_get_408_and_are_closed(strict: MockServer) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"POST /chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer
    assert b"--header-timeout" in answer


def test_a_slow_body_gets_408_and_is_journaled_as_incomplete(strict: MockServer) -> None:
    strict.reset()
    with _connect(strict) as sock:
        sock.sendall(_request_head(100) + b'{"model": ')
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"--body-timeout" in answer
    (entry,) = strict.journal.wait_for(1)
    assert (entry.path, entry.status, entry.complete) == ("/chat/completions", None, False)


def test_connections_past_the_cap_get_503_and_the_server_recovers(strict: MockServer) -> None:
    idle = [_connect(strict) for _ in range(3)]
    try:
        with _connect(strict) as extra:
            refused = _read_all(extra)
        assert refused.startswith(b"HTTP/1.1 503 ")
        assert b"--max-connections" in refused
    finally:
        for sock in idle:
            assert _read_all(sock) == b""  # the header timeout frees them
            sock.close()
    reply = httpx.post(
        strict.base_url + "/chat/completions", json=CHAT, headers={"Authorization": "Bearer k"}
    )
    assert reply.status_code == 200


def test_a_kept_alive_connection_is_not_cut_by_the_header_timeout(strict: MockServer) -> None:
    """The wait between requests is the keep-alive timeout's, not the header deadline's."""
    with httpx.Client(base_url=strict.base_url, headers={"Authorization": "Bearer k"}) as client:
        first = client.post("/chat/completions", json=CHAT)
        with _connect(strict) as sock:  # outlives a header deadline: an idle socket is closed
            assert _read_all(sock) == b""
        second = client.post("/chat/completions", json=CHAT)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.extensions["network_stream"] is second.extensions["network_stream"]


def test_an_upload_abandoned_mid_body_is_journaled_as_the_client_leaving(
    mock: MockServer,
) -> None:
    with socket.create_connection(("127.0.0.1", mock.port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(_request_head(1000) + b'{"model": "deepseek-chat", ')
        sock.shutdown(socket.SHUT_WR)
        assert _read_all(sock) == b""  # nobody to answer
    (entry,) = mock.journal.wait_for(1)
    assert (entry.status, entry.complete, entry.bytes) == (None, False, 0)
    assert entry.body == b'{"model": "deepseek-chat", '


def test_an_unexpected_500_closes_the_connection_and_says_so(
    mock: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the responder")

    monkeypatch.setattr(type(mock.mock.responder), "complete", broken)
    with httpx.Client(base_url=mock.base_url, headers={"Authorization": "Bearer k"}) as client:
        failed = client.post("/chat/completions", json=CHAT)
        assert failed.status_code == 500
        assert failed.headers["connection"] == "close"
        monkeypatch.undo()
        again = client.post("/chat/completions", json=CHAT)  # on a new connection
    assert again.status_code == 200


def _open_stalled_stream(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=READ_TIMEOUT)
    body = orjson.dumps(CHAT_NOW | {"stream": True})
    sock.sendall(
        _request_head(len(body)).replace(
            b"\r\n\r\n", b"\r\nX-Mock-Delivery: stall_after=1\r\n\r\n", 1
        )
        + body
    )
    assert sock.recv(12) == b"HTTP/1.1 200"  # the stream is open, and stays open
    return sock


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_with_an_open_stream_is_quiet_and_exits_0(sig: signal.Signals) -> None:
    process = _serve()
    try:
        with _open_stalled_stream(_base_url(process)) as stream:
            process.send_signal(sig)
            output, _ = process.communicate(timeout=15)
            assert _read_all(stream).endswith(b"\r\n")  # cut at a frame's end, then closed
    finally:
        if process.poll() is None:  # a failure above must not leave a server behind
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0, output
    assert "ERROR" not in output
    assert "Traceback" not in output
    assert "CancelledError" not in output
    assert "cut 1 connection(s) still open at shutdown" in output


def test_stop_before_start_does_not_raise() -> None:
    server = MockServer()
    server.stop()
    server.stop()


def test_the_deadlines_and_the_cap_are_command_line_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = cli.build_parser().parse_args(
        ["serve", "--header-timeout", "2.5", "--body-timeout", "60", "--max-connections", "500"]
    )
    settings = cli.settings_from(args)
    assert (settings.header_timeout, settings.body_timeout, settings.max_connections) == (
        2.5,
        60.0,
        500,
    )
    defaults = cli.settings_from(cli.build_parser().parse_args(["serve"]))
    assert (defaults.header_timeout, defaults.body_timeout, defaults.max_connections) == (
        10.0,
        30.0,
        None,
    )
    assert connection_cap(defaults) > 16
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["serve", "--header-timeout", "0"])
    assert "expected seconds above 0" in capsys.readouterr().err


def test_under_a_low_file_limit_idle_sockets_cannot_lock_everyone_out() -> None:
    """With 128 descriptors, 150 idle sockets would leave none to accept with: the default cap
    (the limit less 64) refuses the excess, the header timeout frees the rest, and then the
    server answers again."""

    def low_limit() -> None:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        )

    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", "--port", "0", "--header-timeout", "0.5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=low_limit,
    )
    try:
        base_url = _base_url(process)
        host, port = base_url.removeprefix("http://").split(":")
        idle = [
            socket.create_connection((host, int(port)), timeout=READ_TIMEOUT) for _ in range(150)
        ]
        answers = [_read_all(sock) for sock in idle]  # refused at once, or closed when idle
        for sock in idle:
            sock.close()
        refused = sum(answer.startswith(b"HTTP/1.1 503 ") for answer in answers)
        # 128 - 64 held (fewer refused if some of those timed out before the last connected)
        assert 0 < refused <= 150 - 64, refused
        assert all(answer == b"" or answer.startswith(b"HTTP/1.1 503 ") for answer in answers)
        reply = httpx.post(
            base_url + "/chat/completions", json=CHAT_NOW, headers={"Authorization": "Bearer k"}
        )
        assert reply.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output


def test_a_websocket_handshake_gets_the_plain_answer_and_no_install_hint(
    mock: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The mock serves HTTP only, so uvicorn loads no WebSocket library; an upgrade is answered
    # as the HTTP request it also is, and the log does not tell the user to install one.
    handshake = {
        "Authorization": "Bearer k",
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    with caplog.at_level(logging.INFO, logger="mockserver"):
        answer = httpx.get(mock.base_url + "/models", headers=handshake)
    assert answer.status_code == 200
    assert "data" in answer.json()
    said = [record.getMessage() for record in caplog.records]
    assert "ignored an Upgrade header: the mock speaks HTTP/1.1 only" in said
    assert not any("WebSocket library" in text for text in said)
