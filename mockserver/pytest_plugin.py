"""pytest plugin: fixtures that hand a test a running deepseek-mock.

One server serves the whole session, and each test gets a namespace of it (its own rules,
journal, limits and cache; `deepseek_mock.base_url` carries it in the path), so tests never see
each other's state, in one process or under pytest-xdist. With `--deepseek-mock-url` the
session uses a server that is already running (one for all xdist workers) instead of starting
one. A test marked `@pytest.mark.deepseek_mock(...)` gets a server of its own. Settings come
from the marker first, then the command line, then `Settings`' defaults.

Loaded by every pytest run in an environment that has the package (a `pytest11` entry point),
so the OpenAI SDK, the slowest import here, waits until a client fixture asks for it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mockserver.cassette import MODES
from mockserver.dialects import DIALECTS
from mockserver.handle import DEFAULT_API_KEY, NamespacedMock, RemoteMock, namespace_for
from mockserver.server import MockServer
from mockserver.settings import Settings

if TYPE_CHECKING:
    import anthropic
    import openai

ALL_DIALECTS = "all"
Handle = MockServer | NamespacedMock | RemoteMock
MARKER = "deepseek_mock"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deepseek-mock", "deepseek-mock: a local DeepSeek API")
    group.addoption(
        "--deepseek-mock-dialect",
        default=ALL_DIALECTS,
        choices=[ALL_DIALECTS, *sorted(DIALECTS)],
        help="the dialect the session's mock speaks (default: all, every dialect on one server)",
    )
    group.addoption(
        "--deepseek-mock-era",
        default=None,
        help="the date (YYYY-MM-DD) or era name (v3.2, v4, v4.1, …) the session's mock behaves "
        "as of (default: the newest era)",
    )
    group.addoption(
        "--deepseek-mock-record-mode",
        default="none",
        choices=MODES,
        help="for tests marked with a cassette: none replays only and never reaches the "
        "network (default); once records cassettes that do not exist; new_episodes records "
        "what has no recording; all records everything again",
    )
    group.addoption(
        "--deepseek-mock-upstream",
        default=None,
        metavar="URL",
        help="where cassette tests record from (default: the provider's own base URL; the key "
        "comes from DEEPSEEK_API_KEY when the client sends the placeholder)",
    )
    group.addoption(
        "--deepseek-mock-replay-speed",
        type=float,
        default=0.0,
        help="recorded offsets are divided by this; 0 (default): as fast as possible",
    )
    group.addoption(
        "--deepseek-mock-url",
        default=os.environ.get("DEEPSEEK_MOCK_URL"),
        metavar="URL",
        help="use the deepseek-mock already serving at URL (e.g. one shared by every "
        "pytest-xdist worker) instead of starting one; each test still gets a namespace of its "
        "own there (env DEEPSEEK_MOCK_URL)",
    )
    group.addoption(
        "--deepseek-mock-seed",
        type=int,
        default=0,
        help="the seed of the session's mock: same seed, same generated answers (default: 0)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): give this test a mock server of its own, started with these "
        "mockserver.Settings fields (e.g. dialect='acedata', seed=7, era='v3.2', "
        "api_keys=('sk-a',)); "
        "strict=True also fails the test when a rule with `times` was not used up; "
        "cassette='name' replays cassettes/name.json in the test's folder (and records it "
        "with --deepseek-mock-record-mode once).",
    )


def _options(config: pytest.Config) -> dict[str, Any]:
    dialect = config.getoption("--deepseek-mock-dialect")
    return {
        "dialect": None if dialect == ALL_DIALECTS else dialect,
        "seed": config.getoption("--deepseek-mock-seed"),
        "era": config.getoption("--deepseek-mock-era"),
    }


def _marker_settings(marker: pytest.Mark) -> dict[str, Any]:
    """The marker's Settings fields, checked here so a typo names the marker, not a dataclass."""
    if marker.args:
        pytest.fail(f"@pytest.mark.{MARKER} takes keyword arguments only", pytrace=False)
    known = {field.name for field in dataclasses.fields(Settings)}
    given = {name: value for name, value in marker.kwargs.items() if name != "strict"}
    unknown = sorted(set(given) - known)
    if unknown:
        pytest.fail(
            f"@pytest.mark.{MARKER}: unknown setting(s) {', '.join(unknown)}; "
            f"Settings has: {', '.join(sorted(known))}",
            pytrace=False,
        )
    # Lists read naturally in a marker; Settings is frozen and wants tuples (and Paths).
    if "fixtures" in given:
        given["fixtures"] = tuple(Path(path) for path in given["fixtures"])
    return {
        name: tuple(value) if isinstance(value, list) else value for name, value in given.items()
    }


def _cassette_settings(request: pytest.FixtureRequest, given: dict[str, Any]) -> dict[str, Any]:
    """A cassette lives beside the test (`<test dir>/cassettes/<name>.json`); the mode, the
    upstream and the speed come from the command line unless the marker says."""
    if "cassette" not in given:
        return given
    config = request.config
    return {
        "cassettes": Path(request.node.path).parent / "cassettes",
        "record_mode": config.getoption("--deepseek-mock-record-mode"),
        "upstream": config.getoption("--deepseek-mock-upstream"),
        "replay_speed": config.getoption("--deepseek-mock-replay-speed"),
        **given,
        **({"cassettes": Path(given["cassettes"])} if "cassettes" in given else {}),
    }


def _misses(server: MockServer) -> list[str]:
    tapes = server.mock.tapes
    return [miss.message() for miss in tapes.take_misses()] if tapes is not None else []


