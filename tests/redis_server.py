"""A real `redis-server` on 127.0.0.1 for the tests of the shared state, on a free port.

The server is Debian's (`apt-get install redis-server`; `.ci/run` installs it when missing).
It is started with persistence off and read until it says it is ready: nobody polls or sleeps.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

READY = "Ready to accept connections"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """`redis://127.0.0.1:PORT`, for as long as the block runs; `port`: this one (a server
    started again where one was), else a free one."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "the shared-state tests need a real redis-server: apt-get install redis-server "
            "(.ci/run installs it when missing)",
            pytrace=False,
        )
    chosen = port
    for _ in range(5):  # a port taken between choosing it and binding it: choose again
        port = chosen or _free_port()
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                "--loglevel",
                "notice",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # bounded: the server exits or says it is ready
            lines.append(line)
            if READY in line:
                break
        if process.poll() is None:
            break
        process.wait()
        process.stdout.close()
    else:  # pragma: no cover - five ports taken in a row
        raise AssertionError("redis-server did not start:\n" + "".join(lines))
    # Keep reading its log, or a full pipe would stall it.
    drain = threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True)
    drain.start()
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        drain.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
