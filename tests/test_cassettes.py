"""Cassettes in a user's suite (the pytest plugin) and on the command line (lint, check,
to-scenario)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import openai
import pytest

from mockserver import cli
from mockserver.cassette import load
from mockserver.dialects import DIALECTS
from mockserver.scenario import rules_from_json
from mockserver.schemas import problems
from mockserver.server import MockServer, ThreadedServer
from mockserver.settings import Settings
from mockserver.tools import record_app
from tests.test_record_replay import BODY, CHAT, KEY, STREAM, fetch

ROOT = Path(__file__).resolve().parent.parent

# The README's "record once, replay in CI" example, as a user writes it.
CASSETTE_EXAMPLE = """
import pytest


@pytest.mark.deepseek_mock(cassette="greeting")
def test_greeting(deepseek_client):
    reply = deepseek_client.chat.completions.create(
        model="deepseek-flash",
        messages=[{"role": "user", "content": "Say hello"}],
        extra_body={"thinking": {"type": "disabled"}},
    )
    assert reply.choices[0].message.content

    stream = deepseek_client.chat.completions.create(
        model="deepseek-flash",
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
"""

INI = """
[pytest]
addopts = -p no:cacheprovider
filterwarnings = error
"""


def test_a_test_records_in_one_run_and_replays_in_the_next_unchanged(
    pytester: pytest.Pytester,
) -> None:
    """Each run in its own process, as CI runs them (an in-process run would unload the HTTP
    stack other tests hold)."""
    assert CASSETTE_EXAMPLE.strip() in (ROOT / "README.md").read_text("utf-8")
    pytester.makeini(INI)
    pytester.makepyfile(test_greeting=CASSETTE_EXAMPLE)
    with MockServer(Settings(port=0, dialect="deepseek")) as upstream:
        recorded = pytester.runpytest_subprocess(
            "--deepseek-mock-record-mode=once", f"--deepseek-mock-upstream={upstream.url}"
        )
        recorded.assert_outcomes(passed=1)
        assert len(upstream.journal.entries()) == 2
    cassette = pytester.path / "cassettes" / "greeting.json"
    assert problems("cassette.schema.json", json.loads(cassette.read_text())) == []
    before = cassette.read_text()
    # The upstream is gone: the default mode (none) never needs it.
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    assert cassette.read_text() == before

    # A request the cassette does not hold: a 404 in the test, and the diff at teardown.
    pytester.makepyfile(test_greeting=CASSETTE_EXAMPLE.replace('"Say hello"', '"Say hi"', 1))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1, errors=1)
    teardown = result.stdout.str().split("ERROR at teardown", 1)[1]
    assert "requests with no recording" in teardown
    assert (
        "closest is interaction #0, which differs at: "
        '$.body.messages[0].content: recorded "Say hello", now "Say hi"'
    ) in teardown


def _record(
    tmp_path: Path,
    era: str | None = None,
    *bodies: dict[str, object],
    faults: Sequence[str | None] = (),
) -> Path:
    """Record `bodies` through a recorder in front of a mock; `faults[i]`: the X-Mock-Fault
    the upstream answers body i with."""
    with (
        MockServer(Settings(port=0, dialect="deepseek", era=era)) as upstream,
        MockServer(
            Settings(
                port=0,
                dialect="deepseek",
                cassettes=tmp_path,
                record_mode="all",
                upstream=upstream.url,
            )
        ) as rec,
    ):
        for body, fault in itertools.zip_longest(bodies, faults[: len(bodies)]):
            fetch(rec.url + CHAT, body, headers=KEY | ({"X-Mock-Fault": fault} if fault else {}))
    return tmp_path / "default.json"


def test_cassette_lint_fails_on_anything_key_shaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _record(tmp_path, None, BODY)
    assert cli.main(["cassette", "lint", str(tmp_path)]) == 0
    leaked = path.read_text().replace('"Hello"', '"my key: sk-live0123456789abcdef"')
    path.write_text(leaked)
    assert cli.main(["cassette", "lint", str(path)]) == 1
    err = capsys.readouterr().err
    assert "key-shaped text sk-liv…" in err and "0123456789abcdef" not in err


def test_cassette_check_flags_a_retired_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _record(
        tmp_path, "v3.2", BODY | {"model": "deepseek-chat"}, STREAM | {"model": "deepseek-chat"}
    )
    assert cli.main(["cassette", "check", str(path), "--era", "v3.2"]) == 0
    assert cli.main(["cassette", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "model 'deepseek-chat' is not served in era v4.1 (retired or unknown)" in err
    # A recorded answer that no longer fits the schemas is flagged as well.
    document = json.loads(path.read_text())
    event = document["interactions"][1]["response"]["events"][0]
    event["raw"] = event["raw"].replace('"object":"chat.completion.chunk"', '"object":"chunk"')
    path.write_text(json.dumps(document))
    assert cli.main(["cassette", "check", str(path), "--era", "v3.2"]) == 1
    assert "'chat.completion.chunk' was expected" in capsys.readouterr().err


def test_cassette_check_passes_what_was_recorded_broken_on_purpose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative test's cassette: a stream reset mid-way and an unknown model's 400. Both
    are what they were recorded to show; re-recording would not change them."""
    path = _record(tmp_path, None, STREAM, BODY | {"model": "nope"}, faults=["reset_after=3"])
    broken, unknown = load(path).interactions
    assert broken.ending == "reset" and unknown.status == 400
    assert cli.main(["cassette", "check", str(path)]) == 0, capsys.readouterr().err
    # Its frames are still held to the schemas.
    document = json.loads(path.read_text())
    event = document["interactions"][0]["response"]["events"][0]
    event["raw"] = event["raw"].replace('"object":"chat.completion.chunk"', '"object":"chunk"')
    path.write_text(json.dumps(document))
    assert cli.main(["cassette", "check", str(path)]) == 1
    assert "'chat.completion.chunk' was expected" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["lint", "check"])
