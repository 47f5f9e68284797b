"""One benchmark run: both servers up side by side, every figure measured in interleaved
rounds (mock, bare, mock, bare, ...) so drift on a shared machine hits both alike."""

from __future__ import annotations

import asyncio
import io
import pstats
import resource
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import uvloop

from tests.bench import micro
from tests.bench.bare import JSON_SHORT, STREAM_LONG, STREAM_SHORT
from tests.bench.load import (
    MARK,
    RequestsResult,
    StreamsResult,
    has_wrk,
    quantile,
    run_requests,
    run_streams,
    run_wrk,
)
from tests.bench.procs import Server, spawn
from tests.bench.report import Figure, at_least_ratio, at_most, below, zero
from tests.bench.workload import (
    PACING_GAP,
    SHORT_REPLY_TOKENS,
    Texts,
    build_texts,
    long_body,
    rule_spec,
    short_body,
)

T = TypeVar("T")
CHAT = "/chat/completions"


def _children_cpu() -> float:
    """CPU seconds of finished children: wrk's share of the load core."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int  # rounds of every load figure except the largest stream count
    duration: float  # seconds of each non-streaming run
    many_rounds: int  # rounds at the largest stream count
    startup_rounds: int
    micro_repeats: int
    concurrencies: tuple[int, ...] = (1, 16, 64)
    stream_counts: tuple[int, ...] = (100, 1000)
    pacing_streams: int = 100
    slow_streams: int = 10_000  # held open at once, by one server process
    stream_time_limit: float = 60.0  # seconds before unfinished streams count as errors


FULL = Plan(rounds=5, duration=3, many_rounds=3, startup_rounds=7, micro_repeats=5)
QUICK = Plan(
    rounds=2, duration=1, many_rounds=1, startup_rounds=3, micro_repeats=3, slow_streams=2_000
)


@dataclass(frozen=True, slots=True)
class Expected:
    short_events: int
    long_events: int


class Bench:
    def __init__(self, plan: Plan, work: Path, *, loadgen: str | None = None) -> None:
        self.plan = plan
        self.work = work
        self.loadgen = loadgen or ("wrk" if has_wrk() else "asyncio")
        self.runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        self.figures: dict[str, Figure] = {}
        self.diagnostics: dict[str, list[float]] = {}
        self.texts: Texts = build_texts()
        self.rules = work / "rules.json"
        self.rules.write_bytes(orjson.dumps(rule_spec(self.texts)))
        self.captured = work / "captured"
        self.captured.mkdir(exist_ok=True)

    # ------------------------------------------------------------------ plumbing

    def run_async(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def figure(self, key: str, label: str, unit: str, **kwargs: Any) -> Figure:
        if key not in self.figures:
            self.figures[key] = Figure(key, label, unit, **kwargs)
        return self.figures[key]

    def note(self, key: str, value: float) -> None:
        self.diagnostics.setdefault(key, []).append(value)

    def add(self, key: str, app: str, value: float) -> None:
        figure = self.figures[key]
        values = figure.mock if app == "mock" else figure.bare
        assert values is not None, key
        values.append(value)

    def spawn_mock(self, *extra: str) -> Server:
        return spawn("mock", self.work, "--rules", str(self.rules), *extra)

    def spawn_bare(self) -> Server:
        return spawn("bare", self.work, "--captured", str(self.captured))

    def capture(self, mock: Server) -> Expected:
        """One real answer of each kind from the mock, saved for the bare app to replay."""
        base = f"http://127.0.0.1:{mock.port}"
        headers = {"authorization": "Bearer x", "content-type": "application/json"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            answer = client.post(CHAT, content=short_body(self.texts, stream=False))
            answer.raise_for_status()
            tokens = answer.json()["usage"]["completion_tokens"]
            if tokens != SHORT_REPLY_TOKENS:
                raise RuntimeError(f"the canned reply did not apply: {tokens} tokens")
            short = client.post(CHAT, content=short_body(self.texts, stream=True))
            long = client.post(CHAT, content=long_body(self.texts))
            short.raise_for_status()
            long.raise_for_status()
        (self.captured / JSON_SHORT).write_bytes(answer.content)
        (self.captured / STREAM_SHORT).write_bytes(short.content)
        (self.captured / STREAM_LONG).write_bytes(long.content)
        return Expected(short.content.count(MARK), long.content.count(MARK))

    def requests(self, server: Server, connections: int, duration: float) -> RequestsResult:
        body = short_body(self.texts, stream=False)
        cpu = server.cpu_seconds()
        client_cpu = _children_cpu() + time.process_time()
        started = time.perf_counter()
        if self.loadgen == "wrk":
            result = run_wrk(server.port, CHAT, body, connections, duration)
        else:
            result = self.run_async(run_requests(server.port, CHAT, body, connections, duration))
        wall = time.perf_counter() - started
        self.note(
            f"client_cpu_pct.{server.app}.c{connections}",
            (_children_cpu() + time.process_time() - client_cpu) / wall * 100,
        )
        self.note(
            f"server_cpu_pct.{server.app}.c{connections}", (server.cpu_seconds() - cpu) / wall * 100
        )
        return result

    def streams(
        self, server: Server, body: bytes, count: int, expected: int | None, **kwargs: Any
    ) -> StreamsResult:
        cpu = server.cpu_seconds()
        client_cpu = time.process_time()
        result = self.run_async(
            run_streams(
                server.port,
                CHAT,
                body,
                streams=count,
                expected_events=expected,
                time_limit=self.plan.stream_time_limit,
                **kwargs,
            )
        )
        wall = max(result.elapsed, 1e-9)
        self.note(
            f"server_cpu_pct.{server.app}.streams{count}", (server.cpu_seconds() - cpu) / wall * 100
        )
        self.note(
            f"client_cpu_pct.{server.app}.streams{count}",
            (time.process_time() - client_cpu) / wall * 100,
        )
        for failure in result.failures:
            say(f"  {server.app}, {count} streams: {failure}")
        return result

    # ------------------------------------------------------------------ the figures

    def warm_up(self, servers: list[Server], expected: Expected) -> None:
        for server in servers:
            self.requests(server, 16, 1)
            self.streams(server, short_body(self.texts, stream=True), 50, expected.short_events)
            self.streams(server, long_body(self.texts), 1, expected.long_events)
        self.diagnostics.clear()

    def non_streaming(self, servers: list[Server]) -> None:
        errors = self.figure("ns.errors", "non-streaming errors, all runs", "count", target=zero())
        errors.mock, errors.bare = [0.0], [0.0]
        for c in self.plan.concurrencies:
            self.figure(f"ns.c{c}.rps", f"non-streaming c={c}: throughput", "req/s")
            self.figure(f"ns.c{c}.p50", f"non-streaming c={c}: latency p50", "ms")
            self.figure(f"ns.c{c}.p99", f"non-streaming c={c}: latency p99", "ms")
        self.figures["ns.c16.rps"].target = at_least_ratio(0.6)
        for c in self.plan.concurrencies:
            for _ in range(self.plan.rounds):
                for server in servers:
                    result = self.requests(server, c, self.plan.duration)
                    self.add(f"ns.c{c}.rps", server.app, result.rps)
                    self.add(f"ns.c{c}.p50", server.app, result.p50_ms)
                    self.add(f"ns.c{c}.p99", server.app, result.p99_ms)
                    values = errors.mock if server.app == "mock" else errors.bare
                    assert values is not None
                    values[0] += result.errors
            say(f"  non-streaming c={c} done")

    def long_stream(self, servers: list[Server], expected: Expected) -> None:
        key = "long.eps"
        self.figure(key, "1 stream of 10,000 tokens", "events/s", target=at_least_ratio(0.5))
        self.figure("long.errors", "1 stream of 10,000 tokens: errors", "count")
        for _ in range(self.plan.rounds):
            for server in servers:
                result = self.streams(server, long_body(self.texts), 1, expected.long_events)
                self.add(key, server.app, result.events_per_second)
                self.add("long.errors", server.app, result.errors)
        say("  long stream done")

    def many_streams(self, servers: list[Server], expected: Expected) -> None:
        body = short_body(self.texts, stream=True)
        largest = max(self.plan.stream_counts)
        for count in self.plan.stream_counts:
            p = f"s{count}"
            label = f"{count:,} streams × 100 tokens"
            self.figure(f"{p}.eps", f"{label}: throughput", "events/s")
            self.figure(f"{p}.ttfb50", f"{label}: TTFB p50", "ms")
            self.figure(f"{p}.ttfb99", f"{label}: TTFB p99", "ms")
            self.figure(f"{p}.errors", f"{label}: errors", "count")
            self.figure(f"{p}.rss", f"{label}: peak server RSS", "MiB")
            if count == largest:
                self.figures[f"{p}.errors"].target = zero()
                self.figures[f"{p}.ttfb99"].target = at_most(1000, "ms")
                self.figures[f"{p}.rss"].target = below(100, "MiB")
            rounds = self.plan.many_rounds if count == largest else self.plan.rounds
            for _ in range(rounds):
                for server in servers:
                    exact = server.reset_peak()
                    result = self.streams(server, body, count, expected.short_events)
                    self.add(f"{p}.eps", server.app, result.events_per_second)
                    self.add(f"{p}.ttfb50", server.app, quantile(result.ttfb, 0.5) * 1000)
                    self.add(f"{p}.ttfb99", server.app, quantile(result.ttfb, 0.99) * 1000)
                    self.add(f"{p}.errors", server.app, result.errors)
                    # Without clear_refs the high-water mark covers the process's whole life.
                    rss = server.peak_rss_mib() if exact else server.rss_mib()
                    self.add(f"{p}.rss", server.app, rss)
            say(f"  {count} streams done")

    def pacing(self, mock: Server, expected: Expected) -> None:
        count = self.plan.pacing_streams
        label = f"pacing, {PACING_GAP * 1000:g} ms gap, {count} streams"
        self.figure("pace.p50", f"{label}: gap deviation p50", "ms", bare=None)
        self.figure(
            "pace.p99", f"{label}: gap deviation p99", "ms", bare=None, target=at_most(5, "ms")
        )
        self.figure(
            "pace.steady99",
            f"{label}: gap deviation p99 once all streams began",
            "ms",
            bare=None,
        )
        self.figure("pace.mean", f"{label}: mean gap", "ms", bare=None)
        self.figure("pace.errors", f"{label}: errors", "count", bare=None)
        for _ in range(self.plan.rounds):
            result = self.streams(
                mock,
                short_body(self.texts, stream=True),
                count,
                expected.short_events,
                headers={"X-Mock-Delivery": f"gap={PACING_GAP:g}"},
                stamp=True,
            )
            deviations = [abs(gap - PACING_GAP) for gap in result.gaps]
            self.add("pace.p50", "mock", quantile(deviations, 0.5) * 1000)
            self.add("pace.p99", "mock", quantile(deviations, 0.99) * 1000)
            steady = [abs(gap - PACING_GAP) for gap in result.steady_gaps]
            self.add("pace.steady99", "mock", quantile(steady, 0.99) * 1000)
            mean = sum(result.gaps) / len(result.gaps) if result.gaps else 0.0
            self.add("pace.mean", "mock", mean * 1000)
            self.add("pace.errors", "mock", result.errors)
        say("  pacing done")

    def slow_streams(self, mock: Server, expected: Expected) -> None:
        """Many slow clients at once: every stream paced at 50 ms a token (~5 s each), all
        opened together, so the server holds them all open at the same time."""
        count = self.plan.slow_streams
        label = f"{count:,} slow streams held open (50 ms a token)"
        self.figure("slow.errors", f"{label}: errors", "count", bare=None, target=zero())
        self.figure("slow.ttfb99", f"{label}: TTFB p99", "ms", bare=None)
        self.figure("slow.rss", f"{label}: peak server RSS", "MiB", bare=None)
        exact = mock.reset_peak()
        result = self.streams(
            mock,
            short_body(self.texts, stream=True),
            count,
            expected.short_events,
            headers={"X-Mock-Delivery": "gap=0.05"},
        )
        self.add("slow.errors", "mock", result.errors)
        self.add("slow.ttfb99", "mock", quantile(result.ttfb, 0.99) * 1000)
        self.add("slow.rss", "mock", mock.peak_rss_mib() if exact else mock.rss_mib())
        say(f"  {count} slow streams done")

    def proxy(self) -> None:
        """Per-frame latency from an upstream's send to the client's read, through the
        validating proxy and directly; the proxy checks every chunk after forwarding it."""
        from tests.bench.proxy import FRAMES, GAP, STREAMS, latencies

        label = f"proxy, {STREAMS} streams × {FRAMES} frames {GAP * 1000:g} ms apart"
        self.figure("proxy.p50", f"{label}: frame latency p50 (bare: direct)", "ms")
        self.figure("proxy.p99", f"{label}: frame latency p99 (bare: direct)", "ms")
        self.figure(
            "proxy.added99",
            f"{label}: latency the proxy adds per frame, p99",
            "ms",
            bare=None,
            target=below(5, "ms"),
        )
        upstream = spawn("stamps", self.work)
        proxy: Server | None = None
        try:
            url = f"http://127.0.0.1:{upstream.port}"
            proxy = spawn("proxy", self.work, "--upstream", url)
            # Warm-up, not measured: the first check loads the schema registry (~0.2 s).
            self.run_async(latencies(f"http://127.0.0.1:{proxy.port}{CHAT}"))
            for _ in range(self.plan.rounds):
                direct = self.run_async(latencies(url + CHAT))
                via = self.run_async(latencies(f"http://127.0.0.1:{proxy.port}{CHAT}"))
                self.add("proxy.p50", "mock", quantile(via, 0.5))
                self.add("proxy.p50", "bare", quantile(direct, 0.5))
                self.add("proxy.p99", "mock", quantile(via, 0.99))
                self.add("proxy.p99", "bare", quantile(direct, 0.99))
                self.add("proxy.added99", "mock", quantile(via, 0.99) - quantile(direct, 0.99))
        finally:
            upstream.stop()
            if proxy is not None:
                proxy.stop()
        say("  proxy done")

    def startup(self) -> None:
        self.figure("startup", "start-up: spawn to first 200", "ms", target=below(400, "ms"))
        for _ in range(self.plan.startup_rounds):
            for app in ("mock", "bare"):
                # The mock as `deepseek-mock serve` starts (no extra rules); `GET /models`.
                server = spawn("mock", self.work) if app == "mock" else self.spawn_bare()
                server.stop()
                self.add("startup", app, server.startup * 1000)
        say("  start-up done")

    def micro(self) -> None:
        for cost in micro.costs(self.texts, self.plan.micro_repeats):
            key = "cost." + cost.name.split(" (")[0].replace(" ", "_")
            figure = self.figure(key, f"cost: {cost.name}", "µs", bare=None)
            figure.mock = [cost.min_us, cost.median_us, cost.max_us]
        say("  per-step costs done")

    # ------------------------------------------------------------------ the whole run

    def run(self) -> list[Figure]:
        say(f"load generator: {self.loadgen}; plan: {self.plan}")
        mock = self.spawn_mock()
        bare: Server | None = None
        try:
            expected = self.capture(mock)
            bare = self.spawn_bare()
            servers = [mock, bare]
            rest = self.figure("rss.rest", "server RSS at rest (started, one answer)", "MiB")
            rest.mock, rest.bare = [mock.rss_mib()], [bare.rss_mib()]
            self.warm_up(servers, expected)
            self.non_streaming(servers)
            self.long_stream(servers, expected)
            self.many_streams(servers, expected)
            self.pacing(mock, expected)
            self.slow_streams(mock, expected)
        finally:
            mock.stop()
            if bare is not None:
                bare.stop()
        self.proxy()
        self.startup()
        self.micro()
        return list(self.figures.values())

    def close(self) -> None:
        self.runner.close()

    # ------------------------------------------------------------------ profiles

    def profile(self, key: str, top: int = 15) -> str:
        """Run the scenario behind a missed figure once more against a mock under cProfile;
        the functions with the most self time, as text."""
        stats_file = self.work / f"profile-{key}.pstats"
        scenario = self.scenario_for(key)
        if key == "startup":
            server = spawn("mock", self.work, "--profile", str(stats_file))
        else:
            server = self.spawn_mock("--profile", str(stats_file))
        try:
            # One answer first, so the tokenizer's one-off load stays out of the profile.
            self.streams(server, short_body(self.texts, stream=True), 1, None)
            scenario(server)
        finally:
            server.stop()
        out = io.StringIO()
        if key == "startup":
            out.write(self.import_times(top) + "\n\n")
        stats = pstats.Stats(str(stats_file), stream=out)
        stats.sort_stats("tottime").print_stats(top)
        return out.getvalue()

    def import_times(self, top: int) -> str:
        """Start-up is mostly imports, which cProfile sees only as `exec`: `-X importtime`
        names the modules, by their own (self) time."""
        server = spawn("mock", self.work, python_flags=["-X", "importtime"])
        server.stop()
        rows: list[tuple[int, int, str]] = []
        for line in server.log.read_text().splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            fields = line.removeprefix("import time:").split("|", 2)
            rows.append((int(fields[0]), int(fields[1]), fields[2].rstrip()))
        spent = sum(own for own, _, _ in rows) / 1000
        lines = [f"spawn to first 200: {server.startup * 1000:.0f} ms, imports {spent:.0f} ms"]
        # Packages the launcher pulls in (shallow nesting) by total time, then the single
        # modules that cost the most themselves.
        shallow = [row for row in rows if len(row[2]) - len(row[2].lstrip()) <= 3]
        lines.append("cumul. ms  package (by total time)")
        for _, total, name in sorted(shallow, key=lambda r: -r[1])[:top]:
            lines.append(f"{total / 1000:8.1f}   {name.strip()}")
        lines.append("self ms    module (by self time)")
        for own, _, name in sorted(rows, key=lambda r: -r[0])[:top]:
            lines.append(f"{own / 1000:8.1f}   {name.strip()}")
        return "\n".join(lines)

    def scenario_for(self, key: str) -> Callable[[Server], object]:
        short = short_body(self.texts, stream=True)
        # The event counts are checked in the main run; a profile only needs the load.
        if key.startswith("ns."):
            return lambda s: self.requests(s, 16, self.plan.duration)
        if key.startswith("long."):
            return lambda s: self.streams(s, long_body(self.texts), 1, None)
        if key[:1] == "s" and key[1:2].isdigit():
            count = int(key[1:].split(".")[0])
            return lambda s: self.streams(s, short, count, None)
        if key.startswith("pace."):
            return lambda s: self.streams(
                s,
                short,
                self.plan.pacing_streams,
                None,
                headers={"X-Mock-Delivery": f"gap={PACING_GAP:g}"},
            )
        return lambda s: None
