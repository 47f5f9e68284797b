"""The socket edge: how long a client may take to send a request, how many connections are
held at once, and a stop that is quiet and clean.

uvicorn closes idle keep-alive connections, but it has no deadline for a request that is still
arriving: a client that sends half a header line (slowloris), nothing at all, or a body one byte
at a time holds its socket forever, and enough of them exhaust the file limit. The protocol
below adds the two deadlines and a cap on open connections, and sends an answer's head in one
write with what follows it (`JoinedWrites`); everything else is uvicorn's.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from asyncio import TimerHandle
from types import FrameType
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from mockserver import logs
from mockserver.settings import Settings
from mockserver.wire import ENDLESS

log = logging.getLogger("mockserver")

# Clients (httpx, and so the openai SDK) drop idle pooled connections after 5 s, which is also
# uvicorn's default: a request sent on a connection the server is closing at that moment fails.
# Outlasting the clients means they always close first.
KEEP_ALIVE_SECONDS = 75
# Descriptors kept back from the connection cap for everything else the process opens.
FILE_RESERVE = 64
GRACE_SECONDS = 2.0  # a clean stop waits this long for answers still being written


def connection_cap(settings: Settings) -> int:
    """`max_connections`, or the open-file limit less a reserve: past the file limit the
    server could not accept anyone, so it refuses the excess itself instead."""
    if settings.max_connections is not None:
        return settings.max_connections
    try:
        import resource
    except ImportError:  # pragma: no cover - not a Unix: its usual default
        return 512 - FILE_RESERVE
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:  # pragma: no cover - no limit set
        soft = 65536
    return max(soft - FILE_RESERVE, 16)


def _plain(status: bytes, text: str) -> bytes:
    body = text.encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


WORKER_APP = "deepseek-mock:worker"  # the app a worker process builds for itself
LOG_FORMAT = "%(asctime)s %(levelname)-7s [%(process)d] %(message)s"


class MockConfig(uvicorn.Config):
    """uvicorn's settings plus the mock's own, which the protocol reads."""

    def __init__(self, app: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.mock_settings = settings
        self.max_connections = connection_cap(settings)

    def load(self) -> None:
        # A worker process gets this config pickled, with WORKER_APP for its app: it builds its
        # own app (and opens its own connection to the shared store) from the settings.
        if self.app == WORKER_APP:
            from mockserver.app import create_app

            level = self.log_level
            if isinstance(level, str):
                level = uvicorn.config.LOG_LEVELS.get(level, logging.INFO)
            logs.configure(level or logging.INFO, LOG_FORMAT)
            self.app = create_app(self.mock_settings)
            from mockserver.cli import settle_heap

            settle_heap()  # as a single-process `serve` does: start-up objects left unwalked
        super().load()


class JoinedWrites(asyncio.Transport):
    """A connection's transport that sends an answer's head together with what follows it.

    uvicorn writes an answer's status line and headers as soon as the app starts it, and its
    body as a second write: two system calls and two packets, and the client woken twice,
    for a JSON answer sent whole. Over loopback the writes were a quarter of the server's time
    for a plain request. The head (uvicorn writes it whole, `HTTP/1.1 ...` to the blank line)
    is held, and the next write goes out with it at once; a head nothing follows in the same
    turn of the loop (a delayed stream, a `100 Continue`) leaves on the loop's next turn. Every
    other write goes straight through, so nothing waits that did not before, and order is
    kept. Closing sends what is held first; aborting, as a stop cut short does, drops it.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data[:9] == b"HTTP/1.1 " and data[-4:] == b"\r\n\r\n":
            self._held = bytes(data)  # a copy if the caller may reuse its buffer
            self._loop.call_soon(self._send)
        else:
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _send(self) -> None:
        held = self._held
        if held is None:
            return
        self._held = None
        if not self._transport.is_closing():  # the client is gone: nobody to send it to
            self._transport.write(held)

    def close(self) -> None:
        self._send()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._send()
        self._transport.write_eof()


class JoinedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, an answer's head sent with what follows it (`JoinedWrites`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.transport = JoinedWrites(cast(asyncio.Transport, transport), self.loop)


