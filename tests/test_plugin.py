"""The pytest plugin, used the way a user's suite uses it: test files run by an inner pytest.

The inner runs are in-process (each costs milliseconds, a subprocess about a second) and treat
warnings as errors, so an unclosed client or a leaked server fails them too.
"""

from __future__ import annotations

import subprocess
import sys

import openai  # noqa: F401  # kept loaded: in-process runs unload what they import (~0.6 s each)
import pytest

from mockserver.server import MockServer

INI = """
[pytest]
addopts = --strict-markers
filterwarnings = error
"""

# The code under test in the examples: an app that asks one question through any OpenAI client.
MY_APP = """
import openai


def ask(client: openai.OpenAI, question: str) -> str:
    reply = client.chat.completions.create(
        model="deepseek-flash", messages=[{"role": "user", "content": question}]
    )
    return reply.choices[0].message.content or ""


async def ask_async(client: openai.AsyncOpenAI, question: str) -> str:
    reply = await client.chat.completions.create(
        model="deepseek-flash", messages=[{"role": "user", "content": question}]
    )
    return reply.choices[0].message.content or ""
"""

RETRY_EXAMPLE = """
import pytest

from mockserver.server import MockServer

import my_app
from mockserver import ErrorReply, Reply, Rule

# retry_after_ms=1: the SDK waits what the server says (1 ms), not its own ~0.5-1 s backoff.
OVERLOADED = Rule(name="overloaded", reply=ErrorReply(status=503, retry_after_ms=1), times=2)
ANSWER = Rule(name="answer", reply=Reply(content="Hello from the mock"))


def test_my_app_retries(deepseek_mock, deepseek_client):
    deepseek_mock.add(OVERLOADED, ANSWER)

    answer = my_app.ask(deepseek_client, "hi")

    assert [e.status for e in deepseek_mock.journal.entries()] == [503, 503, 200]
    assert answer == "Hello from the mock"


@pytest.mark.anyio
async def test_my_app_retries_async(deepseek_mock, deepseek_async_client):
    deepseek_mock.add(OVERLOADED, ANSWER)

    answer = await my_app.ask_async(deepseek_async_client, "hi")

    assert [e.status for e in deepseek_mock.journal.entries()] == [503, 503, 200]
    assert answer == "Hello from the mock"
"""

JOURNAL_EXAMPLE = """
def test_my_app_sends_the_question(deepseek_mock, deepseek_client):
    deepseek_client.chat.completions.create(
        model="deepseek-flash", messages=[{"role": "user", "content": "What is 2+2?"}]
    )

    (entry,) = deepseek_mock.journal.entries()
    assert (entry.method, entry.path, entry.status) == ("POST", "/chat/completions", 200)
    assert entry.json["messages"][-1]["content"] == "What is 2+2?"
    assert entry.headers["authorization"] == "…mock"  # keys are never recorded whole
"""

MARKER_EXAMPLE = """
import openai
import pytest

from mockserver.server import MockServer


@pytest.mark.deepseek_mock(dialect="acedata", api_keys=["sk-right-key-123"])
def test_a_wrong_key_is_refused(deepseek_mock, deepseek_client):
    assert deepseek_mock.base_url.endswith("/deepseek")  # AceData's OpenAI-compatible root
    deepseek_client.chat.completions.create(  # the fixture's client uses the first key
        model="deepseek-v3", messages=[{"role": "user", "content": "hi"}]
    )
    with openai.OpenAI(base_url=deepseek_mock.base_url, api_key="sk-wrong-key-456") as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(
                model="deepseek-v3", messages=[{"role": "user", "content": "hi"}]
            )
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: strict markers, warnings as errors, and a small app to test."""
    pytester.makeini(INI)
    pytester.makepyfile(my_app=MY_APP)
    return pytester


def test_the_retry_example_passes_with_sync_and_async_clients(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_retry=RETRY_EXAMPLE)
    result = suite.runpytest()
    result.assert_outcomes(passed=2)


def test_the_retry_example_fails_when_the_app_does_not_retry(suite: pytest.Pytester) -> None:
    # The same test against an app with retries off must fail: the example really checks retries.
    suite.makepyfile(
        test_no_retry="""
        import openai
        import pytest
        from mockserver import ErrorReply, Rule

        def test_my_app_retries(deepseek_mock, deepseek_client):
            deepseek_mock.add(Rule(name="overloaded", reply=ErrorReply(status=503), times=2))
            with pytest.raises(openai.InternalServerError):
                deepseek_client.with_options(max_retries=0).chat.completions.create(
                    model="deepseek-flash", messages=[{"role": "user", "content": "hi"}]
                )
            assert [e.status for e in deepseek_mock.journal.entries()] == [503, 503, 200]
        """
    )
    result = suite.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert [[]503[]] == [[]503, 503, 200[]]*"])


