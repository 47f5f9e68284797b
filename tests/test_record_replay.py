"""Record from another deepseek-mock, stop it, replay: the same bytes, frame for frame."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from mockserver import ErrorReply, Reply, Rule
from mockserver.cassette import Framer, differences, load
from mockserver.schemas import problems
from mockserver.server import MockServer
from mockserver.settings import Settings

CHAT = "/chat/completions"
PROMPT: list[Any] = [{"role": "user", "content": "Hello"}]
BODY: dict[str, Any] = {"model": "deepseek-flash", "messages": PROMPT, "max_tokens": 6}
STREAM: dict[str, Any] = BODY | {"stream": True}


@dataclass(frozen=True)
class Got:
    status: int
    headers: dict[str, str]
    body: bytes
    reset: bool
    arrivals: list[tuple[float, bytes]]  # (ms since the request was sent, piece)


def fetch(
    url: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> Got:
    pieces: list[tuple[float, bytes]] = []
    reset = False
    with httpx.Client(timeout=10) as client:
        started = time.perf_counter()
        with client.stream(method, url, json=body, headers=headers or {}) as response:
            try:
                for piece in response.iter_raw():
                    pieces.append(((time.perf_counter() - started) * 1000, piece))
            except httpx.RemoteProtocolError:
                reset = True
            return Got(
                response.status_code,
                dict(response.headers),
                b"".join(p for _, p in pieces),
                reset,
                pieces,
            )


KEY = {"Authorization": "Bearer sk-test-record"}


@pytest.fixture
def upstream() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, dialect="deepseek")) as server:
        yield server


def recorder(upstream: MockServer, folder: Path, **settings: Any) -> MockServer:
    return MockServer(
        Settings(
            port=0,
            dialect="deepseek",
            cassettes=folder,
            record_mode=settings.pop("record_mode", "all"),
            upstream=upstream.url,
            **settings,
        )
    )


def replayer(folder: Path, **settings: Any) -> MockServer:
    return MockServer(Settings(port=0, dialect="deepseek", cassettes=folder, **settings))


# Every sort of answer an upstream gives: a paced stream behind keep-alives, JSON behind blank
# lines, documented errors, a stream cut cleanly, one whose connection breaks, a GET.
EXCHANGES: list[tuple[str, str, Any, dict[str, str]]] = [
    ("stream", CHAT, STREAM, {"X-Mock-Delivery": "keep_alives=2, gap=0.005"}),
    ("json", CHAT, BODY | {"max_tokens": 4}, {"X-Mock-Delivery": "keep_alives=2"}),
    ("503", CHAT, BODY | {"max_tokens": 5}, {"X-Mock-Fault": "503"}),
    ("429", CHAT, BODY | {"max_tokens": 7}, {"X-Mock-Fault": "429:retry_after=2"}),
    ("400", CHAT, {"model": "deepseek-flash", "messages": []}, {}),
    ("cut", CHAT, STREAM | {"max_tokens": 8}, {"X-Mock-Fault": "cut_after=3"}),
    ("reset", CHAT, STREAM | {"max_tokens": 9}, {"X-Mock-Fault": "reset_after=2"}),
    ("models", "/models", None, {}),
]


def test_record_then_replay_gives_the_same_status_headers_and_bytes_frame_for_frame(
    upstream: MockServer, tmp_path: Path
) -> None:
    recorded: dict[str, Got] = {}
    with recorder(upstream, tmp_path) as rec:
        for name, path, body, extra in EXCHANGES:
            method = "GET" if body is None else "POST"
            recorded[name] = fetch(rec.url + path, body, headers=KEY | extra, method=method)
    upstream.stop()  # replay must never need it

    assert recorded["reset"].reset and not recorded["cut"].reset
    assert [recorded[n].status for n in ("503", "429", "400")] == [503, 429, 400]
    document = json.loads((tmp_path / "default.json").read_text())
    assert problems("cassette.schema.json", document) == []
    assert document["complete"] is False  # the reset is recorded as one
    interactions = document["interactions"]
    assert [i["response"]["ending"] for i in interactions].count("reset") == 1
    kinds = [e["kind"] for e in interactions[0]["response"]["events"]]
    assert kinds[:3] == ["comment", "comment", "data"]
    assert [e["kind"] for e in interactions[1]["response"]["events"]] == ["blank", "blank", "body"]

    with replayer(tmp_path, replay_speed=0) as rep:
        for name, path, body, _ in EXCHANGES:
            method = "GET" if body is None else "POST"
            got = fetch(rep.url + path, body, headers=KEY, method=method)
            want = recorded[name]
            assert (got.status, got.body, got.reset) == (want.status, want.body, want.reset), name
            for header in ("content-type", "x-ds-trace-id", "retry-after", "cache-control"):
                assert got.headers.get(header) == want.headers.get(header), (name, header)
            frames = Framer(sse=True).feed(got.body, 0)
            assert [f.raw for f in frames] == [
                f.raw for f in Framer(sse=True).feed(want.body, 0)
            ], name


def test_replay_keeps_the_recorded_pacing(upstream: MockServer, tmp_path: Path) -> None:
    """Offsets as recorded, within 80 ms each (the machine is shared), and replay at speed 0
    does not wait for them."""
    pace = {"X-Mock-Delivery": "keep_alives=1, keep_alive_interval=0.06, gap=0.06"}
    with recorder(upstream, tmp_path) as rec:
        fetch(rec.url + CHAT, STREAM, headers=KEY | pace)
    upstream.stop()
    (interaction,) = load(tmp_path / "default.json").interactions
    recorded = [e.t_ms for e in interaction.events if e.kind in ("data", "comment")]
    assert recorded[-1] - recorded[0] > 300, recorded  # the pace was really recorded

    with replayer(tmp_path, replay_speed=1.0) as rep:
        got = fetch(rep.url + CHAT, STREAM, headers=KEY)
    arrivals = []
    for t, piece in got.arrivals:
        arrivals += [t] * len(Framer(sse=True).feed(piece, t))
    assert len(arrivals) == len(recorded)
    deviations = [abs(a - r) for a, r in zip(arrivals, recorded, strict=True)]
    assert max(deviations) < 80, (recorded, arrivals)

    with replayer(tmp_path, replay_speed=0) as rep:
        fast = fetch(rep.url + CHAT, STREAM, headers=KEY)
    assert fast.body == got.body
    assert fast.arrivals[-1][0] < (recorded[-1] - recorded[0]) / 2


def test_a_canary_key_never_reaches_a_cassette_the_journal_or_a_log(
    upstream: MockServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    canary = "sk-canary" + secrets.token_hex(12)
    caplog.set_level(logging.DEBUG)
    headers = {"Authorization": f"Bearer {canary}", "api-key": canary, "x-api-key": canary}
    with recorder(upstream, tmp_path) as rec:
        fetch(f"{rec.url}{CHAT}?api_key={canary}", BODY, headers=headers)
        fetch(rec.url + CHAT, STREAM, headers=headers)
        journal = repr(rec.journal.entries())
        # Key-shaped text in the body is scrubbed from the cassette too.
        text = {"role": "user", "content": f"my key is {canary}, keep it"}
        fetch(rec.url + CHAT, BODY | {"messages": [text]}, headers=headers)
    cassette = (tmp_path / "default.json").read_text()
    assert canary not in cassette and canary[3:] not in cassette
    assert "sk-REDACTED" in cassette and "authorization" not in cassette.lower()
    assert canary not in journal
    assert canary not in caplog.text, "a key reached a log line"
    assert "api_key=REDACTED" in cassette


def test_a_miss_names_the_closest_recording_and_the_fields_that_differ(
    upstream: MockServer, tmp_path: Path
) -> None:
    with recorder(upstream, tmp_path) as rec:
        fetch(rec.url + CHAT, BODY, headers=KEY)
    with (
        replayer(tmp_path, replay_speed=0) as rep,
        openai.OpenAI(base_url=rep.url, api_key="sk-test-record") as client,
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(
                model="deepseek-flash",
                messages=[{"role": "user", "content": "Hullo"}],
                max_tokens=6,
            )
        assert len(rep.journal.entries()) == 1, "a miss must not be retried by the SDK"
        message = caught.value.message
        assert "closest is interaction #0" in message
        assert '$.body.messages[0].content: recorded "Hello", now "Hullo"' in message
        assert caught.value.response.headers["x-mock-cassette-miss"] == "1"
        assert caught.value.code == "no_recording"
        # `user` is ignored by default: the recording answers.
        reply = client.chat.completions.create(
            model="deepseek-flash", messages=PROMPT, max_tokens=6, user="someone-else"
        )
        assert reply.choices[0].finish_reason == "length"
        with pytest.raises(openai.NotFoundError, match="all replayed already"):
            client.chat.completions.create(model="deepseek-flash", messages=PROMPT, max_tokens=6)


def test_identical_requests_replay_in_recorded_order(upstream: MockServer, tmp_path: Path) -> None:
    upstream.add(
        Rule(name="busy", reply=ErrorReply(status=503), times=1),
        Rule(name="first", reply=Reply(content="first answer"), times=1),
        Rule(name="second", reply=Reply(content="second answer")),
    )
    plain = BODY | {"thinking": {"type": "disabled"}}
    with recorder(upstream, tmp_path) as rec:
        statuses = [fetch(rec.url + CHAT, plain, headers=KEY).status for _ in range(3)]
    assert statuses == [503, 200, 200]
    with replayer(tmp_path, replay_speed=0) as rep:
        replies = [fetch(rep.url + CHAT, plain, headers=KEY) for _ in range(3)]
        answers = [json.loads(r.body)["choices"][0]["message"] for r in replies[1:]]
        assert [r.status for r in replies] == [503, 200, 200]
        assert [a["content"] for a in answers] == [
            "first answer",
            "second answer",
        ]
        rep.reset()  # back to the first recording
        assert fetch(rep.url + CHAT, plain, headers=KEY).status == 503


def test_faults_apply_on_top_of_a_replay(upstream: MockServer, tmp_path: Path) -> None:
    with recorder(upstream, tmp_path) as rec:
        bodies = [fetch(rec.url + CHAT, STREAM, headers=KEY).body for _ in range(3)]
    data = [[f.raw for f in Framer(sse=True).feed(body, 0)] for body in bodies]
    down = Rule(name="down", reply=ErrorReply(status=503), times=1)
    with replayer(tmp_path, replay_speed=0, rules=(down,)) as rep:
        # A rule's error answers first; the recording it stood in for is still due.
        assert fetch(rep.url + CHAT, STREAM, headers=KEY).status == 503
        cut = fetch(rep.url + CHAT, STREAM, headers=KEY | {"X-Mock-Fault": "cut_after=3"})
        assert cut.body == b"".join(data[0][:3]) and not cut.reset
        broken = fetch(rep.url + CHAT, STREAM, headers=KEY | {"X-Mock-Fault": "reset_after=2"})
        assert broken.body == b"".join(data[1][:2]) and broken.reset
        bad = fetch(rep.url + CHAT, STREAM, headers=KEY | {"X-Mock-Fault": "error_at=1"})
        assert bad.body.startswith(data[2][0]) and b'"internal_error"' in bad.body
        assert bad.body.count(b"data:") == 2
        # Each one journaled with its fault, in --fault words, as on the mock's own answers.
        faults = [(e.rule, e.fault) for e in rep.journal.wait_for(4)]
    assert faults == [
        ("fault on a replay", "503"),
        ("cassette default #0", "cut_after=3"),
        ("cassette default #1", "reset_after=2"),
        ("cassette default #2", "error_at=1"),
    ]


def test_record_modes(upstream: MockServer, tmp_path: Path) -> None:
    other = BODY | {"max_tokens": 3}
    # none: never the network, even with an upstream that answers.
    with recorder(upstream, tmp_path, record_mode="none") as rep:
        assert fetch(rep.url + CHAT, BODY, headers=KEY).status == 404
    assert not (tmp_path / "default.json").exists()
    # once: a cassette that does not exist is recorded...
    with recorder(upstream, tmp_path, record_mode="once") as rec:
        first = fetch(rec.url + CHAT, BODY, headers=KEY)
    assert first.status == 200
    # ...and one that exists is only replayed.
    with recorder(upstream, tmp_path, record_mode="once", replay_speed=0) as rep:
        assert fetch(rep.url + CHAT, BODY, headers=KEY).body == first.body
        assert fetch(rep.url + CHAT, other, headers=KEY).status == 404
    # new_episodes: what matches is replayed, what is new is recorded and kept.
    with recorder(upstream, tmp_path, record_mode="new_episodes", replay_speed=0) as rec:
        assert fetch(rec.url + CHAT, BODY, headers=KEY).body == first.body
        assert fetch(rec.url + CHAT, other, headers=KEY).status == 200
    assert len(load(tmp_path / "default.json").interactions) == 2
    # all: everything again, from an empty cassette.
    with recorder(upstream, tmp_path, record_mode="all") as rec:
        fetch(rec.url + CHAT, other, headers=KEY)
    (only,) = load(tmp_path / "default.json").interactions
    assert only.request["json"]["max_tokens"] == 3


def test_a_request_picks_its_cassette_by_header(upstream: MockServer, tmp_path: Path) -> None:
    with recorder(upstream, tmp_path) as rec:
        fetch(rec.url + CHAT, BODY, headers=KEY | {"X-Mock-Cassette": "suite/greeting"})
        fetch(rec.url + CHAT, BODY, headers=KEY | {"X-Mock-Cassette": "suite/named.json"})
        bad = fetch(rec.url + CHAT, BODY, headers=KEY | {"X-Mock-Cassette": "../escape"})
    assert (tmp_path / "suite" / "greeting.json").exists()
    assert sorted(p.name for p in (tmp_path / "suite").iterdir()) == ["greeting.json", "named.json"]
    assert bad.status == 400 and b"cassette name" in bad.body


def test_an_unreachable_upstream_is_a_502_in_the_envelope(tmp_path: Path) -> None:
    with MockServer(
        Settings(
            port=0,
            dialect="deepseek",
            cassettes=tmp_path,
            record_mode="all",
            upstream="http://127.0.0.1:9",
        )
    ) as rec:
        got = fetch(rec.url + CHAT, BODY, headers=KEY)
    assert got.status == 502 and json.loads(got.body)["error"]["message"].startswith(
        "deepseek-mock could not reach the upstream"
    )
    assert not (tmp_path / "default.json").exists()


def test_differences_name_each_field() -> None:
    assert differences({"a": 1, "b": [1, 2], "c": "x"}, {"a": 2, "b": [1], "d": True}) == [
        "$.a: recorded 1, now 2",
        "$.b: recorded 2 items, now 1",
        '$.c: recorded "x", missing now',
        "$.d: not recorded, now true",
    ]


def test_redaction_takes_more_headers_and_patterns() -> None:
    from mockserver.cassette import DEFAULT_REDACTION

    more = DEFAULT_REDACTION.with_extra(headers=["X-Tenant"], patterns=[r"acct-\d+"])
    assert more.text("for acct-1234, key sk-abcdef123456") == "for REDACTED, key sk-REDACTED"
    kept = more.headers([("X-Tenant", "acme"), ("Authorization", "Bearer x")], response=False)
    assert kept == {"x-tenant": "acme"}
    assert DEFAULT_REDACTION.headers([("X-Tenant", "acme")], response=False) == {}


def test_a_miss_on_a_cassette_never_recorded_says_how_to_record_it(tmp_path: Path) -> None:
    with replayer(tmp_path, cassette="greeting") as rep:
        got = fetch(rep.url + CHAT, BODY, headers=KEY)
    message = json.loads(got.body)["error"]["message"]
    assert got.status == 404
    assert f"there is no cassette file {tmp_path / 'greeting.json'} yet" in message
    assert "--deepseek-mock-record-mode=once" in message


def test_the_anthropic_surface_records_and_replays_with_its_sdk(
    upstream: MockServer, tmp_path: Path
) -> None:
    """Cassettes are wire-level: DeepSeek's Anthropic API records and replays like chat, and a
    miss comes back in Anthropic's envelope, as the SDK's NotFoundError."""
    import anthropic

    def client(server: MockServer) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=server.url_for("anthropic"), api_key="sk-test-record", max_retries=0
        )

    question: Any = [{"role": "user", "content": "hi"}]
    with recorder(upstream, tmp_path) as recording, client(recording) as sdk:
        recorded = sdk.messages.create(model="claude-sonnet-4", max_tokens=64, messages=question)
        with sdk.messages.stream(model="claude-sonnet-4", max_tokens=64, messages=question) as s:
            recorded_stream = s.get_final_message()
    upstream.stop()  # from here on only the cassette can answer
    with replayer(tmp_path, replay_speed=0) as replaying, client(replaying) as sdk:
        replayed = sdk.messages.create(model="claude-sonnet-4", max_tokens=64, messages=question)
        with sdk.messages.stream(model="claude-sonnet-4", max_tokens=64, messages=question) as s:
            replayed_stream = s.get_final_message()
        with pytest.raises(anthropic.NotFoundError, match="no recording"):
            sdk.messages.create(
                model="claude-sonnet-4", max_tokens=64, messages=[{"role": "user", "content": "x"}]
            )
    assert replayed.model_dump() == recorded.model_dump()
    assert replayed_stream.model_dump() == recorded_stream.model_dump()