class GuardedHttp(JoinedHttp):
    """httptools' protocol with a deadline for the headers, one for the body, and a cap.

    The header deadline runs from the moment the connection opens, or from the first byte of a
    later request on a kept-alive connection (the wait between requests is uvicorn's keep-alive
    timeout). The body deadline runs from the end of the headers. A request that misses one gets
    408 and its connection is closed; the handler still waiting for the body sees the client
    leave, so the journal records the exchange as incomplete.
    """

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        mock_config = config if isinstance(config, MockConfig) else None
        settings = mock_config.mock_settings if mock_config else Settings()
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        self.max_connections = mock_config.max_connections if mock_config else None
        self.read_deadline: TimerHandle | None = None
        self.request_begun = False
        self.refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.max_connections is not None and len(self.connections) >= self.max_connections:
            self.transport = cast(asyncio.Transport, transport)  # connection_lost closes it

            self.refused = True
            log.warning(
                "refused a connection: %d are open (--max-connections)", self.max_connections
            )
            self.transport.write(
                _plain(
                    b"503 Service Unavailable",
                    f"too many open connections: the server holds at most "
                    f"{self.max_connections} (--max-connections)\n",
                )
            )
            self.transport.close()
            return
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.refused:  # at the cap: nothing else was set up
            self.transport.close()
            return
        super().connection_lost(exc)

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn's own warning tells the user to install a WebSocket library. The mock serves
        # HTTP only (`ws="none"`): the request is answered as the plain request it also is.
        log.info("ignored an Upgrade header: the mock speaks HTTP/1.1 only")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.request_begun = True
        if self.read_deadline is None:  # a later request on a kept-alive connection
            self._arm(self.header_timeout, "headers")

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._arm(self.body_timeout, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        self.request_begun = False
        super().on_message_complete()

    def shutdown(self) -> None:
        cycle: RequestResponseCycle | None = self.cycle
        if (
            cycle is not None
            and not cycle.response_complete
            and cycle.scope.get("state", {}).get(ENDLESS)
        ):
            # An event stream has no last byte to wait for: closed now, its handler sees its
            # client leave and ends, as for any client that leaves.
            self.transport.close()
            return
        super().shutdown()

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self.read_deadline = self.loop.call_later(seconds, self._too_slow, seconds, what)

    def _disarm(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _too_slow(self, seconds: float, what: str) -> None:
        self.read_deadline = None
        if self.transport.is_closing():
            return
        cycle: RequestResponseCycle | None = self.cycle  # None before the first request
        answered = cycle is not None and cycle.response_started
        if self.request_begun and not answered:
            option = "--header-timeout" if what == "headers" else "--body-timeout"
            log.info("408: the request %s did not arrive within %g s (%s)", what, seconds, option)
            self.transport.write(
                _plain(
                    b"408 Request Timeout",
                    f"the request {what} did not arrive within {seconds:g} s ({option})\n",
                )
            )
        self.transport.close()


class MockUvicorn(uvicorn.Server):
    """A stop (Ctrl-C, SIGTERM, `MockServer.stop()`) that is quiet and exits 0.

    Answers still being written get `GRACE_SECONDS`; then their sockets are closed, so each
    handler sees its client leave and ends the way it does for any client that leaves: no
    cancelled tasks, no tracebacks. A second Ctrl-C skips the wait.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn re-raises the signal after its shutdown, which turns a clean SIGTERM into
        # exit status 143; the signal has done its job once the server has stopped.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        log.info("shutting down")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()  # idle ones close now, busy ones after their answer
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GRACE_SECONDS
        while (state.connections or state.tasks) and not self.force_exit:
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        if state.connections:
            log.info("cut %d connection(s) still open at shutdown", len(state.connections))
            for connection in list(state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
        if state.tasks:
            await asyncio.wait(list(state.tasks), timeout=GRACE_SECONDS)
        for task in list(state.tasks):  # pragma: no cover - a handler that ignored its client
            task.cancel()
        for server in self.servers:
            await server.wait_closed()
        # What the request path opened on this loop (a shared store's connections).
        app_state = getattr(self.config.app, "state", None)
        mock = getattr(app_state, "mock", None)
        if mock is not None:
            await mock.store.aclose()


def uvicorn_config(app: Any, settings: Settings, **kwargs: Any) -> MockConfig:
    """The one uvicorn configuration the command line and `MockServer` share."""
    return MockConfig(
        app,
        settings,
        http=GuardedHttp,
        lifespan="off",
        # The mock serves no WebSocket: "auto" would import the websockets package at every
        # start (~30 ms) for upgrades the mock never accepts.
        ws="none",
        backlog=2048,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # The admin API trusts loopback peers: the peer must be the socket's, never an address
        # a client wrote into X-Forwarded-For.
        proxy_headers=False,
        log_config=None,
        **kwargs,
    )