def test_a_mistyped_or_empty_cassette_path_fails_rather_than_checking_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    missing = tmp_path / "casettes"
    assert cli.main(["cassette", command, str(missing)]) == 1
    assert f"{missing}: no such file or folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["cassette", command, str(empty)]) == 1
    assert f"{empty}: holds no cassette (*.json)" in capsys.readouterr().err
    kept = _record(tmp_path / "kept", None, BODY)
    assert cli.main(["cassette", command, str(kept.parent)]) == 0
    # One good folder does not hide a bad path beside it.
    assert cli.main(["cassette", command, str(kept.parent), str(missing)]) == 1


def test_to_scenario_of_a_missing_cassette_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rules.json"
    assert cli.main(["cassette", "to-scenario", str(tmp_path / "nope.json"), "-o", str(out)]) == 2
    assert "no such cassette file" in capsys.readouterr().err and not out.exists()


def test_cassette_to_scenario_gives_rules_that_answer_as_recorded(tmp_path: Path) -> None:
    plain = BODY | {"thinking": {"type": "disabled"}}
    path = _record(tmp_path, None, plain, STREAM | {"thinking": {"type": "disabled"}})
    out = tmp_path / "scenario.json"
    assert cli.main(["cassette", "to-scenario", str(path), "-o", str(out)]) == 0
    document = json.loads(out.read_text())
    assert problems("scenario.schema.json", document) == []
    rules = rules_from_json(document)
    assert [r.name for r in rules] == ["default #0", "default #1"]
    recorded = json.loads(
        json.loads(path.read_text())["interactions"][0]["response"]["events"][0]["raw"]
    )
    with MockServer(Settings(port=0, dialect="deepseek", rules=tuple(rules))) as server:
        got = json.loads(fetch(server.url + CHAT, plain, headers=KEY).body)
    assert got["choices"][0]["message"]["content"] == recorded["choices"][0]["message"]["content"]
    assert got["usage"]["completion_tokens"] == recorded["usage"]["completion_tokens"]


