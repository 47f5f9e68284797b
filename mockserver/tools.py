"""The command line of record/replay: `record`, `proxy`, `cassette lint|check|to-scenario`, and
the cassette options of `serve`."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mockserver import cassette as tape_format
from mockserver.dialects import DIALECTS, Dialect

log = logging.getLogger("mockserver")

RECORD_EXAMPLES = """\
examples:
  DEEPSEEK_API_KEY=sk-... deepseek-mock record --cassettes tests/cassettes
      forward to https://api.deepseek.com and record every exchange in
      tests/cassettes/default.json; point your client at http://127.0.0.1:8000
  deepseek-mock record --upstream http://127.0.0.1:9000 --cassettes cassettes --cassette chat
  deepseek-mock serve --cassettes tests/cassettes --replay-speed 0
      replay them, offline; a request with no recording gets a 404 naming the closest one
"""

PROXY_EXAMPLES = """\
examples:
  deepseek-mock proxy --dialect deepseek --strict
      forward to https://api.deepseek.com; drift at http://127.0.0.1:8000/__mock/drift and
      in contract-drift.json on exit; exit status 1 when anything drifted
  deepseek-mock proxy --upstream http://127.0.0.1:9000 --dialect deepseek --cassettes rec
"""


def add_replay_options(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group(
        "cassettes (replay recorded exchanges; the mock's own answers are not used)"
    )
    group.add_argument(
        "--cassettes",
        type=Path,
        default=None,
        metavar="DIR",
        help="replay the cassettes in DIR (DIR/NAME.json; a request picks one with the header "
        "X-Mock-Cassette: NAME)",
    )
    group.add_argument("--cassette", default="default", metavar="NAME", help="the default one")
    group.add_argument(
        "--record-mode",
        choices=tape_format.MODES,
        default="none",
        help="none: replay only, never the network; once: record a cassette that does not "
        "exist yet; new_episodes: record what has no recording; all: record everything again",
    )
    group.add_argument(
        "--replay-speed",
        type=float,
        default=1.0,
        metavar="F",
        help="recorded offsets are divided by F (2: twice as fast; 0: as fast as possible)",
    )
    group.add_argument(
        "--upstream",
        default=None,
        metavar="URL",
        help="where recording forwards to (default: the provider's own base URL)",
    )
    group.add_argument(
        "--match-ignore",
        action="append",
        default=None,
        metavar="FIELD",
        help="a body field matching ignores: user, metadata.trace_id, messages[].name "
        "(repeatable; default: user; given, it replaces the default)",
    )


def replay_settings(args: argparse.Namespace) -> dict[str, Any]:
    if args.cassettes is None:
        return {}
    return {
        "cassettes": args.cassettes,
        "cassette": args.cassette,
        "record_mode": args.record_mode,
        "replay_speed": args.replay_speed,
        "upstream": args.upstream,
        "match_ignore": tuple(args.match_ignore) if args.match_ignore is not None else ("user",),
    }


def _listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8000, help="port to bind, 0 for any free one")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def _redaction_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-header",
        action="append",
        default=[],
        metavar="NAME",
        help="also keep this header in cassettes (request and response; repeatable)",
    )
    parser.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="REGEX",
        help="also replace text matching REGEX with REDACTED everywhere (repeatable; sk-... "
        "keys, bearer tokens and secret query keys always are)",
    )


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    record = commands.add_parser(
        "record",
        help="forward to an upstream and record every exchange in a cassette",
        description="Forward every request to --upstream, stream each answer back as it "
        "arrives, and write each exchange to DIR/NAME.json, secrets removed.",
        epilog=RECORD_EXAMPLES,
        formatter_class=formatter,
    )
    _listen(record)
    record.add_argument(
        "--cassettes",
        type=Path,
        required=True,
        metavar="DIR",
        help="write the exchanges here, one file per cassette name (DIR/NAME.json)",
    )
    record.add_argument(
        "--cassette", default="default", metavar="NAME", help="per request: X-Mock-Cassette"
    )
    record.add_argument(
        "--dialect",
        choices=sorted(DIALECTS),
        default="deepseek",
        help="whose envelope the recorder's own errors use; its base URL is the default upstream",
    )
    record.add_argument("--upstream", default=None, metavar="URL", help="a server root")
    _redaction_options(record)

    proxy = commands.add_parser(
        "proxy",
        help="forward to an upstream unchanged and report where its answers drift",
        description="Forward everything unchanged and check each body and stream event against "
        "the dialect's schemas and the contract's stream invariants, after it has been "
        "forwarded. Drift: GET /__mock/drift, and --drift-report on exit.",
        epilog=PROXY_EXAMPLES,
        formatter_class=formatter,
    )
    _listen(proxy)
    proxy.add_argument("--dialect", choices=sorted(DIALECTS), required=True)
    proxy.add_argument("--upstream", default=None, metavar="URL", help="a server root")
    proxy.add_argument(
        "--drift-report",
        type=Path,
        default=Path("contract-drift.json"),
        metavar="PATH",
        help="written on exit, in the contract suite's format",
    )
    proxy.add_argument(
        "--strict", action="store_true", help="exit with status 1 when anything drifted"
    )
    proxy.add_argument("--cassettes", type=Path, default=None, metavar="DIR", help="also record")
    proxy.add_argument(
        "--cassette", default="default", metavar="NAME", help="per request: X-Mock-Cassette"
    )
    _redaction_options(proxy)

    tools = commands.add_parser(
        "cassette", help="lint, check or convert cassettes", formatter_class=formatter
    )
    actions = tools.add_subparsers(dest="action", metavar="ACTION", required=True)
    lint = actions.add_parser("lint", help="fail on anything key-shaped in cassettes")
    lint.add_argument("paths", nargs="+", type=Path, help="cassette files or folders")
    check = actions.add_parser(
        "check",
        help="re-validate cassettes against the schemas and the era's models",
    )
    check.add_argument("paths", nargs="+", type=Path, help="cassette files or folders")
    check.add_argument(
        "--era", default=None, metavar="DATE|NAME", help="the era to check against (newest)"
    )
    convert = actions.add_parser(
        "to-scenario", help="turn a cassette's chat completions into editable scenario rules"
    )
    convert.add_argument("path", type=Path, help="a cassette file")
    convert.add_argument("--output", "-o", type=Path, default=None, help="default: stdout")


def _redaction(args: argparse.Namespace) -> tape_format.Redaction:
    try:
        return tape_format.DEFAULT_REDACTION.with_extra(
            headers=args.keep_header, patterns=args.redact
        )
    except re.error as exc:
        raise ValueError(f"--redact: {exc}") from None


def _run(app: Any, args: argparse.Namespace) -> int:
    import socket

    from mockserver.connections import MockUvicorn, uvicorn_config
    from mockserver.settings import Settings
    from mockserver.wire import install_log_filters

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(message)s",
        datefmt="%H:%M:%S",
    )
    install_log_filters()
    settings = Settings(host=args.host, port=args.port)
    try:
        sock = socket.create_server((settings.host, settings.port), backlog=2048)
    except OSError as exc:
        print(f"deepseek-mock: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    upstream = getattr(args, "upstream", None)
    towards = f" (forwarding to {upstream})" if upstream else ""
    log.info("listening on http://%s:%d%s", args.host, sock.getsockname()[1], towards)
    MockUvicorn(uvicorn_config(app, settings, log_level=args.log_level)).run(sockets=[sock])
    return 0


def record_app(
    upstream: str,
    directory: Path,
    *,
    dialect: Dialect,
    cassette: str = "default",
    redaction: tape_format.Redaction = tape_format.DEFAULT_REDACTION,
) -> Any:
    """The recorder: a `ForwardApp` whose one observer writes each exchange to its cassette."""
    from mockserver.journal import Journal, JournalMiddleware
    from mockserver.recorder import ForwardApp, Forwarder, recording_for, upstream_key
    from mockserver.replay import CASSETTE_HEADER, Tapes

    tapes = Tapes(
        directory,
        mode="all",
        default=cassette,
        redaction=redaction,
        upstream=upstream,
        dialect=dialect.name,
    )

    def observers(scope: Any, body: bytes) -> list[Any]:
        name = dict(scope["headers"]).get(CASSETTE_HEADER.encode(), b"").decode() or None
        tape = tapes.tape(name)
        return [recording_for(scope, body, lambda i: tapes.add(tape, i), redaction)]

    forwarder = Forwarder(upstream, key=upstream_key(dialect))
    return JournalMiddleware(ForwardApp(forwarder, dialect, observers), Journal(100))


def record(args: argparse.Namespace) -> int:
    dialect = DIALECTS[args.dialect]
    upstream = args.upstream or dialect.live_base_url
    try:
        app = record_app(
            upstream,
            args.cassettes,
            dialect=dialect,
            cassette=args.cassette,
            redaction=_redaction(args),
        )
    except ValueError as exc:
        print(f"deepseek-mock: {exc}", file=sys.stderr)
        return 2
    print(f"recording {upstream} into {args.cassettes}/", file=sys.stderr)
    return _run(app, args)


def proxy(args: argparse.Namespace) -> int:
    from mockserver.journal import Journal, JournalMiddleware
    from mockserver.proxy import Proxy, proxy_app
    from mockserver.recorder import Forwarder, upstream_key
    from mockserver.replay import Tapes

    dialect = DIALECTS[args.dialect]
    upstream = args.upstream or dialect.live_base_url
    try:
        redaction = _redaction(args)
    except ValueError as exc:
        print(f"deepseek-mock: {exc}", file=sys.stderr)
        return 2
    tapes = None
    if args.cassettes is not None:
        tapes = Tapes(
            args.cassettes,
            mode="all",
            default=args.cassette,
            redaction=redaction,
            upstream=upstream,
            dialect=dialect.name,
        )
    watcher = Proxy(dialect, upstream)
    app = proxy_app(watcher, Forwarder(upstream, key=upstream_key(dialect)), tapes)
    status = _run(JournalMiddleware(app, Journal(100)), args)
    report = watcher.report()
    args.drift_report.parent.mkdir(parents=True, exist_ok=True)
    args.drift_report.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    for line in watcher.drift.summary():
        print(line, file=sys.stderr)
    print(f"drift report: {args.drift_report}", file=sys.stderr)
    if status == 0 and args.strict and watcher.drift.drifted:
        return 1
    return status


def cassette_files(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """The cassettes the given files and folders hold, and what is wrong with the paths: one
    that does not exist, or a folder with no cassette in it, is a finding, so that a mistyped
    path in CI fails rather than checking nothing."""
    found: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if not path.exists():
            problems.append(f"{path}: no such file or folder")
            continue
        held = list(tape_format.files([path]))
        if not held:
            problems.append(f"{path}: holds no cassette (*.json)")
        found += held
    return found, problems


def lint(args: argparse.Namespace) -> int:
    paths, found = cassette_files(args.paths)
    count = 0
    for path in paths:
        count += 1
        try:
            found += tape_format.lint(path)
        except (OSError, UnicodeDecodeError) as exc:
            found.append(f"{path}: {exc}")
    for line in found:
        print(line, file=sys.stderr)
    print(f"{count} cassette(s), {len(found)} finding(s)")
    return 1 if found else 0


def check_cassette(path: Path, era_choice: str | None) -> list[str]:
    """What no longer fits: the schema of the file, each recorded answer against the current
    schemas and invariants, and each request's model against the era's catalogue."""
    from mockserver.catalog import era_moment, packaged
    from mockserver.proxy import Proxy

    try:
        tape = tape_format.load(path)
    except ValueError as exc:
        return [str(exc)]
    dialect = DIALECTS[tape.dialect or "deepseek"]
    catalogs = [packaged(name) for name in DIALECTS]
    try:
        era = packaged(dialect.name).at(era_moment(era_choice, catalogs))
    except ValueError as exc:
        return [f"--era: {exc}"]
    found: list[str] = []
    watcher = Proxy(dialect, tape.upstream)
    for i, interaction in enumerate(tape.interactions):
        body = interaction.request.get("json")
        model = body.get("model") if isinstance(body, dict) else None
        # A refusal was recorded on purpose (an unknown model's 400 is what it shows).
        if isinstance(model, str) and model not in era.models and interaction.status < 400:
            found.append(
                f"{path} #{i}: model {model!r} is not served in era {era.name} "
                f"(retired or unknown); re-record it"
            )
        scope = {"method": interaction.request["method"], "path": interaction.request["path"]}
        (watch,) = watcher.observers_for(None)(scope, json.dumps(body).encode() if body else b"")
        headers = list(interaction.headers.items())
        watch.head(interaction.status, headers, interaction.head_ms)
        for event in interaction.events:
            watch.chunk(event.raw, event.t_ms)
        # A stream recorded broken (reset) is held to the schemas frame by frame, not to an
        # ending it never had: that is what it was recorded to show.
        watch.end("client_left" if interaction.ending == "reset" else interaction.ending, 0.0)
    report = watcher.report()
    for item in report["undeclared_fields"]:
        found.append(f"{path}: {item['schema']} does not declare {item['path']}")
    for item in report["missing_required_fields"]:
        found.append(f"{path}: {item['schema']} requires {item['path']}, which is missing")
    for item in report["problems"]:
        found.append(f"{path}: {item['where']}: {item['problem']}")
    for item in report["status_differences"]:
        problems = "; ".join(item["envelope_problems"][:2])
        found.append(f"{path}: {item['case']} {item['status']}: the error envelope: {problems}")
    return found


def check(args: argparse.Namespace) -> int:
    paths, found = cassette_files(args.paths)
    count = 0
    for path in paths:
        count += 1
        found += check_cassette(path, args.era)
    for line in found:
        print(line, file=sys.stderr)
    print(f"{count} cassette(s), {len(found)} finding(s)")
    return 1 if found else 0


def to_scenario(args: argparse.Namespace) -> int:
    from mockserver.scenario_export import scenario_from

    if not args.path.is_file():
        # `load` takes a missing file for an empty cassette (recording starts that way).
        print(f"deepseek-mock: {args.path}: no such cassette file", file=sys.stderr)
        return 2
    try:
        document = scenario_from(tape_format.load(args.path))
    except ValueError as exc:
        print(f"deepseek-mock: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"{args.output}: {len(document['rules'])} rules", file=sys.stderr)
    return 0


def cassette(args: argparse.Namespace) -> int:
    actions: dict[str, Callable[[argparse.Namespace], int]] = {
        "lint": lint,
        "check": check,
        "to-scenario": to_scenario,
    }
    return actions[args.action](args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "record": record,
    "proxy": proxy,
    "cassette": cassette,
}
