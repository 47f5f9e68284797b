"""The journal and the admin API: every exchange recorded, secrets never kept."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
from typing import Any

import httpx
import pytest
from hypothesis import given, strategies as st

from mockserver import journal as journal_module
from mockserver.delivery import Delivery, split_awkwardly
from mockserver.journal import (
    BODY_KEEP,
    DATA,
    DONE,
    ERROR,
    FRAMES_HEAD,
    FRAMES_TAIL,
    KEEP_ALIVE,
    LAZY_BYTES,
    PARTIAL,
    Capture,
    Entry,
    FrameLog,
    Journal,
    dump_entry,
    load_entry,
    utf8,
)
from mockserver.scenario import Match, Reply, Rule
from mockserver.server import MockServer
from mockserver.settings import Settings
from tests.conftest import LATE_2025

AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
CANARY = "sk-canary-0123456789abcdefWXYZ"


def test_a_key_never_appears_in_journal_admin_api_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with MockServer(
        Settings(port=0, api_keys=("sk-right-000000000000",)), log_level="debug"
    ) as server:
        url = server.url + "/chat/completions"
        sent = [
            httpx.post(url, json=BODY, headers={"Authorization": f"Bearer {CANARY}"}),
            httpx.post(url, json=BODY, headers={"api-key": CANARY}),
            httpx.post(url, json=BODY, headers={"x-api-key": CANARY}),
            httpx.post(url, json=BODY, params={"api_key": CANARY}),
            httpx.get(server.url + "/models", params={"api_key": CANARY}),
        ]
        assert [r.status_code for r in sent] == [401] * 5
        entries = server.journal.wait_for(5)
        admin = httpx.get(server.url + "/__mock/journal").text
    recorded = json.dumps([e.to_json() for e in entries], ensure_ascii=False)
    responses = "".join(r.text for r in sent)
    # The client's own loggers (httpx, httpcore) print its URL; everything else is the server.
    server_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    assert CANARY not in recorded
    assert CANARY not in admin
    assert not [line for line in server_lines if CANARY in line]
    assert CANARY not in responses
    assert "…WXYZ" in recorded  # a short fingerprint is enough to tell keys apart
    assert any("api_key=" in line for line in server_lines), "the access log ran"


def test_rejected_failed_and_cut_exchanges_are_all_recorded(mock: MockServer) -> None:
    httpx.post(mock.url + "/chat/completions", json=BODY)  # no key
    httpx.post(mock.url + "/chat/completions", content=b"{", headers=AUTH)  # bad JSON
    httpx.get(mock.url + "/nowhere")
    httpx.post(mock.url + "/chat/completions", json=BODY, headers=AUTH | {"X-Mock-Fault": "500"})
    stream = BODY | {"stream": True}
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            mock.url + "/chat/completions",
            json=stream,
            headers=AUTH | {"X-Mock-Fault": "reset_after=2"},
        )
    entries = mock.journal.wait_for(5)
    assert [(e.status, e.complete) for e in entries] == [
        (401, True), (400, True), (404, True), (500, True), (200, False),
    ]  # fmt: skip
    assert entries[3].rule == "x-mock-fault: 500"
    assert entries[4].stream and entries[4].json == BODY | {"stream": True}
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)


def test_entries_carry_what_crossed_the_wire(mock: MockServer) -> None:
    response = httpx.post(mock.url + "/chat/completions?trace=1", json=BODY, headers=AUTH)
    (entry,) = mock.journal.entries()
    assert entry.method == "POST" and entry.path == "/chat/completions" and entry.query == "trace=1"
    assert entry.dialect == "deepseek" and entry.rule == "generated"
    assert entry.bytes == len(response.content) and entry.status == 200
    assert entry.ttfb_ms is not None and entry.elapsed_ms >= entry.ttfb_ms
    assert entry.headers["authorization"] == "…"  # too short to fingerprint safely


def test_the_journal_is_bounded_oldest_first() -> None:
    journal = Journal(size=3)
    for seq in range(1, 6):
        journal.record(Entry(seq=seq, method="GET", path="/"))
    assert [e.seq for e in journal.entries()] == [3, 4, 5]


def test_wait_for_fails_clearly_instead_of_hanging() -> None:
    with pytest.raises(AssertionError, match=r"expected 1 within 0\.05 s"):
        Journal().wait_for(1, timeout=0.05)


def test_wait_for_counts_past_what_the_journal_keeps() -> None:
    journal = Journal(size=3)
    for seq in range(1, 6):
        journal.record(Entry(seq=seq, method="GET", path="/"))
    assert [e.seq for e in journal.wait_for(5, timeout=0.05)] == [3, 4, 5]
    with pytest.raises(AssertionError, match=r"recorded 5 exchanges, expected 6 within"):
        journal.wait_for(6, timeout=0.05)
    journal.clear()  # counts start again
    with pytest.raises(AssertionError, match=r"recorded 0 exchanges, expected 1 within"):
        journal.wait_for(1, timeout=0.05)


def test_admin_api_replaces_rules_and_reads_the_journal(mock: MockServer) -> None:
    admin = mock.url + "/__mock"
    scenario = {"rules": [{"name": "down", "times": 1, "error": {"status": 503}}]}
    assert httpx.put(admin + "/scenario", json=scenario).json() == {"rules": ["down"]}
    first = httpx.post(mock.url + "/chat/completions", json=BODY, headers=AUTH)
    second = httpx.post(mock.url + "/chat/completions", json=BODY, headers=AUTH)
    assert (first.status_code, second.status_code) == (503, 200)
    journal = httpx.get(admin + "/journal").json()["entries"]
    chat = [e for e in journal if e["path"] == "/chat/completions"]
    assert [e["status"] for e in chat] == [503, 200] and chat[0]["rule"] == "down"
    assert chat[0]["request"]["json"] == BODY
    assert httpx.get(admin + "/scenario").json()["uses"] == {"down": 1}
    assert httpx.delete(admin + "/journal").status_code == 204
    assert httpx.get(admin + "/health").json()["journal"] == 0  # admin calls are not recorded


def test_admin_api_rejects_a_bad_scenario_with_reasons(mock: MockServer) -> None:
    bad = {"rules": [{"name": "x", "error": {"status": 200}, "reply": {"content": "y"}}]}
    response = httpx.put(mock.url + "/__mock/scenario", json=bad)
    assert response.status_code == 400
    assert "not a valid scenario" in response.json()["error"]["message"]


def test_admin_reset_restores_the_start_up_rules(mock: MockServer) -> None:
    startup = [rule.name for rule in mock.scenario.rules]
    httpx.post(
        mock.url + "/__mock/scenario", json={"rules": [{"name": "extra", "error": {"status": 500}}]}
    )
    assert [rule.name for rule in mock.scenario.rules] == [*startup, "extra"]
    assert httpx.post(mock.url + "/__mock/reset").status_code == 204
    assert [rule.name for rule in mock.scenario.rules] == startup
    assert len(mock.journal) == 0


def test_admin_token() -> None:
    with MockServer(Settings(port=0, era=LATE_2025, admin_token="admin-secret")) as server:
        assert httpx.get(server.url + "/__mock/health").status_code == 401
        wrong = httpx.get(server.url + "/__mock/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = httpx.get(
            server.url + "/__mock/health", headers={"Authorization": "Bearer admin-secret"}
        )
        assert right.status_code == 200 and right.json()["status"] == "ok"


def test_a_bad_regular_expression_is_a_400_that_names_the_rule(mock: MockServer) -> None:
    bad = {"rules": [{"name": "x", "match": {"prompt": "(unclosed"}, "reply": {"content": "a"}}]}
    response = httpx.put(mock.url + "/__mock/scenario", json=bad)
    assert response.status_code == 400
    assert "$.rules[0].match.prompt" in response.json()["error"]["message"]


# ------------------------------------------------------------------ following the journal


def test_frames_are_split_at_blank_lines_however_they_are_written() -> None:
    frames = [
        b": keep-alive\n\n",
        b'data: {"id":"1","choices":[{"delta":{"content":"\xc3\xa9t\xc3\xa9"}}]}\n\n',
        b'data: {"id":"2","choices":[]}\n\n',
        b'data: {"error":{"message":"Internal error"}}\n\n',
        b"event: error\ndata: {}\n\n",
        b"data: [DONE]\n\n",
    ]
    kinds = [KEEP_ALIVE, DATA, DATA, ERROR, ERROR, DONE]
    whole = FrameLog()
    whole.write(b"".join(frames), 1.0)  # one write of many frames, as batched streams go
    assert [(size, kind) for _, size, kind in whole.frames()] == [
        (len(f), k) for f, k in zip(frames, kinds, strict=True)
    ]
    pieces = FrameLog()  # frames cut inside `data:`, inside a character and before the blank line
    for i, frame in enumerate(frames):
        for piece in split_awkwardly(frame):
            pieces.write(piece, float(i))
    assert pieces.frames() == [
        (float(i), len(f), k) for i, (f, k) in enumerate(zip(frames, kinds, strict=True))
    ]
    pieces.write(b'data: {"id":"3"', 9.0)  # the stream ends mid-frame
    assert pieces.frames()[-1] == (9.0, 15, PARTIAL)


def test_a_long_stream_keeps_its_first_and_last_frames() -> None:
    log = FrameLog()
    total = FRAMES_HEAD + FRAMES_TAIL + 100
    for i in range(total):
        log.write(b"data: {}\n\n", float(i))
    kept = log.frames()
    assert len(kept) == FRAMES_HEAD + FRAMES_TAIL and log.dropped == 100
    assert kept[FRAMES_HEAD - 1][0] == FRAMES_HEAD - 1 and kept[-1][0] == total - 1


def test_a_long_stream_in_pieces_keeps_its_last_frames_and_counts_the_rest() -> None:
    frames = [b'data: {"n":%d}\n\n' % n for n in range(FRAMES_HEAD + 300)] + [b"data: [DONE]\n\n"]
    log = FrameLog()
    for n, frame in enumerate(frames):
        for piece in split_awkwardly(frame):
            log.write(piece, float(n))
    log.write(b"data: {", 99.0)  # and it ends mid-frame
    kept = log.frames()
    assert len(kept) == FRAMES_HEAD + FRAMES_TAIL + 1
    assert log.dropped == len(frames) - FRAMES_HEAD - FRAMES_TAIL
    assert kept[FRAMES_HEAD - 1] == (FRAMES_HEAD - 1.0, len(frames[FRAMES_HEAD - 1]), DATA)
    assert kept[-3] == (len(frames) - 2.0, len(frames[-2]), DATA)
    assert kept[-2] == (len(frames) - 1.0, 14, DONE)
    assert kept[-1] == (99.0, 7, PARTIAL)


def test_entries_keep_the_response_its_frames_and_the_fault(mock: MockServer) -> None:
    stream = BODY | {"stream": True}
    faulty = AUTH | {"X-Mock-Delivery": "keep_alives=2,error_at=2"}
    httpx.post(mock.url + "/chat/completions", json=stream, headers=faulty)
    answer = httpx.post(mock.url + "/chat/completions", json=BODY, headers=AUTH)
    streamed, single = mock.journal.wait_for(2)
    # Keep-alives are a --fault word too (`keep_alives=2`), so the page's `fault:` finds them.
    assert streamed.fault == "keep_alives=2, error_at=2" and single.fault is None
    assert [kind for _, _, kind in streamed.frames] == [KEEP_ALIVE, KEEP_ALIVE, DATA, DATA, ERROR]
    assert sum(size for _, size, _ in streamed.frames) == streamed.bytes
    offsets = [at for at, _, _ in streamed.frames]
    assert offsets == sorted(offsets) and offsets[0] >= (streamed.ttfb_ms or 0)
    assert single.frames == [] and single.response_body == answer.text
    assert single.response_headers["x-ds-trace-id"] == answer.headers["x-ds-trace-id"]
    (shown, _) = httpx.get(mock.url + "/__mock/journal").json()["entries"]
    assert shown["fault"] == "keep_alives=2, error_at=2"
    assert shown["response"]["frames"][0] == [streamed.frames[0][0], 14, "keep-alive"]
    assert shown["response"]["body"].startswith(": keep-alive\n\n: keep-alive\n\ndata: {")


def test_an_error_fault_is_journaled_in_fault_words(mock: MockServer) -> None:
    """Status faults too, from a header or a rule, so `fault:503` finds them on the page."""
    from mockserver.scenario import ErrorReply, Rule

    for spec in ("503", "429:retry_after=2", "401:code=token_expired,plain"):
        httpx.post(mock.url + "/chat/completions", json=BODY, headers=AUTH | {"X-Mock-Fault": spec})
    mock.add(Rule(name="busy", reply=ErrorReply(status=503, retry_after_ms=1500.0)))
    httpx.post(mock.url + "/chat/completions", json=BODY, headers=AUTH)
    entries = mock.journal.wait_for(4)
    assert [(e.status, e.fault) for e in entries] == [
        (503, "503"),
        (429, "429:retry_after=2"),
        (401, "401:code=token_expired,plain"),
        (503, "503:retry_after_ms=1500"),
    ]
    assert entries[-1].rule == "busy"


def test_a_long_answer_is_kept_up_to_its_bounds(mock: MockServer) -> None:
    mock.add(Rule(name="long", reply=Reply(content="x" * BODY_KEEP)))
    answer = httpx.post(mock.url + "/chat/completions", json=BODY | {"stream": True}, headers=AUTH)
    (entry,) = mock.journal.wait_for(1)
    assert entry.bytes == len(answer.content) > BODY_KEEP
    assert entry.response_body == answer.text[:BODY_KEEP]
    assert len(entry.frames) == FRAMES_HEAD + FRAMES_TAIL and entry.frames_dropped > 0
    assert entry.frames[-1][2] == DONE
    (shown,) = httpx.get(mock.url + "/__mock/journal").json()["entries"]
    assert shown["response"]["truncated"] is True


def test_a_long_stream_copied_from_its_template_is_journaled_as_it_was_sent(
    mock: MockServer,
) -> None:
    """Past LAZY_BYTES a stream's frames are counted as they go; a copy's are counted from
    its template's counts rather than by searching each write. The fourth request is a copy
    (the first misses the prompt cache, the next two are the hit's first two sightings, and
    the second of them makes the template): every entry must hold the frames it sent."""
    mock.add(Rule(name="long", reply=Reply(content="word " * 2_000)))
    answers = [
        httpx.post(mock.url + "/chat/completions", json=BODY | {"stream": True}, headers=AUTH)
        for _ in range(4)
    ]
    entries = mock.journal.wait_for(4)
    for entry, answer in zip(entries, answers, strict=True):
        sent = [frame + b"\n\n" for frame in answer.content.split(b"\n\n") if frame]
        assert entry.bytes == len(answer.content) > LAZY_BYTES
        kept = sent[:FRAMES_HEAD] + sent[-FRAMES_TAIL:]
        assert [size for _, size, _ in entry.frames] == list(map(len, kept))
        assert entry.frames_dropped == len(sent) - len(kept)
        assert entry.frames[-1][2] == DONE


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_body_cut_to_its_bound_ends_on_a_whole_character(
    mock_now: MockServer, stream: bool
) -> None:
    """The journal keeps a response's first BODY_KEEP bytes; where they end inside a
    character, the text stops before it: a prefix of what was sent, never a replacement."""
    mock_now.add(Rule(name="wide", reply=Reply(content="é😊" * 15_000)))
    body = {
        "model": "deepseek-flash",
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "disabled"},
        "max_tokens": 100_000,
        "stream": stream,
    }
    answer = httpx.post(mock_now.url + "/chat/completions", json=body, headers=AUTH, timeout=30)
    (entry,) = mock_now.journal.wait_for(1)
    assert entry.bytes == len(answer.content) > BODY_KEEP
    kept = entry.response_body
    assert "\ufffd" not in kept
    assert answer.text.startswith(kept)
    assert BODY_KEEP - 4 < len(kept.encode()) <= BODY_KEEP


@pytest.mark.parametrize(
    ("data", "cut", "text"),
    [
        (b"ab\xc3", True, "ab"),  # a character cut at the end: left out
        (b"ab\xc3", False, "ab\ufffd"),  # the whole of it, broken: shown as broken
        (b"a\xffb\xf0\x9f", True, "a\ufffdb"),  # a bad byte inside is still replaced
        ("é😊".encode(), True, "é😊"),
    ],
)
def test_utf8_leaves_out_only_a_character_cut_at_the_end(data: bytes, cut: bool, text: str) -> None:
    assert utf8(data, cut=cut) == text


def test_past_the_capture_cap_an_exchange_is_journaled_without_its_response(
    mock: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many streams are open, only CAPTURING_MAX of them keep their response for the
    journal at once: the next is recorded whole but for its body and frames, and the cap frees
    again as they end."""
    monkeypatch.setattr(journal_module, "CAPTURING_MAX", 1)
    mock.add(Rule(name="slow", match=Match(prompt=re.compile("slow")), delivery=Delivery(gap=0.05)))
    auth = {"Authorization": "Bearer sk-test"}
    slow = {
        "model": "deepseek-chat",
        "stream": True,
        "messages": [{"role": "user", "content": "slow"}],
    }
    quick = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=mock.url, headers=auth, timeout=30) as client:
        with client.stream("POST", "/chat/completions", json=slow) as held:
            chunks = held.iter_raw()  # kept: a dropped iterator closes the response
            next(chunks)  # the slow stream is open and keeps its response
            assert client.post("/chat/completions", json=quick).status_code == 200
            for _ in chunks:
                pass
        assert client.post("/chat/completions", json=quick).status_code == 200
    uncaptured, first, again = mock.journal.wait_for(3)  # in the order they were recorded
    assert (uncaptured.response_kept, uncaptured.response_body, uncaptured.bytes > 0) == (
        False,
        "",
        True,
    )
    assert uncaptured.to_json()["response"]["truncated"] is True
    assert first.response_kept and first.frames and first.response_body.startswith("data: ")
    assert again.response_kept and again.response_body.startswith("{")


