"""`python -m tests.bench [--quick] [--json PATH] [--profile]`: the mock against a bare
Starlette app, in one run, as a markdown table."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from tests.bench.procs import pin_load_generator
from tests.bench.report import table
from tests.bench.runner import FULL, QUICK, Bench, say


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs (<1 min)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure here")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="for every missed target, profile the mock under that load (cProfile, self time)",
    )
    parser.add_argument(
        "--loadgen",
        choices=("wrk", "asyncio"),
        help="non-streaming load generator (default: wrk when installed)",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    pinned = pin_load_generator()
    if not pinned:
        say("fewer than two usable cores: server and load share a CPU, figures are pessimistic")
    with tempfile.TemporaryDirectory(prefix="deepseek-mock-bench-") as tmp:
        bench = Bench(QUICK if args.quick else FULL, Path(tmp), loadgen=args.loadgen)
        figures = bench.run()
        elapsed = time.perf_counter() - started
        sys.stdout.write(table(figures) + "\n\n")
        sys.stdout.write(notes(bench, pinned, elapsed) + "\n")
        missed = [f for f in figures if f.passed is False]
        profiles: dict[str, str] = {}
        if args.profile:
            for figure in missed:
                say(f"profiling the mock for: {figure.label}")
                profiles[figure.key] = bench.profile(figure.key)
                sys.stdout.write(f"\n### Profile: {figure.label}\n\n```\n")
                sys.stdout.write(profiles[figure.key].strip() + "\n```\n")
        bench.close()
    if args.json is not None:
        document = {
            "plan": {"quick": args.quick, "loadgen": bench.loadgen, "pinned": pinned},
            "elapsed_s": elapsed,
            "figures": {f.key: f.to_json() for f in figures},
            "diagnostics": bench.diagnostics,
            "profiles": profiles,
        }
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    # A missed target is a finding, not a failure: the table says MISS and make goes on.
    return 0


def notes(bench: Bench, pinned: bool, elapsed: float) -> str:
    cpu = bench.diagnostics
    client = max(
        (max(v) for k, v in cpu.items() if k.startswith("client_cpu_pct.") and "streams" in k),
        default=0,
    )
    wrk = max(
        (max(v) for k, v in cpu.items() if k.startswith("client_cpu_pct.") and ".c" in k),
        default=0,
    )
    server_c16 = cpu.get("server_cpu_pct.mock.c16", [])
    lines = [
        f"Medians of {bench.plan.rounds} rounds "
        f"({bench.plan.many_rounds} at {max(bench.plan.stream_counts):,} streams, "
        f"{bench.plan.startup_rounds} start-ups); per-step costs: median of "
        f"{bench.plan.micro_repeats} timeit repeats (min–max).",
        f"Non-streaming load: {bench.loadgen}; the replies are canned at exactly 100 tokens "
        "(prompt ~200 tokens, max_tokens=100).",
        "Server on CPU 0, load generator on CPU 1." if pinned else "Server and load share CPUs.",
        f"Mock CPU during c=16: {max(server_c16, default=0):.0f}% of a core; the load "
        f"generators never needed more than {wrk:.0f}% (requests) and {client:.0f}% (streams) "
        "of theirs, so they are not the limit.",
        f"Run time: {elapsed:.0f} s.",
    ]
    return "\n".join(f"- {line}" for line in lines)


if __name__ == "__main__":
    raise SystemExit(main())