def test_the_journal_shows_what_the_client_sent(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_journal=JOURNAL_EXAMPLE)
    result = suite.runpytest()
    result.assert_outcomes(passed=1)


def test_the_marker_gives_a_dedicated_server(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_marker=MARKER_EXAMPLE
        + """

@pytest.mark.deepseek_mock(seed=7)
def test_dedicated_is_not_the_session_server(deepseek_mock, request):
    session = request.getfixturevalue("deepseek_mock_server")
    assert deepseek_mock is not session
    assert deepseek_mock.settings.seed == 7 and session.settings.seed == 0


def test_unmarked_gets_a_namespace_of_the_session_server(deepseek_mock, deepseek_mock_server):
    assert deepseek_mock.server is deepseek_mock_server
    assert deepseek_mock.settings.dialect is None and deepseek_mock.settings.api_keys == ()
    assert deepseek_mock.base_url == (
        deepseek_mock_server.url + "/ns/" + deepseek_mock.namespace
    )
    assert "test_unmarked_gets_a_namespace" in deepseek_mock.namespace


class TestAimlapi:
    pytestmark = pytest.mark.deepseek_mock(dialect="aimlapi")

    def test_a_class_marker_applies(self, deepseek_mock):
        assert deepseek_mock.settings.dialect == "aimlapi"
"""
    )
    result = suite.runpytest()
    result.assert_outcomes(passed=4)


def test_each_test_starts_from_a_reset_server(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_reset="""
        from mockserver import Reply, Rule

        def test_first(deepseek_mock, deepseek_client):
            deepseek_mock.add(Rule(name="canned", reply=Reply(content="canned")))
            reply = deepseek_client.chat.completions.create(
                model="deepseek-flash", messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content == "canned"

        def test_second(deepseek_mock, deepseek_client):
            assert deepseek_mock.journal.entries() == []
            assert "canned" not in deepseek_mock.scenario.uses()
            reply = deepseek_client.chat.completions.create(
                model="deepseek-flash", messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content != "canned"
            assert [e.rule for e in deepseek_mock.journal.entries()] == ["generated"]
        """
    )
    result = suite.runpytest()
    result.assert_outcomes(passed=2)


CLI_CHECK = """
import pytest

from mockserver.server import MockServer

def test_session_server(deepseek_mock):
    assert deepseek_mock.settings.dialect == "aimlapi"
    assert deepseek_mock.settings.seed == 42
    assert deepseek_mock.base_url == deepseek_mock.url + "/v1"

@pytest.mark.deepseek_mock(dialect="acedata")
def test_marker_beats_the_option(deepseek_mock):
    assert deepseek_mock.settings.dialect == "acedata"
    assert deepseek_mock.settings.seed == 42  # not in the marker: the option still applies
"""


def test_the_command_line_options_configure_the_session_server(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_cli=CLI_CHECK)
    result = suite.runpytest("--deepseek-mock-dialect=aimlapi", "--deepseek-mock-seed=42")
    result.assert_outcomes(passed=2)


def test_without_options_the_session_server_speaks_every_dialect(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(
        test_all="""
        def test_session_server(deepseek_mock):
            assert deepseek_mock.settings.dialect is None and deepseek_mock.settings.seed == 0
            assert deepseek_mock.base_url == deepseek_mock.url
            assert deepseek_mock.url_for("aimlapi") == deepseek_mock.url + "/aimlapi/v1"
            assert deepseek_mock.url_for("acedata") == deepseek_mock.url + "/deepseek"
        """
    )
    result = suite.runpytest()
    result.assert_outcomes(passed=1)


def test_an_unknown_dialect_is_refused_with_the_choices(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--deepseek-mock-dialect=openai")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid choice: 'openai'*acedata*aimlapi*deepseek*"])


