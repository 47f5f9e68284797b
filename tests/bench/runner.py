"""One benchmark run: both servers up side by side, every figure measured in interleaved
rounds (mock, bare, mock, bare, ...) so drift on a shared machine hits both alike."""

from __future__ import annotations

import asyncio
import functools
import io
import pstats
import resource
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import uvloop

from tests.bench import micro, scaling
from tests.bench.bare import JSON_SHORT, STREAM_LONG, STREAM_SHORT, UNBATCHED
from tests.bench.load import (
    MARK,
    Body,
    RequestsResult,
    StreamsResult,
    has_wrk,
    post_request,
    quantile,
    run_requests,
    run_streams,
    run_wrk,
)
from tests.bench.peers import Peer
from tests.bench.procs import (
    Server,
    answered,
    compile_modules,
    free_port,
    launch,
    spawn,
    spawn_shipped,
)
from tests.bench.report import (
    Figure,
    Target,
    at_least_peer_ratio,
    at_least_peer_ratio_of,
    at_least_ratio,
    at_most,
    below,
    zero,
)
from tests.bench.workload import (
    PACING_GAP,
    SHORT_REPLY_TOKENS,
    Texts,
    build_texts,
    distinct_body,
    generated_body,
    long_body,
    rule_spec,
    scenario_file,
    short_body,
)

T = TypeVar("T")
CHAT = "/chat/completions"
# Enough for the mock to copy the long answer: a prompt-cache miss at worst, then the hit's
# two sightings (the second makes its template).
LONG_WARM_UP = 3
DISTINCT_STEP = 10**8  # counter values each distinct-prompt run has to itself


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
    peer_concurrencies: tuple[int, ...] = (16, 64)  # where the peers are measured too
    variant_concurrencies: tuple[int, ...] = (16, 64)  # the generated and new-prompt rows
    stream_counts: tuple[int, ...] = (100, 1000)
    pacing_streams: int = 100
    slow_streams: int = 10_000  # held open at once, by one server process
    stream_time_limit: float = 60.0  # seconds before unfinished streams count as errors


FULL = Plan(rounds=5, duration=3, many_rounds=3, startup_rounds=7, micro_repeats=5)
QUICK = Plan(
    rounds=2,
    duration=1,
    many_rounds=1,
    startup_rounds=3,
    micro_repeats=3,
    slow_streams=2_000,
    variant_concurrencies=(16,),
)


@dataclass(frozen=True, slots=True)
class Expected:
    short_events: int
    long_events: int


