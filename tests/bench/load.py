"""Load generators: `wrk` for plain requests, raw asyncio sockets (uvloop) for streams.

httpx spends more CPU per request than the servers it would measure, so it is used nowhere on
a measured path. The stream client is a bare `asyncio.Protocol`: it only counts `data: ` markers
and stamps their arrival, which keeps it far below the cost of producing the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import orjson

HOST = "127.0.0.1"
MARK = b"data: "
CHUNKED_END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked body, after the one before
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)

WRK_HEAD = """\
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer x"
"""

# The same body on every request.
WRK_FIXED = """\
wrk.body = slurp([[@BODY@]])
"""

# A new body on every request: the counter goes between the prompt's two halves, so no two
# requests of a run carry the same prompt (wrk.format adds the Content-Length).
WRK_DISTINCT = """\
local prefix = slurp([[@PREFIX@]])
local suffix = slurp([[@SUFFIX@]])
local counter = @START@
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. counter .. suffix)
end
"""

WRK_DONE = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, " ..
    "\\"errors\\": %d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@dataclass(frozen=True, slots=True)
class Distinct:
    """A body whose prompt carries a counter, so every request is new text (no cache hit):
    request n (from 1) sends `prefix + str(start + n) + suffix`."""

    prefix: bytes
    suffix: bytes
    start: int

    def body(self, n: int) -> bytes:
        return self.prefix + str(self.start + n).encode() + self.suffix


Body = bytes | Distinct


def wrk_script(body: Body, folder: Path) -> str:
    """The Lua script for one wrk run; the bodies go to files in `folder` (never inlined:
    a long bracket would end at the first `]]` of the text)."""
    if isinstance(body, Distinct):
        (folder / "prefix.json").write_bytes(body.prefix)
        (folder / "suffix.json").write_bytes(body.suffix)
        middle = (
            WRK_DISTINCT.replace("@PREFIX@", str(folder / "prefix.json"))
            .replace("@SUFFIX@", str(folder / "suffix.json"))
            .replace("@START@", str(body.start))
        )
    else:
        (folder / "body.json").write_bytes(body)
        middle = WRK_FIXED.replace("@BODY@", str(folder / "body.json"))
    return WRK_HEAD + middle + WRK_DONE


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile; 0.0 for no values, so an empty run shows as zero, not a crash."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass(frozen=True, slots=True)
class RequestsResult:
    """Non-streaming load at a fixed concurrency."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    tool: str


def has_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(port: int, path: str, body: Body, connections: int, duration: float) -> RequestsResult:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(wrk_script(body, Path(tmp)))
        seconds = max(1, round(duration))
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
        command += ["-s", str(script), f"http://{HOST}:{port}{path}"]
        # wrk runs on the caller's CPU (the load core); it cannot outlive its duration by much.
        done = subprocess.run(command, capture_output=True, check=True, timeout=seconds + 30)
    for line in done.stdout.decode().splitlines():
        if line.startswith("BENCH "):
            figures = orjson.loads(line[6:])
            seconds_taken = figures["duration_us"] / 1e6
            return RequestsResult(
                rps=figures["requests"] / seconds_taken,
                p50_ms=figures["p50_us"] / 1000,
                p99_ms=figures["p99_us"] / 1000,
                requests=figures["requests"],
                errors=figures["errors"],
                tool="wrk",
            )
    raise RuntimeError(f"wrk printed no figures:\n{done.stdout.decode()}\n{done.stderr.decode()}")


def post_request(path: str, body: bytes, *, close: bool, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {HOST}",
        "Content-Type: application/json",
        "Authorization: Bearer x",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _KeepAlive(asyncio.Protocol):
    """One connection sending requests back to back until the deadline."""

    def __init__(
        self, request: Callable[[], bytes], deadline: float, latencies: list[float]
    ) -> None:
        self.request = request
        self.deadline = deadline
        self.latencies = latencies
        self.errors = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.need = -1
        self.ok = False
        self.sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.buffer.clear()
        self.need = -1
        self.sent = time.perf_counter()
        self.transport.write(self.request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = _LENGTH.search(head)
            self.ok = head.startswith(b"HTTP/1.1 200")
            self.need = end + 4 + (int(length.group(1)) if length else 0)
        if len(self.buffer) < self.need:
            return
        now = time.perf_counter()
        self.latencies.append(now - self.sent)
        self.errors += not self.ok
        assert self.transport is not None
        if now < self.deadline:
            self._send()
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _connect(loop: asyncio.AbstractEventLoop, client: asyncio.Protocol, port: int) -> None:
    await loop.create_connection(lambda: client, HOST, port)


def requests_of(path: str, body: Body) -> Callable[[], bytes]:
    """What each send writes: the same request, or the next of a distinct body's series
    (one counter for all connections, so no two requests repeat)."""
    if isinstance(body, Distinct):
        counter = itertools.count(1)
        return lambda: post_request(path, body.body(next(counter)), close=False, headers={})
    request = post_request(path, body, close=False, headers={})
    return lambda: request


async def run_requests(
    port: int, path: str, body: Body, connections: int, duration: float
) -> RequestsResult:
    """The fallback when wrk is missing: keep-alive connections on raw sockets."""
    loop = asyncio.get_running_loop()
    request = requests_of(path, body)
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + duration
    clients = [_KeepAlive(request, deadline, latencies) for _ in range(connections)]
    for client in clients:
        await _connect(loop, client, port)
    with contextlib.suppress(TimeoutError):  # whatever did not finish counts as an error below
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), timeout=duration + 30)
    elapsed = time.perf_counter() - started
    unfinished = sum(not c.closed.done() for c in clients)
    for client in clients:
        if client.transport is not None:
            client.transport.abort()
    return RequestsResult(
        rps=len(latencies) / elapsed,
        p50_ms=quantile(latencies, 0.5) * 1000,
        p99_ms=quantile(latencies, 0.99) * 1000,
        requests=len(latencies),
        errors=sum(c.errors for c in clients) + unfinished,
        tool="asyncio",
    )


