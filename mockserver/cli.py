"""`deepseek-mock`: serve the mock, or check a scenario file."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from mockserver import logs
from mockserver.delivery import Delivery
from mockserver.dialects import DIALECTS
from mockserver.faults import parse_fault
from mockserver.settings import Settings
from mockserver.tools import COMMANDS, add_commands, add_replay_options, replay_settings

log = logging.getLogger("mockserver")

EXAMPLES = """\
examples:
  deepseek-mock serve
      DeepSeek at http://127.0.0.1:8000, AceData at /deepseek/..., AI/ML API under /aimlapi/v1/...
  deepseek-mock serve --dialect acedata --port 9000
      AceData Cloud alone, at its exact paths
  deepseek-mock serve --fixtures flaky --seed 7
      a bundled scenario by name (flaky, slow-stream, cut-stream, every-error,
      canned-weather), or --fixtures PATH for your own file or folder
  deepseek-mock serve --fault 503x2 --gap 0.02
      two 503s, then answers streamed at one token every 20 ms
  curl -s http://127.0.0.1:8000/chat/completions -H 'Authorization: Bearer sk-test' \\
       -H 'Content-Type: application/json' \\
       -d '{"model": "deepseek-flash", "messages": [{"role": "user", "content": "Hello"}]}'
  deepseek-mock serve --era v3.2
      DeepSeek as in late 2025: deepseek-chat and deepseek-reasoner, V3.2's rules and texts
  deepseek-mock serve --workers 2 --state redis://127.0.0.1:6379/0
      two worker processes (and any other instance on that Redis) as one mock
  ANTHROPIC_BASE_URL=http://127.0.0.1:8000/anthropic claude
      Claude Code (or the anthropic SDK) on DeepSeek's Anthropic API: /anthropic/v1/messages
"""


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("deepseek-mock")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "unknown"


class _VersionAction(argparse.Action):
    """`--version`, looked up only when asked: reading the package's metadata walks every
    installed distribution, a few ms of each start-up otherwise."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog} {_version()}")
        parser.exit()


def _port(value: str) -> int:
    port = int(value) if value.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {value!r}")
    return port


def _positive(value: str) -> int:
    number = int(value) if value.isdigit() else 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {value!r}")
    return number


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds above 0 (at most 3600), got {value!r}")
    return seconds