def _settings(config: pytest.Config, overrides: Mapping[str, Any]) -> Settings:
    # Port 0 first, so a marker may still pin a port but two test runs never collide by default.
    return Settings(**{"port": 0, **_options(config), **overrides})


def _unused_rules(server: Handle) -> list[str]:
    return [
        f"{rule.name!r} was used {used} of {rule.times} times"
        for rule, used in server.scenario.usage()
        if rule.times is not None and used < rule.times
    ]


@pytest.fixture(scope="session")
def deepseek_mock_server(pytestconfig: pytest.Config) -> Iterator[MockServer]:
    """The session's mock server, settings from the command line; prefer `deepseek_mock`."""
    with MockServer(_settings(pytestconfig, {})) as server:
        yield server


@pytest.fixture
def deepseek_mock(request: pytest.FixtureRequest) -> Iterator[Handle]:
    """This test's namespace of the session's mock: its start-up rules, an empty journal, and
    forgotten after the test.

    `@pytest.mark.deepseek_mock(**settings)` gives the test a dedicated server instead.
    """
    marker = request.node.get_closest_marker(MARKER)
    overrides = _cassette_settings(request, _marker_settings(marker)) if marker else {}
    strict = bool(marker.kwargs.get("strict", False)) if marker else False
    misses: list[str] = []
    if overrides:
        with MockServer(_settings(request.config, overrides)) as server:
            yield server
            unused = _unused_rules(server) if strict else []
            misses = _misses(server)
    else:
        handle = _namespaced(request)
        handle.reset()  # a test run twice in one session starts afresh
        try:
            yield handle
            unused = _unused_rules(handle) if strict else []
        finally:
            handle.forget()
            if isinstance(handle, RemoteMock):
                handle.close()
    if misses:
        pytest.fail(
            "deepseek_mock: requests with no recording (the test got a 404 for each):\n  "
            + "\n  ".join(misses),
            pytrace=False,
        )
    if unused:
        pytest.fail(
            "strict deepseek_mock: rules not used up:\n  " + "\n  ".join(unused), pytrace=False
        )


def _namespaced(request: pytest.FixtureRequest) -> NamespacedMock | RemoteMock:
    namespace = namespace_for(request.node.nodeid)
    url = request.config.getoption("--deepseek-mock-url")
    if url:
        try:
            return RemoteMock(
                url, namespace, admin_token=os.environ.get("DEEPSEEK_MOCK_ADMIN_TOKEN")
            )
        except ConnectionError as exc:
            problem = str(exc)  # failed outside the except: one message, not a chain of two
        pytest.fail(f"--deepseek-mock-url: {problem}", pytrace=False)
    # Looked up only here, so a run whose tests all bring their own settings never starts it.
    return NamespacedMock(request.getfixturevalue("deepseek_mock_server"), namespace)


def _openai() -> Any:
    """The SDK, imported only when a client fixture is used; the mock itself does not need it."""
    try:
        import openai
    except ImportError:
        pytest.fail(
            "deepseek_client / deepseek_async_client need the openai package: "
            "pip install 'deepseek-mock[openai]' (or pip install openai)",
            pytrace=False,
        )
    return openai


def _api_key(server: Handle) -> str:
    if isinstance(server, MockServer):
        return server.settings.api_keys[0] if server.settings.api_keys else DEFAULT_API_KEY
    return server.api_key


@pytest.fixture
def deepseek_client(deepseek_mock: Handle) -> Iterator[openai.OpenAI]:
    """`openai.OpenAI` bound to `deepseek_mock`, with the SDK's own retries left on."""
    openai = _openai()

    client = openai.OpenAI(base_url=deepseek_mock.base_url, api_key=_api_key(deepseek_mock))
    with client:
        yield client


@pytest.fixture
async def deepseek_async_client(deepseek_mock: Handle) -> AsyncIterator[openai.AsyncOpenAI]:
    """`openai.AsyncOpenAI` bound to `deepseek_mock`, for tests run by anyio's or an asyncio
    plugin: it is closed on the event loop that opened its connections."""
    openai = _openai()

    client = openai.AsyncOpenAI(base_url=deepseek_mock.base_url, api_key=_api_key(deepseek_mock))
    async with client:
        yield client


def _anthropic() -> Any:
    """The `anthropic` SDK, imported only when its fixture is used."""
    try:
        import anthropic
    except ImportError:
        pytest.fail(
            "deepseek_anthropic_client needs the anthropic package: pip install anthropic",
            pytrace=False,
        )
    return anthropic


def _anthropic_url(server: Handle) -> str:
    try:
        return server.url_for("anthropic")
    except ValueError:
        pytest.fail(
            "this deepseek_mock does not serve DeepSeek's Anthropic API, which comes with the "
            "deepseek dialect (or all dialects)",
            pytrace=False,
        )


@pytest.fixture
def deepseek_anthropic_client(deepseek_mock: Handle) -> Iterator[anthropic.Anthropic]:
    """`anthropic.Anthropic` bound to DeepSeek's Anthropic API on `deepseek_mock`
    (`deepseek_mock.url_for("anthropic")`), with the SDK's own retries left on."""
    sdk = _anthropic()
    client = sdk.Anthropic(base_url=_anthropic_url(deepseek_mock), api_key=_api_key(deepseek_mock))
    with client:
        yield client


@pytest.fixture
async def deepseek_anthropic_async_client(
    deepseek_mock: Handle,
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """`anthropic.AsyncAnthropic`, the same, closed on the test's event loop."""
    sdk = _anthropic()
    client = sdk.AsyncAnthropic(
        base_url=_anthropic_url(deepseek_mock), api_key=_api_key(deepseek_mock)
    )
    async with client:
        yield client
