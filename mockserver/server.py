"""The mock on a real socket: uvicorn on 127.0.0.1 in a background thread.

The socket is bound and listening before the thread starts, so a client that connects at once
waits in the backlog until uvicorn accepts: nobody polls or sleeps for readiness.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from types import TracebackType
from typing import Self

from starlette.types import ASGIApp

from mockserver.app import create_app
from mockserver.connections import MockUvicorn, uvicorn_config
from mockserver.context import Mock
from mockserver.scenario import Rule
from mockserver.settings import Settings
from mockserver.state import JournalBook, RuleBook, Space
from mockserver.wire import install_log_filters


class ThreadedServer:
    """Any ASGI app of the package on 127.0.0.1 in a background thread: `url`, `port`,
    `start()`, `stop()` and the context manager."""

    def __init__(self, app: ASGIApp, settings: Settings, *, log_level: str = "warning") -> None:
        self.settings = settings
        self.app = app
        self._socket = socket.create_server((self.settings.host, self.settings.port), backlog=2048)
        host, port = self._socket.getsockname()[:2]
        self.port: int = port
        self.url = f"http://{host}:{port}"
        # The host process (pytest, an app) owns logging: uvicorn_config sets no log config.
        self._server = MockUvicorn(uvicorn_config(self.app, self.settings, log_level=log_level))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name="deepseek-mock",
        )

    def start(self) -> Self:
        install_log_filters()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe before `start()` and when called twice."""
        self._server.should_exit = True
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=10)
        self._socket.close()
        if self._thread.is_alive():  # pragma: no cover - a hung shutdown is a bug to see
            raise RuntimeError("mock server still running 10 s after shutdown was requested")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class MockServer(ThreadedServer):
    """`with MockServer() as server:` gives `server.base_url`, `server.scenario` and
    `server.journal`; a port of 0 (the default here) picks a free one."""

    def __init__(
        self, settings: Settings | None = None, *, log_level: str = "warning", **overrides: object
    ) -> None:
        settings = settings or Settings(port=0)
        settings = dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]
        if settings.workers != 1:
            raise ValueError(
                "MockServer serves from one thread of this process; for several workers run "
                "`deepseek-mock serve --workers N --state redis://…`"
            )
        super().__init__(create_app(settings), settings, log_level=log_level)
        self.mock: Mock = self.app.state.mock  # type: ignore[attr-defined]
        default = self.mock.store.space()
        self.scenario: RuleBook = default.scenario
        self.journal: JournalBook = default.journal

    def space(self, namespace: str) -> Space:
        """The state of one namespace (what requests with `X-Mock-Namespace` see)."""
        return self.mock.store.space(namespace)

    def stop(self) -> None:
        super().stop()
        self.mock.store.close()

    @property
    def base_url(self) -> str:
        """What an OpenAI-compatible client takes as `base_url` for the server's main dialect."""
        return self.url_for(self.settings.dialect or "deepseek")

    def url_for(self, dialect: str) -> str:
        """The base URL of one dialect on this server (AI/ML sits under a prefix when shared);
        `"anthropic"` gives DeepSeek's Anthropic API, the `anthropic` SDK's `base_url`."""
        return self.mock.url_for(self.url, dialect)

    def add(self, *rules: Rule) -> None:
        for rule in rules:
            self.scenario.add(rule)

    def reset(self) -> None:
        """Back to the rules the server started with; empty journal, cold prompt cache."""
        self.mock.reset()
