"""Options, targets and the drift report of the contract suite.

Without `--live` the suite starts one mock per selected dialect on 127.0.0.1 (its provider's
exact paths, a single accepted key) and checks it. With `--live` it checks the providers
themselves: each dialect's key comes from its variable (DEEPSEEK_API_KEY, AIMLAPI_API_KEY,
ACEDATA_API_TOKEN), CONTRACT_BASE_URL replaces the provider's URL, CONTRACT_MAX_REQUESTS caps
the requests sent per dialect (default 40) and CONTRACT_EXAMPLES sizes the property tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract_tests.target import (
    CONTRACT_DIALECTS,
    DEFAULT_EXAMPLES,
    DEFAULT_LIVE_BUDGET,
    MOCK_KEY,
    SURFACES,
    Budget,
    Target,
    check_base_url,
    check_models,
    live_target,
    missing_keys,
    mock_target,
    positive_int,
    select_dialects,
)
from contract_tests.wire import ApiClient
from mockserver.drift import Drift
from mockserver.server import MockServer
from mockserver.settings import Settings

DEFAULT_REPORT = "contract-drift.json"
MOCK_TIMEOUT, LIVE_TIMEOUT = 30.0, 120.0  # live: DeepSeek may hold a request in its queue


@dataclass(frozen=True, slots=True)
class Run:
    live: bool
    dialects: tuple[str, ...]
    examples: int
    report: Path | None

    @property
    def mode(self) -> str:
        return "live" if self.live else "mock"


RUN = pytest.StashKey[Run]()
DRIFT = pytest.StashKey[Drift]()
BUDGET = pytest.StashKey[Budget]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contract", "deepseek-mock contract suite (contract_tests/)")
    group.addoption(
        "--live",
        action="store_true",
        default=False,
        help="check the real endpoint of each selected dialect instead of a local mock; needs "
        "its key variable, CONTRACT_BASE_URL overrides the URL",
    )
    group.addoption(
        "--contract-dialect",
        action="append",
        default=[],
        metavar="NAME",
        help="dialect to check: deepseek, aimlapi, acedata or all (repeatable). Default: all "
        "against the mock; with --live $CONTRACT_DIALECT, else deepseek",
    )
    group.addoption(
        "--drift-report",
        default=None,
        metavar="PATH",
        help=f"write the drift report (JSON) here; live runs default to {DEFAULT_REPORT}",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{APPLIES}(predicate): run this check only for dialects where predicate(dialect)",
    )
    env = os.environ
    live = bool(config.getoption("--live"))
    dialects = select_dialects(config.getoption("--contract-dialect"), live=live, env=env)
    if live and not config.getoption("help", False):
        missing = missing_keys(dialects, env)
        if missing:
            # Before collection, so nothing has been sent; only variable names are printed.
            raise pytest.UsageError(
                f"--live needs {' and '.join(missing)} (the API key of "
                f"{', '.join(d for d in dialects if CONTRACT_DIALECTS[d].key_env in missing)}); "
                "set it in the environment. Nothing was sent."
            )
        check_base_url(env.get("CONTRACT_BASE_URL", ""))
        check_models(dialects, env)
    report = config.getoption("--drift-report") or (DEFAULT_REPORT if live else None)
    config.stash[RUN] = Run(
        live=live,
        dialects=tuple(dialects),
        examples=positive_int(
            env, "CONTRACT_EXAMPLES", DEFAULT_EXAMPLES["live" if live else "mock"]
        ),
        report=config.invocation_params.dir / report if report else None,
    )
    per_dialect = positive_int(env, "CONTRACT_MAX_REQUESTS", DEFAULT_LIVE_BUDGET) if live else None
    config.stash[BUDGET] = Budget(per_dialect, len(dialects))
    config.stash[DRIFT] = Drift()


APPLIES = "applies_to"
WIRE = {name: name for name in SURFACES}  # a surface's own name is its wire format


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A check that a dialect has nothing to check against (no `n`, no balance endpoint) is
    deselected for it, not skipped: a skip would read as a check that did not run."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker(APPLIES)
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("target") if callspec is not None else None
        dialect = CONTRACT_DIALECTS[name] if name is not None else None
        applies = marker is None or dialect is None or bool(marker.args[0](dialect))
        # Each test module checks one wire format: chat completions unless it says `WIRE`.
        wire = getattr(getattr(item, "module", None), "WIRE", "chat")
        applies = applies and (name is None or wire == WIRE.get(name, "chat"))
        (keep if applies else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        run = metafunc.config.stash[RUN]
        metafunc.parametrize(
            "target",
            run.dialects,
            indirect=True,
            scope="session",
            ids=[f"{run.mode}-{name}" for name in run.dialects],
        )


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The endpoint under test, one per selected dialect."""
    run = request.config.stash[RUN]
    dialect: str = request.param
    if run.live:
        yield live_target(dialect, os.environ)
        return
    # A surface is served by the dialect whose catalogue it answers in.
    served_by = CONTRACT_DIALECTS[dialect].catalog_name or dialect
    settings = Settings(port=0, dialect=served_by, api_keys=(MOCK_KEY,))
    with MockServer(settings) as server:
        yield mock_target(dialect, server.url)


@pytest.fixture(scope="session")
def api(target: Target, pytestconfig: pytest.Config) -> Iterator[ApiClient]:
    run = pytestconfig.stash[RUN]
    client = ApiClient(
        target,
        pytestconfig.stash[BUDGET],
        pytestconfig.stash[DRIFT],
        timeout=LIVE_TIMEOUT if run.live else MOCK_TIMEOUT,
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def examples(pytestconfig: pytest.Config) -> int:
    """How many generated requests each property test sends (CONTRACT_EXAMPLES)."""
    return pytestconfig.stash[RUN].examples


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if RUN not in config.stash:
        return
    report = config.stash[RUN].report
    if report is not None:
        config.stash[DRIFT].write(report, config.stash[BUDGET].spent)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if RUN not in config.stash:
        return
    run, drift, budget = config.stash[RUN], config.stash[DRIFT], config.stash[BUDGET]
    if not drift.targets and not run.live:
        return  # no contract test ran: nothing to say
    terminalreporter.section("contract drift")
    for line in drift.summary():
        terminalreporter.write_line(line)
    spent = f"{budget.spent} request(s) sent"
    if budget.limit is not None:
        spent += f" of a budget of {budget.limit}"
        if budget.dialects > 1:
            spent += f" ({budget.per_dialect} per dialect)"
        if budget.refused:
            spent += f"; {budget.refused} refused: raise CONTRACT_MAX_REQUESTS to send them"
    terminalreporter.write_line(spent)
    if run.report is not None:
        terminalreporter.write_line(f"drift report: {run.report}")
