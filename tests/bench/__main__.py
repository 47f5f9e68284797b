"""`python -m tests.bench [--quick] [--peers] [--json PATH] [--profile]`: the mock against a
bare Starlette app (and, with --peers, other LLM mocks), in one run, as a markdown table."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from tests.bench import peers
from tests.bench.procs import ROOT, pin_load_generator
from tests.bench.report import table
from tests.bench.runner import FULL, QUICK, Bench, say

CLIENT_BUSY_PCT = 85  # a core's share past which a load generator is a limit
CACHE = ROOT / ".bench-peers"  # beside the checkout, git-ignored: the peers' installs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs (<1 min)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure here")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="for every missed target, profile the mock under that load (cProfile, self time)",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also measure other LLM mocks (aimock, llmock, fakellm; installed once, pinned, "
        f"into {CACHE.name}/)",
    )
    parser.add_argument(
        "--loadgen",
        choices=("wrk", "asyncio"),
        help="non-streaming load generator (default: wrk when installed)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    started = time.perf_counter()
    usable = peers.ready(CACHE, say) if args.peers else []
    pinned = pin_load_generator()
    if not pinned:
        say("fewer than two usable cores: server and load share a CPU, figures are pessimistic")
    with tempfile.TemporaryDirectory(prefix="deepseek-mock-bench-") as tmp:
        plan = QUICK if args.quick else FULL
        bench = Bench(plan, Path(tmp), loadgen=args.loadgen, peers=usable, cache=CACHE)
        figures = bench.run()
        elapsed = time.perf_counter() - started
        sys.stdout.write(table(figures, [peer.name for peer in bench.peers]) + "\n\n")
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
            "peers": {peer.name: peer.version for peer in bench.peers},
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
    streams: dict[int, float] = {}  # the stream client's busiest share, by stream count
    for key, shares in cpu.items():
        if key.startswith("client_cpu_pct.") and ".streams" in key:
            count = int(key.rpartition(".streams")[2])
            streams[count] = max(streams.get(count, 0.0), *shares)
    client = max(streams.values(), default=0)
    # Rows where the stream client neared a full core measure the client as well.
    busy = sorted(n for n, share in streams.items() if share >= CLIENT_BUSY_PCT)
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
        + (
            "of theirs; the stream client reached "
            + f"{CLIENT_BUSY_PCT}% or more at {', '.join(f'{n:,}' for n in busy)} stream(s), "
            "where it limits the figure as much as the server does."
            if busy
            else "of theirs, so they are not the limit."
        )
        + (
            " Below 80%, the mock waited for its core: something outside the bench ran there, "
            "so this run's figures are low."
            if max(server_c16, default=100) < 80
            else ""
        ),
        "Streams: the bare app joins frames into writes of ~32 KiB, as the mock does; the rows "
        "'bare one frame per send' show the same stream written a frame at a time.",
        "A new prompt every request: a counter after the prompt, a range of its own per run, "
        "so no request body repeats in the whole bench; the prompt's text before the counter "
        "is counted from the token cache's pieces, as a suite's shared text would be (a wholly "
        "new ~200-token text: the `cost: token counting, new text` row).",
        "Mock as shipped: `deepseek-mock serve --fixtures` with the same canned replies, its "
        "request log at info and its own connection handling, every dialect mounted.",
        f"Run time: {elapsed:.0f} s.",
    ]
    for peer in bench.peers:
        events = bench.expected[peer.name]
        line = (
            f"{peer.name} {peer.version} ({peer.registry}): {events.short_events} events in a "
            f"100-token stream (the mock: {bench.expected['mock'].short_events})"
        )
        if peer.paced:
            line += f"; it {peer.paced}, so its stream figures measure that pacing"
        if not peer.streams_long:
            line += "; not run on the 10,000-token stream (it would outlast the time limit)"
        lines.append(line + ".")
    return "\n".join(f"- {line}" for line in lines)


if __name__ == "__main__":
    raise SystemExit(main())