class _Stream(asyncio.Protocol):
    """One streamed answer on its own connection (`Connection: close`): counts events and
    stamps each one's arrival. The answer ends with the body's last chunk: a server that
    keeps the connection open anyway (aimock answers `Connection: keep-alive` to a request
    that asked for close) is not charged for its idle timeout."""

    def __init__(self, request: bytes, stamp: bool) -> None:
        self.request = request
        self.stamp = stamp
        self.started = time.perf_counter()
        self.first_byte = 0.0
        self.status = b""
        self.events = 0
        self.times: list[float] = []
        self.tail = b""
        self.end = b""  # the last bytes received, to see the body's end
        self.finished = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.failure: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.first_byte:
            self.first_byte = now
        if len(self.status) < 12:
            self.status += data[: 12 - len(self.status)]
        chunk = self.tail + data
        found = chunk.count(MARK)
        self.events += found
        if self.stamp:
            self.times.extend([now] * found)
        # Five bytes cannot hold a whole marker, so nothing is counted twice, and a marker
        # split between two reads is still found.
        self.tail = chunk[-(len(MARK) - 1) :]
        self.end = (self.end + data)[-len(CHUNKED_END) :]
        if self.end == CHUNKED_END and not self.finished:
            self.finished = True
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        ok = self.status == b"HTTP/1.1 200"
        if ok and self.finished:
            pass  # the whole body arrived; how the connection ended does not matter
        elif exc is not None:
            self.failure = f"{type(exc).__name__}: {exc}"
        elif not ok:
            self.failure = f"status {self.status!r}"
        else:
            self.failure = "body ended before the last chunk"
        if not self.done.done():
            self.done.set_result(None)


@dataclass(slots=True)
class StreamsResult:
    streams: int
    events: int
    elapsed: float
    ttfb: list[float] = field(default_factory=list)  # seconds, one per finished stream
    gaps: list[float] = field(default_factory=list)  # seconds between consecutive events
    steady_gaps: list[float] = field(default_factory=list)  # those after every stream began
    errors: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.elapsed if self.elapsed else 0.0


async def _one_stream(request: bytes, port: int, stamp: bool, expected: int | None) -> _Stream:
    loop = asyncio.get_running_loop()
    client = _Stream(request, stamp)
    try:
        await loop.create_connection(lambda: client, HOST, port)
        await client.done
    except OSError as exc:
        client.failure = f"{type(exc).__name__}: {exc}"
    finally:
        if client.transport is not None:
            client.transport.abort()  # only matters when cancelled by the time limit
    if client.failure is None and expected is not None and client.events != expected:
        client.failure = f"{client.events} events, expected {expected}"
    return client


async def run_streams(
    port: int,
    path: str,
    body: bytes,
    *,
    streams: int,
    expected_events: int | None,
    time_limit: float,
    headers: dict[str, str] | None = None,
    stamp: bool = False,
) -> StreamsResult:
    """`streams` concurrent streamed requests, all started at once, each on its own socket."""
    request = post_request(path, body, close=True, headers=headers or {})
    started = time.perf_counter()
    tasks = [
        asyncio.ensure_future(_one_stream(request, port, stamp, expected_events))
        for _ in range(streams)
    ]
    finished, pending = await asyncio.wait(tasks, timeout=time_limit)
    for task in pending:
        task.cancel()
    elapsed = time.perf_counter() - started
    result = StreamsResult(streams=streams, events=0, elapsed=elapsed, errors=len(pending))
    if pending:
        result.failures.append(f"{len(pending)} streams unfinished after {time_limit:.0f} s")
        await asyncio.wait(pending)
    clients = [task.result() for task in finished]
    # Gaps that begin once every stream has its first byte: free of the admission burst.
    all_started = max((c.first_byte for c in clients), default=0.0)
    for client in clients:
        result.events += client.events
        if client.failure is not None:
            result.errors += 1
            if len(result.failures) < 5:
                result.failures.append(client.failure)
            continue
        result.ttfb.append(client.first_byte - client.started)
        for earlier, later in itertools.pairwise(client.times):
            result.gaps.append(later - earlier)
            if earlier >= all_started:
                result.steady_gaps.append(later - earlier)
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0
