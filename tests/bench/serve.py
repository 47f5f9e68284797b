"""Launcher for one benchmarked server: `python -m tests.bench.serve --app mock|bare ...`.

Both apps run on the same uvicorn settings (uvloop, httptools, one worker, no lifespan); the
mock on its own protocol layer as `serve` ships it (uvicorn's httptools protocol with an
answer's head sent with what follows it, `mockserver.connections.JoinedHttp`), the bare app on
uvicorn's own.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette


def pin(cpu: int | None) -> None:
    """Keep a process on one core, when the machine has it, so server and load never share."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return
    # The parent may itself be pinned elsewhere; a core outside the cgroup's set is refused.
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu})


def mock_app(rules: Path | None) -> Starlette:
    from mockserver.app import create_app
    from mockserver.cli import settle_heap
    from mockserver.scenario import Match, Reply, Rule
    from mockserver.settings import Settings

    # As `deepseek-mock serve` does; the tokenizer loads with the first chat request.
    app = create_app(Settings(dialect="deepseek"))
    for spec in orjson.loads(rules.read_bytes()) if rules else []:
        app.state.mock.store.space().scenario.add(
            Rule(
                name=spec["name"],
                match=Match(prompt=re.compile(spec["prompt"])),
                reply=Reply(content=spec["content"]),
            )
        )
    settle_heap()  # as `deepseek-mock serve` does before it listens
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.serve")
    parser.add_argument("--app", choices=("mock", "bare", "stamps", "proxy"), required=True)
    parser.add_argument("--upstream", help="what the proxy forwards to")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--rules", type=Path, help="canned replies for the mock (JSON)")
    parser.add_argument("--captured", type=Path, help="the mock's answers for the bare app")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here on shutdown")
    args = parser.parse_args(argv)
    pin(args.cpu)
    profiler: cProfile.Profile | None = None
    if args.profile is not None:
        profiler = cProfile.Profile()
        profiler.enable()  # before the app is built: start-up costs are part of the profile

    if args.app == "mock":
        app = mock_app(args.rules)
    elif args.app == "stamps":
        from tests.bench.proxy import stamps_app

        app = stamps_app  # type: ignore[assignment]
    elif args.app == "proxy":
        from mockserver.dialects import DIALECTS
        from mockserver.proxy import Proxy, proxy_app
        from mockserver.recorder import Forwarder

        watcher = Proxy(DIALECTS["deepseek"], args.upstream)
        app = proxy_app(watcher, Forwarder(args.upstream))  # type: ignore[assignment]
    else:
        from tests.bench.bare import create_app

        if args.captured is None:
            parser.error("--app bare needs --captured")
        app = create_app(args.captured)

    http: Any = "httptools"
    if args.app == "mock":
        from mockserver.connections import JoinedHttp  # not imported by the bare app

        http = JoinedHttp
    try:
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            lifespan="off",
            loop="uvloop",
            # The mock's own protocol layer, as `serve` ships it (an answer's head sent with what
            # follows it) without `serve`'s deadlines; the bare app runs on uvicorn's own.
            http=http,
            workers=None,
            backlog=4096,
        )  # returns after SIGINT: uvicorn shuts down cleanly, then the stats get written
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