def _rate(value: str) -> tuple[int, float]:
    count, _, seconds = value.partition("/")
    try:
        rate, window = int(count), float(seconds or 60)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected N/SECONDS such as 60/60, got {value!r}"
        ) from None
    if rate < 1 or window <= 0:
        raise argparse.ArgumentTypeError("both N and SECONDS must be positive")
    return rate, window


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples keep their layout; defaults are shown where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        empty = action.default is None or action.default is False or action.default == []
        if empty or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepseek-mock",
        allow_abbrev=False,
        description="A local mock of the DeepSeek Chat Completion API, for offline CI and "
        "contract tests: same JSON, same SSE frames, same errors, exact token usage.",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the mock server",
        description="Run the mock server (uvicorn) until Ctrl-C. No key, no network needed.",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    where = serve.add_argument_group("where it listens")
    where.add_argument(
        "--host",
        default=os.environ.get("DEEPSEEK_MOCK_HOST", "127.0.0.1"),
        help="interface to bind (env DEEPSEEK_MOCK_HOST)",
    )
    where.add_argument(
        "--port",
        type=_port,
        default=os.environ.get("DEEPSEEK_MOCK_PORT", "8000"),
        help="port to bind, 0 for any free one (env DEEPSEEK_MOCK_PORT)",
    )
    where.add_argument(
        "--dialect",
        choices=sorted(DIALECTS),
        default=None,
        help="serve one provider alone at its exact paths "
        "(default: DeepSeek at /, AceData at /deepseek, AI/ML API under --aimlapi-prefix)",
    )
    where.add_argument(
        "--aimlapi-prefix",
        default="/aimlapi",
        help="path prefix of the AI/ML API when all dialects share the server",
    )

    what = serve.add_argument_group("what it answers")
    what.add_argument(
        "--fixtures",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="scenario file or folder of *.json rules (repeatable; first match wins)",
    )
    what.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="a fault rule in a few words (repeatable; xN: only N times): an HTTP status "
        "(503, 503x2, 429:retry_after=2, 401:code=token_expired) or a delivery fault "
        "(cut_after=5, reset_after=3, stall_after=2, keep_alives=3, malformed_at=4, error_at=4, "
        "duplicate_done, empty_body, blank_body, split_writes)",
    )
    what.add_argument(
        "--era",
        default=os.environ.get("DEEPSEEK_MOCK_ERA"),
        metavar="DATE|NAME",
        help="behave as the providers did on this date (YYYY-MM-DD, UTC) or in this era: "
        "v3.2 (late 2025: deepseek-chat, deepseek-reasoner), v4 (2026-04-24: V4, legacy names "
        "as aliases), v4-legacy-retired (2026-07-24), v4.1 (2026-09-10: deepseek-flash), "
        "newest; the AI/ML API and AceData have one era each, gateway; "
        "per request: header X-Mock-Era (env DEEPSEEK_MOCK_ERA; default: the newest era)",
    )
    what.add_argument(
        "--catalog",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a model catalogue that replaces its dialect's packaged one (repeatable; "
        "format: schemas/catalog.schema.json, start from fixtures/catalog/<dialect>.json)",
    )
    what.add_argument("--seed", type=int, default=0, help="seed for generated text and jitter")
    what.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accept only these keys (repeatable; default: any non-empty key)",
    )
    what.add_argument(
        "--max-body-bytes",
        type=_positive,
        default=8 * 1024 * 1024,
        metavar="N",
        help="larger request bodies get 413",
    )

    account = serve.add_argument_group("account limits (answered with the dialect's 429 / 402)")
    account.add_argument(
        "--max-concurrent",
        type=_positive,
        default=None,
        metavar="N",
        help="chat requests in flight at once before a 429",
    )
    account.add_argument(
        "--rate-limit",
        type=_rate,
        default=None,
        metavar="N/SECONDS",
        help="requests per window before a 429 with Retry-After, e.g. 60/60 "
        "(SECONDS defaults to 60)",
    )
    account.add_argument(
        "--balance-tokens",
        type=_positive,
        default=None,
        metavar="N",
        help="tokens the account may spend; then DeepSeek 402, AI/ML 403, "
        "AceData used_up, and /user/balance says is_available false",
    )

    timing = serve.add_argument_group("timing (per request: header X-Mock-Delivery)")
    timing.add_argument(
        "--first-byte",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds before the first frame (time to first token)",
    )
    timing.add_argument(
        "--gap", type=float, default=0.0, metavar="S", help="seconds between stream chunks"
    )
    timing.add_argument(
        "--gap-sigma",
        type=float,
        default=0.0,
        metavar="SIGMA",
        help="lognormal spread of each gap around --gap (0: fixed)",
    )
    timing.add_argument(
        "--gap-cap", type=float, default=None, metavar="S", help="longest gap drawn"
    )
    timing.add_argument(
        "--tokens-per-second",
        type=float,
        default=None,
        metavar="N",
        help="pace; overrides --gap",
    )
    timing.add_argument(
        "--keep-alives",
        type=int,
        default=0,
        metavar="N",
        help="': keep-alive' lines (streams) or blank lines (JSON) before each answer, "
        "as DeepSeek sends while a request is queued",
    )
    timing.add_argument(
        "--keep-alive-interval",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds between those lines",
    )

    add_replay_options(serve)

    ops = serve.add_argument_group("operations")
    ops.add_argument(
        "--admin-token",
        default=os.environ.get("DEEPSEEK_MOCK_ADMIN_TOKEN"),
        metavar="TOKEN",
        help="require this bearer token on /__mock/ (env DEEPSEEK_MOCK_ADMIN_TOKEN)",
    )
    ops.add_argument(
        "--header-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="seconds a client has to send a request's headers (from connecting, or from the "
        "first byte of a later request on the same connection); then 408 and the socket closes",
    )
    ops.add_argument(
        "--body-timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds a client has to send a request's body once its headers are in; then 408",
    )
    ops.add_argument(
        "--max-connections",
        type=_positive,
        default=None,
        metavar="N",
        help="open connections held at once; the next one gets 503 and is closed "
        "(default: the open-file limit less 64)",
    )
    ops.add_argument(
        "--journal-size",
        type=_positive,
        default=1000,
        metavar="N",
        help="exchanges kept in the journal",
    )
    shared = serve.add_argument_group(
        "shared state (several workers and instances as one mock)",
        "Rules and their counts, the journal, the limits, the balance and the prompt cache\n"
        "live in one store. Each request may name a namespace (header X-Mock-Namespace, or\n"
        "a path under /ns/NAME/) with state of its own, so parallel tests share a server\n"
        "without seeing each other's rules.",
    )
    shared.add_argument(
        "--state",
        default=os.environ.get("DEEPSEEK_MOCK_STATE"),
        metavar="URL",
        help="where the state lives: memory (this process, the default) or "
        "redis://HOST:PORT/DB, which every worker and instance naming it shares "
        "(env DEEPSEEK_MOCK_STATE; needs the redis extra)",
    )
    shared.add_argument(
        "--workers",
        type=_positive,
        default=int(os.environ.get("DEEPSEEK_MOCK_WORKERS", "1")),
        metavar="N",
        help="worker processes on the one port; above 1 needs --state redis://… "
        "(env DEEPSEEK_MOCK_WORKERS)",
    )
    shared.add_argument(
        "--lease-seconds",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="a concurrency slot is a lease its worker renews; a dead worker's slots come "
        "back after this",
    )
    ops.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="info logs every request with its status, and the reason of every 4xx/5xx",
    )

    check = commands.add_parser(
        "check", help="validate scenario files without serving", formatter_class=_Formatter
    )
    check.add_argument("paths", nargs="+", type=Path, help="scenario files or folders")
    add_commands(commands, _Formatter)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    delivery = Delivery(
        first_byte=args.first_byte,
        gap=args.gap,
        gap_sigma=args.gap_sigma,
        gap_cap=args.gap_cap,
        tokens_per_second=args.tokens_per_second,
        keep_alives=args.keep_alives,
        keep_alive_interval=args.keep_alive_interval,
    )
    rate, window = args.rate_limit or (None, 60.0)
    return Settings(
        max_concurrent=args.max_concurrent,
        rate_limit=rate,
        rate_window=window,
        balance_tokens=args.balance_tokens,
        host=args.host,
        port=args.port,
        dialect=args.dialect,
        aimlapi_prefix=args.aimlapi_prefix,
        seed=args.seed,
        api_keys=tuple(args.api_key),
        max_body_bytes=args.max_body_bytes,
        fixtures=tuple(args.fixtures),
        era=args.era,
        catalogs=tuple(args.catalog),
        delivery=delivery,
        journal_size=args.journal_size,
        state=args.state,
        workers=args.workers,
        lease_seconds=args.lease_seconds,
        admin_token=args.admin_token,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_connections=args.max_connections,
        **replay_settings(args),
    )


