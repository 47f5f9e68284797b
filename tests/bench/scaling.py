"""Beyond one process: `serve --workers 2 --state redis://` beside `serve` with one worker in
memory, on the same requests in interleaved rounds.

Neither is pinned to the server core: the point is what a second worker on the second core
gives, with every rule decision and journal entry going through a real redis-server on
127.0.0.1. The load generator shares the machine with both, alike.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tests.bench.report import Figure, Target, zero
from tests.redis_server import redis_server

if TYPE_CHECKING:
    from tests.bench.runner import Bench

ONE = "bare"  # the column the report divides by: here one worker, in memory
TWO = "mock"  # two workers on the shared store
CONCURRENCIES = (16, 64)


def at_least_times_one_worker(limit: float) -> Target:
    def met(fig: Figure) -> bool | None:
        ratio = fig.ratio
        return None if ratio is None else ratio >= limit

    return Target(f"≥ {limit:g}× 1 worker in memory", met)


@contextmanager
def _redis() -> Iterator[str | None]:
    if shutil.which("redis-server") is None:
        yield None
        return
    with redis_server() as url:
        yield url


def workers(bench: Bench) -> None:
    from tests.bench.procs import spawn_shipped
    from tests.bench.runner import say

    with _redis() as url:
        if url is None:
            say(
                "  workers: no redis-server on this machine (apt-get install redis-server): skipped"
            )
            return
        fixtures = ("--fixtures", str(bench.scenario), "--log-level", "warning")
        one = spawn_shipped(bench.work, *fixtures, name="one-worker", pinned=False)
        two = None
        try:
            two = spawn_shipped(
                bench.work,
                *fixtures,
                "--workers",
                "2",
                "--state",
                url + "/0",
                name="two-workers",
                pinned=False,
            )
            errors = bench.figure(
                "workers.errors", "workers rows: errors, all runs", "count", zero()
            )
            errors.values = {ONE: [0.0], TWO: [0.0]}
            for c in CONCURRENCIES:
                bench.figure(
                    f"workers.c{c}.rps",
                    f"non-streaming c={c}: `serve --workers 2 --state redis://` (Mock column) "
                    "over `serve`, 1 worker in memory (Bare column)",
                    "req/s",
                    at_least_times_one_worker(1.2),
                )
            for server in (one, two):
                bench.requests(server, 16, 1)  # warm: tokenizer, caches, connections
            for _ in range(bench.plan.rounds):
                for c in CONCURRENCIES:
                    for server, column in ((one, ONE), (two, TWO)):
                        result = bench.requests(server, c, bench.plan.duration)
                        bench.add(f"workers.c{c}.rps", column, result.rps)
                        bench.count("workers.errors", column, result.errors)
        finally:
            one.stop()
            if two is not None:
                two.stop()
    say("  workers done")
