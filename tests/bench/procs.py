"""The benchmarked servers as child processes: spawn, wait until they answer, read their
memory and CPU from /proc, stop them."""

from __future__ import annotations

import compileall
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SERVER_CPU = 0
LOAD_CPU = 1


def _usable() -> set[int]:
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()


# Decided once at import, before this process pins itself to the load core.
TWO_CORES = {SERVER_CPU, LOAD_CPU} <= _usable()


def two_cores() -> bool:
    return TWO_CORES


def pin_load_generator() -> bool:
    """This process (and wrk, which inherits it) on the load core; False if it cannot be."""
    if not two_cores():
        return False
    os.sched_setaffinity(0, {LOAD_CPU})
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int, path: str) -> bool:
    """One GET with a key; True on a 200. Refused or reset means not up yet."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer x\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection((HOST, port), timeout=2) as conn:
            conn.sendall(request)
            return conn.recv(12) == b"HTTP/1.1 200"
    except OSError:
        return False


def answered(port: int, request: bytes, time_limit: float = 30.0) -> bool:
    """Send one whole request (with `Connection: close`) and read the answer to its end;
    True on a 200."""
    with socket.create_connection((HOST, port), timeout=time_limit) as conn:
        conn.sendall(request)
        head = b""
        while chunk := conn.recv(65536):
            head = head or chunk[:12]
        return head == b"HTTP/1.1 200"


@dataclass
class Server:
    # the table's column: "mock", "bare", a peer's name, "shipped" for the CLI; or "stamps"
    # (the proxy figure's upstream) and "proxy"
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    probe_path: str = "/"  # a GET that answers 200 once the server is up
    chat_path: str = "/chat/completions"
    started_at: float = 0.0  # perf_counter at spawn
    startup: float = 0.0  # seconds from spawn to the first 200

    def _status(self) -> dict[str, int]:
        fields: dict[str, int] = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                fields[name] = int(value.split()[0])
        return fields

    def rss_mib(self) -> float:
        return self._status().get("VmRSS", 0) / 1024

    def peak_rss_mib(self) -> float:
        return self._status().get("VmHWM", 0) / 1024

    def reset_peak(self) -> bool:
        """Start a new high-water mark (Linux clear_refs 5); False when not permitted."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn's clean shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def compile_modules() -> None:
    """Byte-compile the servers' own modules, as pip does when it installs a wheel.

    A checkout run with PYTHONDONTWRITEBYTECODE set (as CI images often are) would compile
    every module from source at every start, ~60 ms of the mock's start-up that no installed
    copy pays; the third-party packages were compiled when they were installed."""
    for folder in (ROOT / "mockserver", ROOT / "tests" / "bench"):
        compileall.compile_dir(folder, quiet=1)


def _pinned() -> None:
    """In the child before exec: the server core, so whatever runs there stays off the load's."""
    if two_cores():
        os.sched_setaffinity(0, {SERVER_CPU})


def launch(
    name: str,
    command: Sequence[str],
    work: Path,
    *,
    port: int,
    probe_path: str,
    chat_path: str = "/chat/completions",
    env: dict[str, str] | None = None,
    time_limit: float = 30.0,
    pinned: bool = True,
) -> Server:
    """Start one server and return once it has answered a 200 (time to that is `startup`).
    `pinned=False` leaves it free to use every core (a server of several workers)."""
    log = work / f"{name}-{port}.log"
    out: IO[bytes]
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=_pinned if pinned else None,
        )
    server = Server(name, port, process, log, probe_path, chat_path, started_at=started)
    deadline = started + time_limit
    while not answers(port, probe_path):
        if process.poll() is not None or time.perf_counter() > deadline:
            server.stop()
            raise RuntimeError(f"{name} server did not come up:\n{log.read_text()[-3000:]}")
        # Not synchronisation but the measurement itself: the first 200 after spawn. A refused
        # connect returns at once, so wait on the child (it may die) for 2 ms between probes.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.002)
    server.startup = time.perf_counter() - started
    return server


def spawn(
    app: str,
    work: Path,
    *extra: str,
    python_flags: Sequence[str] = (),
    time_limit: float = 30.0,
) -> Server:
    """The mock or the bare app through the bench's launcher (`serve.py`)."""
    port = free_port()
    command = [sys.executable, *python_flags, "-m", "tests.bench.serve"]
    command += ["--app", app, "--port", str(port)]
    if two_cores():
        command += ["--cpu", str(SERVER_CPU)]
    command += extra
    probe = "/models" if app == "mock" else "/"
    return launch(app, command, work, port=port, probe_path=probe, time_limit=time_limit)


def shipped_command(port: int, *extra: str) -> list[str]:
    """`deepseek-mock serve` as a user runs it: default logging (every request at info),
    keep-alive and connection handling, every dialect mounted."""
    script = Path(sys.executable).with_name("deepseek-mock")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "mockserver"]
    return [*head, "serve", "--port", str(port), *extra]


def spawn_shipped(work: Path, *extra: str, name: str = "shipped", pinned: bool = True) -> Server:
    port = free_port()
    command = shipped_command(port, *extra)
    return launch(name, command, work, port=port, probe_path="/models", pinned=pinned)