def _eager(
    writes: list[tuple[float, bytes]], stream: bool
) -> tuple[str, list[tuple[float, int, str]], int]:
    """What the journal kept before captures were read lazily: the body's first BODY_KEEP
    bytes and every write through one FrameLog as it came."""
    body = b"".join(chunk for _, chunk in writes)[:BODY_KEEP]
    log = FrameLog()
    for at_ms, chunk in writes:
        if stream and chunk:
            log.write(chunk, at_ms)
    text = utf8(body, cut=len(body) >= BODY_KEEP)
    return text, log.frames() if stream else [], log.dropped


_FRAME = st.sampled_from(
    [b'data: {"c":"\xc3\xa9"}\n\n', b": keep-alive\n\n", b"data: [DONE]\n\n", b"x" * 900 + b"\n\n"]
)


@given(
    frames=st.lists(_FRAME, max_size=700),
    cuts=st.lists(st.integers(min_value=0, max_value=400_000), max_size=60),
    stream=st.booleans(),
    lazy_bytes=st.sampled_from([0, 1_000, 50_000, LAZY_BYTES]),
    copied=st.booleans(),
)
def test_a_capture_read_late_is_what_reading_it_as_it_came_gives(
    frames: list[bytes], cuts: list[int], stream: bool, lazy_bytes: int, copied: bool
) -> None:
    data = b"".join(frames)
    edges = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    writes = [(float(i), data[a:b]) for i, (a, b) in enumerate(itertools.pairwise(edges))]
    writes.insert(len(writes) // 2, (0.5, b""))  # an empty write counts for nothing
    copy = _Writes([chunk for _, chunk in writes]) if copied else None
    capture = Capture(stream=stream, copy=copy)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(journal_module, "LAZY_BYTES", lazy_bytes)
        for at_ms, chunk in writes:
            capture.add(chunk, at_ms)
    assert capture.read() == _eager(writes, stream)
    # What it holds by reference stays within its bound; past it, the writes are read. Of
    # a copy's writes it holds none: their indexes only.
    held = [chunk for _, chunk in capture.writes if isinstance(chunk, bytes)]
    assert sum(map(len, held)) <= (0 if copied else lazy_bytes)


class _Writes:
    """A response's writes that can be made again (journal.Reproducible), as a copy from a
    template is."""

    def __init__(self, writes: list[bytes]) -> None:
        self.writes = writes

    def index_of(self, chunk: bytes) -> int | None:
        return next((i for i, write in enumerate(self.writes) if write is chunk), None)

    def again(self, index: int) -> bytes:
        return self.writes[index]

    def ends_in(self, index: int) -> int:
        return self.writes[index].count(b"\n\n")


def test_an_entry_is_read_in_before_anyone_sees_it(mock: MockServer) -> None:
    answer = httpx.post(mock.url + "/chat/completions", json=BODY | {"stream": True}, headers=AUTH)
    (entry,) = mock.journal.wait_for(1)
    assert entry.capture is None and entry.response_body == answer.text
    assert entry.to_json()["response"]["body"] == answer.text
    assert "capture" not in entry.to_json()


def test_the_same_headers_again_are_kept_redacted_and_apart(mock: MockServer) -> None:
    key = {"Authorization": "Bearer sk-the-same-key-every-time-1234"}
    for _ in range(3):
        httpx.post(mock.url + "/chat/completions", json=BODY, headers=key)
    entries = mock.journal.wait_for(3)
    assert all(e.headers["authorization"] == "…1234" for e in entries)
    entries[0].headers["authorization"] = "changed"  # one entry's record is its own
    assert entries[1].headers["authorization"] == "…1234"


def test_response_headers_are_redacted_when_read_whatever_the_reader() -> None:
    """A response's headers are kept as they left and redacted when the entry is read: every
    reader (the journal, a shared store's JSON, the admin API's JSON) sees them redacted."""
    long_value = b"v" * (journal_module.HEADER_VALUE_KEEP + 10)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        headers = [
            (b"Content-Type", b"application/json"),
            (b"Proxy-Authorization", b"Bearer sk-upstream-secret-1234"),
            (b"x-long", long_value),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})

    journal = Journal()
    middleware = journal_module.JournalMiddleware(app, journal)

    async def one() -> None:
        scope = {"type": "http", "method": "POST", "path": "/x", "headers": [], "state": {}}
        messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

        async def receive() -> Any:
            return messages.pop()

        async def send(message: Any) -> None:
            pass

        await middleware(scope, receive, send)

    asyncio.run(one())
    asyncio.run(one())
    first, second = journal.entries()
    shown = load_entry(dump_entry(second)).response_headers
    for headers in (first.response_headers, shown, second.to_json()["response"]["headers"]):
        assert headers["content-type"] == "application/json"
        assert headers["proxy-authorization"] == "…1234"
        assert headers["x-long"].startswith("v" * 100) and headers["x-long"].endswith("more bytes]")
    assert "raw_response_headers" not in first.to_json()


@given(
    pieces=st.lists(
        st.binary(max_size=3).map(lambda b: b * 9_000) | st.binary(max_size=40),
        max_size=12,
    ),
    as_bytearray=st.booleans(),
)
def test_a_request_body_in_any_number_of_messages_is_kept_to_its_bound(
    pieces: list[bytes], as_bytearray: bool
) -> None:
    """One message or many, bytes or a bytearray from the server: the entry keeps the body's
    first BODY_KEEP bytes and counts them all."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})

    journal = Journal()
    middleware = journal_module.JournalMiddleware(app, journal)
    messages: list[dict[str, Any]] = [
        {
            "type": "http.request",
            "body": bytearray(piece) if as_bytearray else piece,
            "more_body": i < len(pieces) - 1,
        }
        for i, piece in enumerate(pieces or [b""])
    ]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        pass

    asyncio.run(
        middleware({"type": "http", "method": "POST", "path": "/x", "headers": []}, receive, send)
    )
    (entry,) = journal.entries()
    whole = b"".join(pieces)
    assert type(entry.body) is bytes
    assert entry.body == whole[:BODY_KEEP]
    assert entry.body_bytes == len(whole)
