"""The peers' canned-reply fixtures and installs (the benchmark's pure parts; no peer runs)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.bench import peers
from tests.bench.peers import PEERS, Peer, aimock_fixture, fakellm_config, llmock_scenario
from tests.bench.workload import (
    LONG_REPLY_TOKENS,
    SHORT_REPLY_TOKENS,
    Texts,
    build_texts,
    long_body,
    short_body,
)


@pytest.fixture(scope="module")
def texts() -> Texts:
    return build_texts()


def last_user_text(body: bytes) -> str:
    content: str = orjson.loads(body)["messages"][-1]["content"]
    return content


def first_match(rules: list[dict[str, Any]], needle_of: Any, text: str) -> dict[str, Any]:
    """The first rule whose substring occurs in the text, as aimock and fakellm pick."""
    return next(rule for rule in rules if needle_of(rule) in text)


def test_aimock_answers_each_prompt_with_its_reply(texts: Texts) -> None:
    rules = aimock_fixture(texts)["fixtures"]

    def needle(rule: dict[str, Any]) -> str:
        return str(rule["match"]["userMessage"])

    long = first_match(rules, needle, last_user_text(long_body(texts)))
    short = first_match(rules, needle, last_user_text(short_body(texts, stream=False)))
    assert long["response"]["content"] == texts.long_reply
    assert short["response"]["content"] == texts.short_reply


@pytest.mark.parametrize("which", ["short", "long"])
def test_aimock_streams_about_one_event_per_token(texts: Texts, which: str) -> None:
    index, reply, tokens = (
        (1, texts.short_reply, SHORT_REPLY_TOKENS)
        if which == "short"
        else (0, texts.long_reply, LONG_REPLY_TOKENS)
    )
    size = aimock_fixture(texts)["fixtures"][index]["chunkSize"]
    chunks = math.ceil(len(reply) / size)
    assert abs(chunks - tokens) <= tokens * 0.1, (size, chunks)


def test_fakellm_config_is_json_and_matches_like_fakellm(texts: Texts) -> None:
    config = orjson.loads(orjson.dumps(fakellm_config(texts)))  # the file fakellm reads
    assert config["version"] == 1

    def needle(rule: dict[str, Any]) -> str:
        return str(rule["when"]["messages_contain"]).lower()

    long = first_match(config["rules"], needle, last_user_text(long_body(texts)).lower())
    short = first_match(
        config["rules"], needle, last_user_text(short_body(texts, stream=True)).lower()
    )
    assert long["respond"]["content"] == texts.long_reply
    assert short["respond"]["content"] == texts.short_reply


def test_llmock_reply_stays_until_cleared() -> None:
    document = orjson.loads(orjson.dumps(llmock_scenario("the reply")))
    assert document == {"behaviors": [{"type": "reply", "text": "the reply", "times": None}]}


@pytest.mark.parametrize("peer", PEERS, ids=lambda p: p.name)
def test_every_peer_listens_on_loopback_only(peer: Peer, texts: Texts, tmp_path: Path) -> None:
    command = peer.command(tmp_path / "cache", tmp_path, texts, 4321)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "4321"
    for name, value in peer.env(tmp_path, texts).items():
        assert name == "FAKELLM_CONFIG" and Path(value).is_file()


def test_a_failed_install_is_one_line_and_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def refused(command: list[str], **_: object) -> subprocess.CompletedProcess[bytes]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, b"", b"Looking\nERROR: no network\n")

    monkeypatch.setattr(subprocess, "run", refused)
    peer = next(p for p in PEERS if p.registry == "pypi")
    reason = peer.install(tmp_path)
    assert reason == f"{peer.package}=={peer.version} did not install: ERROR: no network"
    assert not (peer.home(tmp_path) / peers.INSTALLED).exists()
    assert len(calls) == 1  # the venv step failed: pip is not run


def test_an_installed_peer_is_not_installed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_: object, **__: object) -> None:
        raise AssertionError("ran an install")

    monkeypatch.setattr(subprocess, "run", never)
    for peer in PEERS:
        peer.home(tmp_path).mkdir(parents=True)
        (peer.home(tmp_path) / peers.INSTALLED).write_text("done\n")
    lines: list[str] = []
    assert peers.ready(tmp_path, lines.append) == list(PEERS)
    assert lines == []


def test_ready_skips_a_peer_with_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def install(self: Peer, cache: Path) -> str | None:
        return "the npm registry cannot be reached" if self.registry == "npm" else None

    monkeypatch.setattr(Peer, "install", install)
    lines: list[str] = []
    usable = peers.ready(tmp_path, lines.append)
    assert [p.registry for p in usable] == ["pypi", "pypi"]
    assert [line for line in lines if "skipped" in line] == [
        "peer aimock skipped: the npm registry cannot be reached"
    ]


def test_make_bench_peers_parses_and_its_cache_is_git_ignored() -> None:
    from tests.bench.__main__ import CACHE, build_parser
    from tests.bench.procs import ROOT

    args = build_parser().parse_args(["--quick", "--peers"])
    assert args.quick and args.peers
    assert CACHE.parent == ROOT
    assert f"{CACHE.name}/" in (ROOT / ".gitignore").read_text().splitlines()
