"""The contract suite's Anthropic checks, on their live path (`CONTRACT_DIALECT=anthropic`):
they pass against a correct server, fail against one that breaks the event order, and never
start without DEEPSEEK_API_KEY."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from mockserver import Delivery, MockServer, Rule, Settings

CONTRACT = Path(__file__).resolve().parents[1] / "contract_tests"
KEY = "sk-dummy-contract-key-7f3a"


@pytest.fixture(autouse=True)
def _outer_garbage_collected() -> None:
    """The inner run shares this process and turns warnings into errors: a socket the outer
    run left for the collector must not be blamed on (and fail) an inner test."""
    gc.collect()


@pytest.fixture
def live_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("DEEPSEEK_API_KEY", "CONTRACT_DIALECT", "CONTRACT_MODEL", "CONTRACT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONTRACT_DIALECT", "anthropic")
    return monkeypatch


def test_live_without_the_key_stops_before_sending(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    result = pytester.runpytest(str(CONTRACT), "--live")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--live needs DEEPSEEK_API_KEY (the API key of anthropic)" in result.stderr.str()


def test_live_against_a_correct_server_passes_and_runs_only_this_surface(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    live_env.setenv("DEEPSEEK_API_KEY", KEY)
    with MockServer(Settings(port=0, dialect="deepseek", api_keys=(KEY,))) as server:
        live_env.setenv("CONTRACT_BASE_URL", server.url)
        result = pytester.runpytest(str(CONTRACT), "--live")
        paths = {entry.path for entry in server.journal.entries()}
    result.assert_outcomes(passed=8, deselected=result.parseoutcomes().get("deselected", 0))
    assert paths == {"/anthropic/v1/messages"}  # no chat-completion check was sent


def test_the_suite_fails_when_the_stream_loses_message_stop(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    live_env.setenv("DEEPSEEK_API_KEY", KEY)
    with MockServer(Settings(port=0, dialect="deepseek", api_keys=(KEY,))) as server:
        server.add(Rule(name="cut", delivery=Delivery(cut_after=6)))
        live_env.setenv("CONTRACT_BASE_URL", server.url)
        result = pytester.runpytest(str(CONTRACT / "test_anthropic.py"), "--live")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1
    result.stdout.fnmatch_lines(["*FAILED*test_a_stream_is_named_events_in_order*"])


def test_a_mock_run_of_this_surface_alone(pytester: pytest.Pytester) -> None:
    """`make contract ARGS="--contract-dialect anthropic"`, as the README shows it."""
    result = pytester.runpytest(str(CONTRACT), "--contract-dialect", "anthropic")
    assert result.parseoutcomes()["passed"] == 8
    assert result.ret == pytest.ExitCode.OK