STRICT = """
import openai
import pytest

from mockserver.server import MockServer

import my_app
from mockserver import ErrorReply, Rule

OVERLOADED = Rule(name="overloaded", reply=ErrorReply(status=503, retry_after_ms=1), times=2)

@pytest.mark.deepseek_mock(strict=True)
def test_retries_used_up(deepseek_mock, deepseek_client):
    deepseek_mock.add(OVERLOADED)
    my_app.ask(deepseek_client, "hi")

@pytest.mark.deepseek_mock(strict=True)
def test_never_retried(deepseek_mock, deepseek_client, deepseek_mock_server):
    assert deepseek_mock.server is deepseek_mock_server  # strict alone needs no server of its own
    deepseek_mock.add(OVERLOADED)
    with pytest.raises(openai.InternalServerError):
        my_app.ask(deepseek_client.with_options(max_retries=0), "hi")

@pytest.mark.deepseek_mock(strict=True, dialect="deepseek")
def test_never_called_on_a_dedicated_server(deepseek_mock):
    deepseek_mock.add(OVERLOADED)

def test_not_strict(deepseek_mock):
    deepseek_mock.add(OVERLOADED)
"""


def test_strict_mode_fails_a_test_whose_counted_rules_were_not_used_up(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(test_strict=STRICT)
    result = suite.runpytest()
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_never_retried*",
            "*'overloaded' was used 1 of 2 times*",
            "*ERROR at teardown of test_never_called_on_a_dedicated_server*",
            "*'overloaded' was used 0 of 2 times*",
        ]
    )


def test_a_misspelt_marker_setting_names_the_valid_ones(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_typo="""
        import pytest

        @pytest.mark.deepseek_mock(dialekt="acedata")
        def test_typo(deepseek_mock):
            pass
        """
    )
    result = suite.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown setting(s) dialekt; Settings has: *api_keys*dialect*"])


def test_the_options_and_the_marker_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "deepseek-mock: a local DeepSeek API:",
            "*--deepseek-mock-dialect=*",
            "*--deepseek-mock-seed=*",
        ]
    )
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.deepseek_mock(**settings): *"])


def test_loading_the_plugin_does_not_import_the_sdk() -> None:
    # Every pytest run in the environment loads the plugin; only its fixtures may need openai.
    code = "import sys, mockserver.pytest_plugin; sys.exit('openai' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


XDIST_SUITE = """
import openai
import pytest

from mockserver.server import MockServer
from mockserver import ErrorReply, Reply, Rule


@pytest.mark.parametrize("n", range(12))
def test_each_sees_only_its_own(deepseek_mock, deepseek_client, n):
    deepseek_mock.add(
        Rule(name=f"mine {n}", reply=Reply(content=f"for test {n}"), times=1),
        Rule(name="then down", reply=ErrorReply(status=503)),
    )
    reply = deepseek_client.chat.completions.create(
        model="deepseek-flash", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == f"for test {n}"
    # A client built by hand from base_url is in the same namespace, without a header.
    with openai.OpenAI(base_url=deepseek_mock.base_url, api_key="sk-x", max_retries=0) as own:
        with pytest.raises(openai.InternalServerError):
            own.chat.completions.create(
                model="deepseek-flash", messages=[{"role": "user", "content": "hi"}]
            )
    entries = deepseek_mock.journal.wait_for(2, timeout=5)
    assert [e.status for e in entries] == [200, 503]
    used = {name: n for name, n in deepseek_mock.scenario.uses().items() if n}
    assert used == {f"mine {n}": 1, "then down": 1}
"""


def test_xdist_workers_share_one_running_server(suite: pytest.Pytester) -> None:
    """`pytest -n 2 --deepseek-mock-url …`: two worker processes, one server, a namespace per
    test; every test sees its own rules and journal only, and the default namespace stays
    untouched."""
    suite.makepyfile(test_shared=XDIST_SUITE)
    with MockServer() as shared:
        result = suite.runpytest_subprocess("-n", "2", f"--deepseek-mock-url={shared.url}")
        result.assert_outcomes(passed=12)
        assert "2 workers" in result.stdout.str()
        assert shared.journal.entries() == []  # nothing leaked into the default namespace
        assert shared.mock.store.namespaces() == ["default"]  # each test's was forgotten


def test_a_shared_url_nobody_serves_fails_the_test_at_once(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_shared="def test_x(deepseek_mock):\n    pass\n")
    result = suite.runpytest("--deepseek-mock-url=http://127.0.0.1:1")
    result.assert_outcomes(errors=1)
    assert "no deepseek-mock answers at http://127.0.0.1:1" in result.stdout.str()


def test_a_shared_url_with_a_path_is_refused_at_once(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_shared="def test_x(deepseek_mock):\n    pass\n")
    with MockServer() as shared:
        result = suite.runpytest(f"--deepseek-mock-url={shared.url}/ns/foo")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "give the server's root URL" in out and "During handling" not in out