def settle_heap() -> None:
    """Move everything start-up made (modules, tables, the app) out of the collector's way.

    A full garbage collection walks every object in the process, ~11 ms here, and the
    allocations of a few hundred requests trigger one; frozen start-up objects are not
    walked, which takes about a fifth off each request's cost. `serve` pauses the collector
    from its start to here, so start-up's few hundred garbage objects are frozen with the
    rest rather than looked for: a collection here would cost as much as the one it saves."""
    gc.freeze()


def serve(args: argparse.Namespace) -> int:
    # Start-up makes some 60,000 objects that all live as long as the process: collecting
    # while it runs is wasted work (~10 ms on one core). On again before the first request.
    gc.disable()
    try:
        return _serve(args)
    finally:
        gc.enable()


def _serve(args: argparse.Namespace) -> int:
    from uvicorn.supervisors import Multiprocess

    from mockserver.app import create_app
    from mockserver.connections import GRACE_SECONDS, WORKER_APP, MockUvicorn, uvicorn_config
    from mockserver.wire import install_log_filters

    logs.configure(args.log_level.upper(), "%(asctime)s %(levelname)-7s %(message)s")
    install_log_filters()
    try:
        faults = tuple(parse_fault(spec) for spec in args.fault)
        settings = dataclasses.replace(settings_from(args), rules=faults)
        if settings.workers > 1 and settings.state in (None, "memory"):
            raise ValueError(
                f"--workers {settings.workers} (or DEEPSEEK_MOCK_WORKERS) needs a shared state: "
                "each worker would keep "
                "its own rules, journal and limits, so `times` and limits would count per "
                "worker. Start Redis and add --state redis://127.0.0.1:6379/0"
            )
        app = create_app(settings)
    except ValueError as exc:
        print(f"deepseek-mock: {exc}", file=sys.stderr)
        return 2
    try:
        # Bound here, not by uvicorn, so the log can show the real port when --port is 0.
        sock = socket.create_server((settings.host, settings.port), backlog=2048)
    except OSError as exc:
        print(
            f"deepseek-mock: cannot listen on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    mock = app.state.mock
    for prefix, dialect in mock.mounts:
        log.info(
            "%-14s base_url http://%s:%d%s%s", dialect.title, host, port, prefix, dialect.sdk_path
        )
    # One line per catalogue served: a gateway answers in its own era, not in DeepSeek's.
    for name in dict.fromkeys(dialect.catalog_name or dialect.name for _, dialect in mock.mounts):
        era = mock.catalogs[name].at(mock.moment)
        log.info(
            "era: %s%s as of %s (--era to change): %s",
            "" if name == "deepseek" else f"{name} ",
            era.name,
            f"{mock.moment:%Y-%m-%d}",
            era.title,
        )
    if settings.cassettes is not None:
        log.info("cassettes: %s (record mode %s)", settings.cassettes, settings.record_mode)
        if settings.record_mode == "none" and not settings.cassettes.is_dir():
            log.warning(
                "cassettes: %s does not exist: with --record-mode none every request will be a "
                "404 no_recording (record into it first, or check the path)",
                settings.cassettes,
            )
    rules = mock.store.space().scenario.rules
    if rules:
        log.info("rules: %s", ", ".join(rule.name for rule in rules))
    log.info("admin API: http://%s:%d/__mock/ (health, journal, scenario, reset)", host, port)
    log.info("live page: http://%s:%d/__mock/ui (the journal as it happens)", host, port)
    log.info("state: %s", mock.store.describe())
    if settings.workers > 1:
        mock.store.close()  # each worker opens its own
        log.info("workers: %d processes share the port and the state", settings.workers)
        config = uvicorn_config(
            WORKER_APP,
            settings,
            log_level=args.log_level,
            workers=settings.workers,
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
        gc.enable()
        Multiprocess(config, sockets=[sock]).run()
        return 0
    settle_heap()
    gc.enable()
    # A stalled or slow stream must not hold Ctrl-C hostage: after 2 s it is cut, quietly.
    config = uvicorn_config(app, settings, log_level=args.log_level)
    try:
        MockUvicorn(config).run(sockets=[sock])
    finally:
        mock.store.close()
    return 0


def check(args: argparse.Namespace) -> int:
    from mockserver.scenario import load_rules

    failed = 0
    for path in args.paths:
        try:
            rules = load_rules(path)
        except (OSError, ValueError) as exc:
            print(exc, file=sys.stderr)  # the message starts with the file it is about
            failed += 1
        else:
            print(f"{path}: {len(rules)} rules: {', '.join(r.name for r in rules)}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "check":
        return check(args)
    if args.command in COMMANDS:
        return COMMANDS[args.command](args)
    parser.print_help()
    return 0