def test_the_readme_walkthrough_with_the_openai_sdk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record with the placeholder key (the recorder sends DEEPSEEK_API_KEY upstream, and it
    reaches no cassette), then replay the same client code offline."""
    real = "sk-upstream-" + "k" * 20
    monkeypatch.setenv("DEEPSEEK_API_KEY", real)

    def ask(base_url: str) -> str | None:
        with openai.OpenAI(base_url=base_url, api_key="sk-deepseek-mock", max_retries=0) as client:
            reply = client.chat.completions.create(
                model="deepseek-flash",
                messages=[{"role": "user", "content": "Say hello"}],
                extra_body={"thinking": {"type": "disabled"}},
            )
        return reply.choices[0].message.content

    folder = tmp_path / "tests" / "cassettes"
    with MockServer(Settings(port=0, dialect="deepseek", api_keys=(real,))) as upstream:
        app = record_app(upstream.url, folder, dialect=DIALECTS["deepseek"], cassette="greeting")
        with ThreadedServer(app, Settings(port=0)) as recorder:
            recorded = ask(recorder.url)
    assert recorded
    text = (folder / "greeting.json").read_text()
    assert real not in text and "k" * 20 not in text
    with MockServer(
        Settings(port=0, dialect="deepseek", cassettes=folder, cassette="greeting", replay_speed=0)
    ) as replay:
        assert ask(replay.url) == recorded


def test_make_record_live_stops_at_once_without_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DEEPSEEK_API_KEY"}
    done = subprocess.run(
        ["make", "--no-print-directory", "record-live"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "make record-live needs DEEPSEEK_API_KEY (a real key); nothing was sent" in done.stderr
    assert "pytest" not in done.stdout


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["record", "--help"], ["--upstream", "--cassettes", "--redact", "examples:"]),
        (["proxy", "--help"], ["--dialect", "--strict", "--drift-report", "/__mock/drift"]),
        (["serve", "--help"], ["--cassettes", "--record-mode", "--replay-speed", "--match-ignore"]),
        (["cassette", "--help"], ["lint", "check", "to-scenario"]),
    ],
)
def test_help_names_the_record_and_replay_options(
    command: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(command)
    assert done.value.code == 0
    out = capsys.readouterr().out
    for word in expected:
        assert word in out, word


def test_a_bad_record_mode_or_speed_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="record mode 'sometimes'"):
        MockServer(Settings(port=0, cassettes=tmp_path, record_mode="sometimes"))
    with pytest.raises(ValueError, match="replay_speed"):
        MockServer(Settings(port=0, cassettes=tmp_path, replay_speed=-1))


def test_a_broken_cassette_is_a_clear_400_not_a_500(tmp_path: Path) -> None:
    (tmp_path / "default.json").write_text("{not json")
    with MockServer(Settings(port=0, dialect="deepseek", cassettes=tmp_path)) as server:
        got = fetch(server.url + CHAT, BODY, headers=KEY)
    assert got.status == 400 and b"not a readable cassette" in got.body


def test_serve_takes_the_cassette_options() -> None:
    words = "serve --cassettes rec --cassette suite/a --record-mode new_episodes"
    words += " --replay-speed 0 --upstream http://127.0.0.1:9 --match-ignore metadata.id"
    args = cli.build_parser().parse_args(words.split())
    settings = cli.settings_from(args)
    assert (settings.cassettes, settings.cassette, settings.record_mode) == (
        Path("rec"),
        "suite/a",
        "new_episodes",
    )
    assert (settings.replay_speed, settings.upstream) == (0.0, "http://127.0.0.1:9")
    assert settings.match_ignore == ("metadata.id",)
    plain = cli.settings_from(cli.build_parser().parse_args(["serve"]))
    assert plain.cassettes is None and plain.match_ignore == ("user",)


def test_pytest_help_lists_the_cassette_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    out = result.stdout.str()
    for option in (
        "--deepseek-mock-record-mode",
        "--deepseek-mock-upstream",
        "--deepseek-mock-replay-speed",
    ):
        assert option in out
    markers = pytester.runpytest_subprocess("--markers").stdout.str()
    assert "cassette='name'" in markers


def test_to_scenario_keeps_errors_cuts_tool_calls_and_repeats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mockserver import ErrorReply, Reply, Rule, ToolCall

    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    plain = BODY | {"thinking": {"type": "disabled"}}
    with MockServer(Settings(port=0, dialect="deepseek")) as upstream:
        upstream.add(
            Rule(name="busy", reply=ErrorReply(status=503, message="Server Overloaded"), times=1),
            Rule(
                name="tool",
                reply=Reply(tool_calls=(ToolCall(name="lookup", arguments='{"q": "x"}'),)),
                times=1,
            ),
        )
        with MockServer(
            Settings(
                port=0,
                dialect="deepseek",
                cassettes=tmp_path,
                record_mode="all",
                upstream=upstream.url,
            )
        ) as rec:
            fetch(rec.url + CHAT, plain, headers=KEY)
            fetch(rec.url + CHAT, plain | {"tools": tools}, headers=KEY)
            cut = {"X-Mock-Fault": "cut_after=3", "X-Mock-Delivery": "keep_alives=1"}
            fetch(rec.url + CHAT, STREAM, headers=KEY | cut)
    assert cli.main(["cassette", "to-scenario", str(tmp_path / "default.json")]) == 0
    document = json.loads(capsys.readouterr().out)
    assert problems("scenario.schema.json", document) == []
    busy, tool, stream = document["rules"]
    assert busy["error"] == {"status": 503, "message": "Server Overloaded"}
    assert busy["times"] == 1 and tool["times"] == 1  # the same match twice: in recorded order
    assert tool["reply"]["tool_calls"] == [{"name": "lookup", "arguments": '{"q": "x"}'}]
    assert tool["reply"]["finish_reason"] == "tool_calls"
    assert stream["match"] == {"model": "deepseek-flash", "stream": True, "prompt": "^Hello$"}
    assert stream["delivery"]["cut_after"] == 3 and stream["delivery"]["keep_alives"] == 1
    assert "finish_reason" not in stream["reply"]