class Bench:
    def __init__(
        self,
        plan: Plan,
        work: Path,
        *,
        loadgen: str | None = None,
        peers: Sequence[Peer] = (),
        cache: Path | None = None,
    ) -> None:
        self.plan = plan
        self.work = work
        self.loadgen = loadgen or ("wrk" if has_wrk() else "asyncio")
        self.runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        self.figures: dict[str, Figure] = {}
        self.diagnostics: dict[str, list[float]] = {}
        self.texts: Texts = build_texts()
        self.rules = work / "rules.json"
        self.rules.write_bytes(orjson.dumps(rule_spec(self.texts)))
        self.scenario = work / "scenario.json"  # the same rules, for `deepseek-mock serve`
        self.scenario.write_bytes(orjson.dumps(scenario_file(self.texts)))
        self.captured = work / "captured"
        self.captured.mkdir(exist_ok=True)
        self.peers: list[Peer] = list(peers)  # those that came up and answered as they should
        self.cache = cache or work
        self.expected: dict[str, Expected] = {}
        self.distinct_runs = 0

    # ------------------------------------------------------------------ plumbing

    def run_async(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def figure(self, key: str, label: str, unit: str, *targets: Target) -> Figure:
        if key not in self.figures:
            self.figures[key] = Figure(key, label, unit, targets=list(targets))
        return self.figures[key]

    def note(self, key: str, value: float) -> None:
        self.diagnostics.setdefault(key, []).append(value)

    def add(self, key: str, column: str, value: float) -> None:
        self.figures[key].values.setdefault(column, []).append(value)

    def count(self, key: str, column: str, value: float) -> None:
        """Add to a running total (one value per column), e.g. errors over all runs."""
        values = self.figures[key].values.setdefault(column, [0.0])
        values[0] += value

    def spawn_mock(self, *extra: str) -> Server:
        return spawn("mock", self.work, "--rules", str(self.rules), *extra)

    def spawn_bare(self) -> Server:
        return spawn("bare", self.work, "--captured", str(self.captured))

    def spawn_peer(self, peer: Peer) -> Server:
        port = free_port()
        return launch(
            peer.name,
            peer.command(self.cache, self.work, self.texts, port),
            self.work,
            port=port,
            probe_path=peer.probe_path,
            chat_path=peer.chat_path,
            env=peer.env(self.work, self.texts),
        )

    def capture(self, mock: Server) -> Expected:
        """One real answer of each kind from a mock, checked (the canned reply applied); the
        tuned launch's are saved for the bare app to replay."""
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
        if mock.name == "mock":
            (self.captured / JSON_SHORT).write_bytes(answer.content)
            (self.captured / STREAM_SHORT).write_bytes(short.content)
            (self.captured / STREAM_LONG).write_bytes(long.content)
        return Expected(short.content.count(MARK), long.content.count(MARK))

    def check_peer(self, server: Server, peer: Peer) -> Expected:
        """The peer's own answers to the bench's requests: the canned reply, word for word,
        and its event counts (each peer splits a stream its own way)."""
        base = f"http://127.0.0.1:{server.port}"
        headers = {"authorization": "Bearer x", "content-type": "application/json"}
        path = server.chat_path
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            answer = client.post(path, content=short_body(self.texts, stream=False))
            answer.raise_for_status()
            content = answer.json()["choices"][0]["message"]["content"]
            if content != self.texts.short_reply:
                raise RuntimeError(f"its fixture did not apply: answered {content[:60]!r}")
            short = client.post(path, content=short_body(self.texts, stream=True))
            short.raise_for_status()
            long_events = 0
            if peer.streams_long:
                peer.select(server.port, self.texts, "long")
                long = client.post(path, content=long_body(self.texts))
                long.raise_for_status()
                long_events = long.content.count(MARK)
                peer.select(server.port, self.texts, "short")
        return Expected(short.content.count(MARK), long_events)

    def requests(
        self, server: Server, connections: int, duration: float, body: Body | None = None
    ) -> RequestsResult:
        body = short_body(self.texts, stream=False) if body is None else body
        cpu = server.cpu_seconds()
        client_cpu = _children_cpu() + time.process_time()
        started = time.perf_counter()
        path = server.chat_path
        if self.loadgen == "wrk":
            result = run_wrk(server.port, path, body, connections, duration)
        else:
            result = self.run_async(run_requests(server.port, path, body, connections, duration))
        wall = time.perf_counter() - started
        self.note(
            f"client_cpu_pct.{server.name}.c{connections}",
            (_children_cpu() + time.process_time() - client_cpu) / wall * 100,
        )
        self.note(
            f"server_cpu_pct.{server.name}.c{connections}",
            (server.cpu_seconds() - cpu) / wall * 100,
        )
        return result

    def streams(
        self,
        server: Server,
        body: bytes,
        count: int,
        expected: int | None,
        path: str | None = None,
        **kwargs: Any,
    ) -> StreamsResult:
        cpu = server.cpu_seconds()
        client_cpu = time.process_time()
        result = self.run_async(
            run_streams(
                server.port,
                path or server.chat_path,
                body,
                streams=count,
                expected_events=expected,
                time_limit=self.plan.stream_time_limit,
                **kwargs,
            )
        )
        wall = max(result.elapsed, 1e-9)
        self.note(
            f"server_cpu_pct.{server.name}.streams{count}",
            (server.cpu_seconds() - cpu) / wall * 100,
        )
        self.note(
            f"client_cpu_pct.{server.name}.streams{count}",
            (time.process_time() - client_cpu) / wall * 100,
        )
        for failure in result.failures:
            say(f"  {server.name}, {count} streams: {failure}")
        return result

    def events(self, server: Server, kind: str) -> int:
        expected = self.expected[server.name]
        return expected.long_events if kind == "long" else expected.short_events

    # ------------------------------------------------------------------ the figures

    def warm_up(self, servers: list[Server]) -> None:
        short = short_body(self.texts, stream=True)
        for server in servers:
            self.requests(server, 16, 1)
            self.streams(server, short, 50, self.events(server, "short"))
            if self.events(server, "long"):
                self.select(server, "long")
                self.streams(server, long_body(self.texts), 1, self.events(server, "long"))
                self.select(server, "short")
        self.diagnostics.clear()

    def select(self, server: Server, which: str) -> None:
        for peer in self.peers:
            if peer.name == server.name:
                peer.select(server.port, self.texts, which)

    def non_streaming(self, servers: list[Server]) -> None:
        errors = self.figure("ns.errors", "non-streaming errors, all runs", "count", zero())
        for server in servers:
            errors.values[server.name] = [0.0]
        for c in self.plan.concurrencies:
            targets = (at_least_ratio(0.8), at_least_peer_ratio(1.5)) if c > 1 else ()
            self.figure(f"ns.c{c}.rps", f"non-streaming c={c}: throughput", "req/s", *targets)
            self.figure(f"ns.c{c}.p50", f"non-streaming c={c}: latency p50", "ms")
            self.figure(f"ns.c{c}.p99", f"non-streaming c={c}: latency p99", "ms")
        for c in self.plan.concurrencies:
            # Peers at the concurrencies the comparison is about; c=1 is the mock's own.
            measured = servers if c in self.plan.peer_concurrencies else servers[:2]
            for _ in range(self.plan.rounds):
                for server in measured:
                    result = self.requests(server, c, self.plan.duration)
                    self.add(f"ns.c{c}.rps", server.name, result.rps)
                    self.add(f"ns.c{c}.p50", server.name, result.p50_ms)
                    self.add(f"ns.c{c}.p99", server.name, result.p99_ms)
                    self.count("ns.errors", server.name, result.errors)
            say(f"  non-streaming c={c} done")

    def generated(self, mock: Server, bare: Server) -> None:
        """The mock writing its own reply (no rule matches); the bare app answers as ever."""
        body = generated_body(self.texts)
        for c in self.plan.variant_concurrencies:
            canned = self.figures[f"ns.c{c}.rps"]
            label = f"non-streaming c={c}, a generated reply"
            targets = (at_least_ratio(0.8), at_least_peer_ratio_of(1.5, canned))
            self.figure(f"nsg.c{c}.rps", f"{label}: throughput", "req/s", *targets)
            self.figure(f"nsg.c{c}.p99", f"{label}: latency p99", "ms")
            for _ in range(self.plan.rounds):
                for server in (mock, bare):
                    result = self.requests(server, c, self.plan.duration, body)
                    self.add(f"nsg.c{c}.rps", server.name, result.rps)
                    self.add(f"nsg.c{c}.p99", server.name, result.p99_ms)
                    self.count("ns.errors", server.name, result.errors)
        say("  generated replies done")

    def distinct(self, servers: list[Server]) -> None:
        """A new prompt on every request: what the mock pays to count text it has not seen."""
        for c in self.plan.variant_concurrencies:
            label = f"non-streaming c={c}, a new prompt every request"
            self.figure(f"nsd.c{c}.rps", f"{label}: throughput", "req/s", at_least_ratio(0.5))
            self.figure(f"nsd.c{c}.p99", f"{label}: latency p99", "ms")
            for _ in range(self.plan.rounds):
                for server in servers:
                    # A counter range of its own for every run: no prompt repeats in the bench.
                    self.distinct_runs += 1
                    body = distinct_body(self.texts, self.distinct_runs * DISTINCT_STEP)
                    result = self.requests(server, c, self.plan.duration, body)
                    self.add(f"nsd.c{c}.rps", server.name, result.rps)
                    self.add(f"nsd.c{c}.p99", server.name, result.p99_ms)
                    self.count("ns.errors", server.name, result.errors)
            say(f"  distinct prompts c={c} done")

    def shipped(self, shipped: Server, bare: Server) -> None:
        """`deepseek-mock serve` as shipped (request log at info, its connection handling,
        every dialect) against the bare app, in rounds of their own."""
        label = "mock as shipped (`deepseek-mock serve`)"
        c = 16
        rps = self.figure("shipped.c16.rps", f"non-streaming c={c}: throughput, {label}", "req/s")
        self.figure("shipped.c16.p99", f"non-streaming c={c}: latency p99, {label}", "ms")
        count = min(self.plan.stream_counts)
        self.figure(
            "shipped.streams.eps",
            f"{count:,} streams × 100 tokens: throughput, {label}",
            "events/s",
        )
        rps.targets.append(at_least_ratio(0.8))
        body = short_body(self.texts, stream=True)
        for _ in range(self.plan.rounds):
            for server, column in ((shipped, "mock"), (bare, "bare")):
                result = self.requests(server, c, self.plan.duration)
                self.add("shipped.c16.rps", column, result.rps)
                self.add("shipped.c16.p99", column, result.p99_ms)
                self.count("ns.errors", server.name, result.errors)
                streamed = self.streams(server, body, count, self.events(server, "short"))
                self.add("shipped.streams.eps", column, streamed.events_per_second)
        say("  mock as shipped done")

    def long_stream(self, servers: list[Server]) -> None:
        key = "long.eps"
        label = "1 stream of 10,000 tokens"
        self.figure(key, label, "events/s", at_least_ratio(0.5))
        self.figure(f"{key}.unbatched", f"{label}, bare one frame per send", "events/s")
        self.figure("long.errors", f"{label}: errors", "count")
        measured = [s for s in servers if self.events(s, "long")]
        for server in measured:
            self.select(server, "long")
        # Warmed again here: the rows since warm_up (thousands of new prompts) push its
        # sightings out of the mock's template memory, and the first rounds then measured a
        # 10,000-token answer rendered afresh (twice, the second time also made into a
        # template) where every other row measures the answer asked for again.
        for _ in range(LONG_WARM_UP):
            for server in measured:
                self.streams(server, long_body(self.texts), 1, self.events(server, "long"))
        for _ in range(self.plan.rounds):
            for server in measured:
                result = self.streams(server, long_body(self.texts), 1, self.events(server, "long"))
                self.add(key, server.name, result.events_per_second)
                self.add("long.errors", server.name, result.errors)
                if server.name == "mock":
                    self.add(f"{key}.unbatched", "mock", result.events_per_second)
                if server.name == "bare":
                    result = self.streams(
                        server,
                        long_body(self.texts),
                        1,
                        self.events(server, "long"),
                        path=UNBATCHED + CHAT,
                    )
                    self.add(f"{key}.unbatched", "bare", result.events_per_second)
        for server in measured:
            self.select(server, "short")
        say("  long stream done")

    def many_streams(self, servers: list[Server]) -> None:
        body = short_body(self.texts, stream=True)
        largest = max(self.plan.stream_counts)
        for count in self.plan.stream_counts:
            p = f"s{count}"
            label = f"{count:,} streams × 100 tokens"
            self.figure(f"{p}.eps", f"{label}: throughput", "events/s", at_least_peer_ratio(1.5))
            self.figure(
                f"{p}.eps.unbatched", f"{label}: throughput, bare one frame per send", "events/s"
            )
            self.figure(f"{p}.ttfb50", f"{label}: TTFB p50", "ms")
            self.figure(f"{p}.ttfb99", f"{label}: TTFB p99", "ms")
            self.figure(f"{p}.errors", f"{label}: errors", "count")
            self.figure(f"{p}.rss", f"{label}: peak server RSS", "MiB")
            if count == largest:
                self.figures[f"{p}.errors"].targets.append(zero())
                self.figures[f"{p}.ttfb99"].targets.append(at_most(1000, "ms"))
                self.figures[f"{p}.rss"].targets.append(below(100, "MiB"))
            rounds = self.plan.many_rounds if count == largest else self.plan.rounds
            for _ in range(rounds):
                for server in servers:
                    exact = server.reset_peak()
                    result = self.streams(server, body, count, self.events(server, "short"))
                    self.add(f"{p}.eps", server.name, result.events_per_second)
                    self.add(f"{p}.ttfb50", server.name, quantile(result.ttfb, 0.5) * 1000)
                    self.add(f"{p}.ttfb99", server.name, quantile(result.ttfb, 0.99) * 1000)
                    self.add(f"{p}.errors", server.name, result.errors)
                    # Without clear_refs the high-water mark covers the process's whole life.
                    rss = server.peak_rss_mib() if exact else server.rss_mib()
                    self.add(f"{p}.rss", server.name, rss)
                    if server.name == "mock":
                        self.add(f"{p}.eps.unbatched", "mock", result.events_per_second)
                    if server.name == "bare":
                        result = self.streams(
                            server,
                            body,
                            count,
                            self.events(server, "short"),
                            path=UNBATCHED + CHAT,
                        )
                        self.add(f"{p}.eps.unbatched", "bare", result.events_per_second)
            say(f"  {count} streams done")

    def pacing(self, mock: Server) -> None:
        count = self.plan.pacing_streams
        label = f"pacing, {PACING_GAP * 1000:g} ms gap, {count} streams"
        self.figure("pace.p50", f"{label}: gap deviation p50", "ms")
        self.figure("pace.p99", f"{label}: gap deviation p99", "ms", at_most(5, "ms"))
        self.figure("pace.steady99", f"{label}: gap deviation p99 once all streams began", "ms")
        self.figure("pace.mean", f"{label}: mean gap", "ms")
        self.figure("pace.errors", f"{label}: errors", "count")
        for _ in range(self.plan.rounds):
            result = self.streams(
                mock,
                short_body(self.texts, stream=True),
                count,
                self.events(mock, "short"),
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

    def slow_streams(self, mock: Server) -> None:
        """Many slow clients at once: every stream paced at 50 ms a token (~5 s each), all
        opened together, so the server holds them all open at the same time."""
        count = self.plan.slow_streams
        label = f"{count:,} slow streams held open (50 ms a token)"
        self.figure("slow.errors", f"{label}: errors", "count", zero())
        self.figure("slow.ttfb99", f"{label}: TTFB p99", "ms")
        self.figure("slow.rss", f"{label}: peak server RSS", "MiB")
        exact = mock.reset_peak()
        result = self.streams(
            mock,
            short_body(self.texts, stream=True),
            count,
            self.events(mock, "short"),
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
            "proxy.added99", f"{label}: latency the proxy adds per frame, p99", "ms", below(5, "ms")
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
        """Spawn to the first 200, and on to the first answered chat completion (for the
        mock that includes loading the tokenizer). The mock as `deepseek-mock serve` starts:
        no options, so its first answer is a generated one; the peers with their fixtures."""
        self.figure("startup", "start-up: spawn to first 200 (GET)", "ms")
        self.figure(
            "startup.chat",
            "start-up: spawn to first chat completion (tokenizer included)",
            "ms",
            below(400, "ms"),
        )
        body = short_body(self.texts, stream=False)
        starters: list[tuple[str, Callable[[], Server]]] = [
            ("mock", lambda: spawn_shipped(self.work)),
            ("bare", self.spawn_bare),
        ]
        starters += [(peer.name, functools.partial(self.spawn_peer, peer)) for peer in self.peers]
        for _ in range(self.plan.startup_rounds):
            for column, start in starters:
                server = start()
                try:
                    ok = answered(
                        server.port, post_request(server.chat_path, body, close=True, headers={})
                    )
                    chat = time.perf_counter() - server.started_at
                finally:
                    server.stop()
                self.add("startup", column, server.startup * 1000)
                if ok:
                    self.add("startup.chat", column, chat * 1000)
        say("  start-up done")

    def micro(self) -> None:
        for cost in micro.costs(self.texts, self.plan.micro_repeats):
            key = "cost." + cost.name.split(" (")[0].replace(" ", "_")
            figure = self.figure(key, f"cost: {cost.name}", "µs")
            figure.values["mock"] = [cost.min_us, cost.median_us, cost.max_us]
        say("  per-step costs done")

    # ------------------------------------------------------------------ the whole run

    def start_peers(self) -> list[Server]:
        """Each peer up and checked; one that cannot start or answers wrongly is skipped."""
        servers: list[Server] = []
        for peer in list(self.peers):
            server: Server | None = None
            try:
                server = self.spawn_peer(peer)
                peer.select(server.port, self.texts, "short")
                self.expected[peer.name] = self.check_peer(server, peer)
            except (RuntimeError, OSError, httpx.HTTPError, KeyError, ValueError) as exc:
                say(f"peer {peer.name} skipped: {str(exc).strip().splitlines()[-1][:300]}")
                self.peers.remove(peer)
                if server is not None:
                    server.stop()
                continue
            servers.append(server)
        return servers

    def run(self) -> list[Figure]:
        say(f"load generator: {self.loadgen}; plan: {self.plan}")
        compile_modules()
        mock = self.spawn_mock()
        started: list[Server] = [mock]
        try:
            self.expected["mock"] = self.capture(mock)
            bare = self.spawn_bare()
            started.append(bare)
            self.expected["bare"] = self.expected["mock"]
            shipped = spawn_shipped(self.work, "--fixtures", str(self.scenario))
            started.append(shipped)
            self.expected["shipped"] = self.capture(shipped)
            started += self.start_peers()
            servers = [mock, bare, *started[3:]]
            rest = self.figure("rss.rest", "server RSS at rest (started, one answer)", "MiB")
            for server in servers:
                rest.values[server.name] = [server.rss_mib()]
            self.warm_up([*servers, shipped])
            self.non_streaming(servers)
            self.generated(mock, bare)
            self.distinct(servers)
            self.shipped(shipped, bare)
            scaling.workers(self)
            self.long_stream(servers)
            self.many_streams(servers)
            self.pacing(mock)
            self.slow_streams(mock)
        finally:
            for server in started:
                server.stop()
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
        if key.startswith("startup"):
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
        if key.startswith("startup"):
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
        if key.startswith("nsd."):
            body = distinct_body(self.texts, DISTINCT_STEP)
            return lambda s: self.requests(s, 16, self.plan.duration, body)
        if key.startswith("nsg."):
            generated = generated_body(self.texts)
            return lambda s: self.requests(s, 16, self.plan.duration, generated)
        if key.startswith(("ns.", "shipped.")):
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
