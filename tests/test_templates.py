"""An answer asked for again is copied from a template: the same bytes a fresh rendering gives,
with the request's own id and time, on every dialect and surface, streamed or not."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from mockserver import journal as journal_module, templates
from mockserver.journal import DONE
from mockserver.responder import Completion, Responder
from mockserver.scenario import Match, Reply, Rule, ToolCall
from mockserver.server import MockServer
from mockserver.settings import Settings
from mockserver.templates import Template, Templates
from mockserver.usage import Usage
from mockserver.validated import VALIDATED_CACHE_BYTES

AUTH = {"Authorization": "Bearer sk-test-templates"}
PROMPT = "Write about the sea and the ships that sail on it, in a few words. " * 6
CHAT = {"model": "deepseek-chat", "messages": [{"role": "user", "content": PROMPT}]}
CANNED = "Ships sail; the sea is wide — ünïcode too. 船は海を行く。"
CREATED = re.compile(rb'"created": ?\d+')


def data_events(text: str) -> list[str]:
    """The `data:` payloads of an SSE body (Anthropic's events have an `event:` line too)."""
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


@pytest.fixture(scope="module")
def kept() -> Iterator[MockServer]:
    """A server that keeps templates (the default) and checks its own output."""
    with MockServer(Settings(port=0, self_check=True, era="v3.2")) as running:
        yield running


@pytest.fixture(scope="module")
def fresh() -> Iterator[MockServer]:
    """The same server with templates switched off: every answer rendered afresh."""
    with MockServer(Settings(port=0, self_check=True, era="v3.2")) as running:
        running.mock.templates.wanted = lambda at: False  # type: ignore[method-assign]
        yield running


@pytest.fixture
def servers(kept: MockServer, fresh: MockServer) -> tuple[MockServer, MockServer]:
    for server in (kept, fresh):
        server.reset()
    return kept, fresh


@pytest.fixture
def completions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The answers built by the responder (a copy from a template builds none), by model."""
    built: list[str] = []
    complete = Responder.complete

    def counted(self: Responder, *args: Any, **kwargs: Any) -> Any:
        built.append(kwargs["model"])
        return complete(self, *args, **kwargs)

    monkeypatch.setattr(Responder, "complete", counted)
    return built


def _id_of(body: bytes, stream: bool) -> bytes:
    """The completion's id as the wire carries it (a chunk's, or Anthropic's message id)."""
    if stream:
        first = orjson.loads(data_events(body.decode())[0])
        value = first.get("id") or first["message"]["id"]
    else:
        parsed = orjson.loads(body)
        value = parsed["id"]
    return str(value).encode()


def _normal(body: bytes, stream: bool) -> bytes:
    """The body with its id and creation time replaced by fixed words."""
    return CREATED.sub(b'"created":0', body.replace(_id_of(body, stream), b"ID"))


# (path on the server, body, streamed): every dialect and surface a default server mounts.
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("/chat/completions", CHAT, False),
    ("/chat/completions", CHAT | {"stream": True}, True),
    (
        "/chat/completions",
        CHAT | {"stream": True, "stream_options": {"include_usage": True}},
        True,
    ),
    ("/chat/completions", CHAT | {"model": "deepseek-reasoner"}, False),
    ("/chat/completions", CHAT | {"model": "deepseek-reasoner", "stream": True}, True),
    (
        "/beta/completions",
        {"model": "deepseek-chat", "prompt": "def add(a, b):", "max_tokens": 40},
        False,
    ),
    (
        "/beta/completions",
        {"model": "deepseek-chat", "prompt": "def add(a, b):", "max_tokens": 40, "stream": True},
        True,
    ),
    ("/deepseek/chat/completions", CHAT | {"model": "deepseek-v3"}, False),
    ("/deepseek/chat/completions", CHAT | {"model": "deepseek-v3", "stream": True}, True),
    ("/aimlapi/v1/chat/completions", CHAT | {"model": "deepseek/deepseek-chat"}, False),
    (
        "/aimlapi/v1/chat/completions",
        CHAT | {"model": "deepseek/deepseek-chat", "stream": True},
        True,
    ),
    ("/anthropic/v1/messages", CHAT | {"max_tokens": 200}, False),
    ("/anthropic/v1/messages", CHAT | {"max_tokens": 200, "stream": True}, True),
]


def _post(server: MockServer, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=AUTH | headers)


@pytest.mark.parametrize(("path", "body", "stream"), CASES, ids=lambda v: str(v)[:40])
@pytest.mark.parametrize("canned", [False, True], ids=["generated", "canned"])
def test_a_copied_answer_is_the_fresh_one_with_its_own_id_and_time(
    servers: tuple[MockServer, MockServer],
    completions: list[str],
    path: str,
    body: dict[str, Any],
    stream: bool,
    canned: bool,
) -> None:
    kept, fresh = servers
    if canned:
        for server in servers:
            server.add(
                Rule(
                    name="canned",
                    match=Match(prompt=re.compile("sea")),
                    reply=Reply(
                        content=CANNED,
                        reasoning_content="Think of ships." if "reasoner" in str(body) else None,
                    ),
                )
            )
    before = time.time()
    answers = [_post(kept, path, body) for _ in range(3)]
    assert all(answer.status_code == 200 for answer in answers), answers[0].text
    # The first answers are rendered: a cold prompt cache, a warm one seen once, its template
    # built (a prompt too short for the cache needs one fewer). Every one after is a copy.
    assert 2 <= len(completions) <= 3, completions
    built = len(completions)
    answers += [_post(kept, path, body) for _ in range(3)]
    after = time.time()
    assert len(completions) == built
    expected = [_post(fresh, path, body) for _ in range(6)]
    assert len(completions) == built + 6  # the fresh server renders every one
    for got, want in zip(answers, expected, strict=True):
        assert got.status_code == want.status_code == 200, got.text
        assert got.headers["content-type"] == want.headers["content-type"]
        # A JSON answer has its length; a stream is chunked, as ever.
        assert ("content-length" in got.headers) == ("content-length" in want.headers)
        assert _normal(got.content, stream) == _normal(want.content, stream)
    ids = {_id_of(answer.content, stream) for answer in answers}
    assert len(ids) == len(answers)
    stamps = [int(m.group().split(b":")[1]) for a in answers for m in CREATED.finditer(a.content)]
    assert all(int(before) <= stamp <= after for stamp in stamps)
    assert len(kept.mock.templates) == 1


def test_a_tool_call_is_never_copied(
    servers: tuple[MockServer, MockServer], completions: list[str]
) -> None:
    kept, _ = servers
    kept.add(
        Rule(
            name="tool",
            reply=Reply(tool_calls=(ToolCall(name="lookup", arguments='{"q": "sea"}'),)),
        )
    )
    answers = [_post(kept, "/chat/completions", CHAT).json() for _ in range(5)]
    call_ids = {a["choices"][0]["message"]["tool_calls"][0]["id"] for a in answers}
    assert len(call_ids) == 5  # drawn afresh for each answer
    assert len(completions) == 5
    assert len(kept.mock.templates) == 0


def test_an_answer_that_holds_a_stand_in_is_not_kept(
    servers: tuple[MockServer, MockServer], completions: list[str]
) -> None:
    kept, _ = servers
    tricky = f"the id {templates.ID_MARK} and the time {templates.CREATED_MARK}"
    kept.add(Rule(name="tricky", reply=Reply(content=tricky)))
    for _ in range(6):
        assert (
            _post(kept, "/chat/completions", CHAT).json()["choices"][0]["message"]["content"]
            == tricky
        )
    assert len(completions) == 6  # the proof failed once: the answer is rendered every time
    assert len(kept.mock.templates) == 0


def test_faults_and_timing_still_apply_to_a_copied_answer(
    servers: tuple[MockServer, MockServer],
) -> None:
    kept, _ = servers
    body = CHAT | {"stream": True}
    whole = [_post(kept, "/chat/completions", body) for _ in range(4)]
    assert len(kept.mock.templates) == 1
    events = len(data_events(whole[-1].text))
    cut = _post(kept, "/chat/completions", body, **{"X-Mock-Delivery": "cut_after=3"})
    assert len(data_events(cut.text)) == 3 < events
    fault = _post(kept, "/chat/completions", CHAT, **{"X-Mock-Fault": "429"})
    assert fault.status_code == 429


def test_the_journal_sees_a_copied_answer(servers: tuple[MockServer, MockServer]) -> None:
    kept, _ = servers
    body = CHAT | {"stream": True}
    answers = [_post(kept, "/chat/completions", body) for _ in range(5)]
    assert len(kept.mock.templates) == 1
    last = kept.journal.wait_for(5)[-1]
    assert last.status == 200 and last.complete and last.stream
    assert last.response_body == answers[-1].text
    data = [kind for _, _, kind in last.frames if kind == "data"]
    assert len(data) == len(data_events(answers[-1].text)) - 1  # all but [DONE]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_a_copied_answer_is_journaled_whole_however_many_are_open(
    servers: tuple[MockServer, MockServer],
    completions: list[str],
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    """A copy's journal entry keeps indexes into its template, not bytes, so it is kept even
    when no other exchange may keep its response (CAPTURING_MAX open at once; here 0), and it
    reads back as the bytes that left."""
    monkeypatch.setattr(journal_module, "CAPTURING_MAX", 0)
    kept, _ = servers
    body = CHAT | {"stream": stream}
    answers = [_post(kept, "/chat/completions", body) for _ in range(6)]
    entries = kept.journal.wait_for(6)
    rendered = len(completions)
    assert 2 <= rendered <= 3  # then copies (see the test of copies above)
    assert [entry.response_kept for entry in entries] == [False] * rendered + [True] * (
        6 - rendered
    )
    for entry, answer in list(zip(entries, answers, strict=True))[rendered:]:
        assert entry.response_body == answer.text
        assert entry.bytes == len(answer.content)
        if stream:
            assert entry.frames[-1][2] == DONE
            assert sum(size for _, size, _ in entry.frames) == len(answer.content)


def _bare_completion() -> Completion:
    """A completion with no choices: what a template test needs of one is its id and time."""
    return Completion(
        id="one",
        created=1,
        model="m",
        choices=(),
        usage=Usage(prompt_tokens=1, completion_tokens=1),
    )


def test_a_copy_names_only_its_own_writes() -> None:
    made = _bare_completion()

    def write(completion: Completion) -> list[bytes]:
        return [f"data: {completion.id} {completion.created}\n\n".encode(), b"data: [DONE]\n\n"]

    owner = object()
    at = templates.key(owner)
    kept = Templates()
    assert not kept.wanted(at) and kept.wanted(at)
    template = kept.build(at, (owner,), made, write(made), write)
    assert template is not None
    copy = template.render("two", 2)
    first = next(copy)
    assert first == b"data: two 2\n\n"
    assert copy.index_of(bytes(bytearray(first))) is None  # equal bytes, another object
    assert copy.index_of(first) == 0
    assert copy.index_of(first) is None  # named once: the copy lets go of it
    second = next(copy)
    assert copy.index_of(second) == 1
    assert [copy.again(0), copy.again(1)] == [first, second]
    assert list(copy) == []


def test_a_copied_answer_spends_the_balance_as_a_fresh_one() -> None:
    with MockServer(Settings(port=0, era="v3.2")) as probe:
        tokens = _post(probe, "/chat/completions", CHAT).json()["usage"]["total_tokens"]
    statuses = []
    for keep in (True, False):
        with MockServer(Settings(port=0, era="v3.2", balance_tokens=tokens * 5 + 1)) as server:
            if not keep:
                server.mock.templates.wanted = lambda at: False  # type: ignore[method-assign]
            statuses.append(
                [_post(server, "/chat/completions", CHAT).status_code for _ in range(8)]
            )
            assert len(server.mock.templates) == int(keep)
    assert statuses[0] == statuses[1]
    assert 402 in statuses[0] and statuses[0][0] == 200


def test_the_cache_is_bounded_and_forgets_on_clear() -> None:
    kept = Templates(max_bytes=10_000, max_one=4_000)
    owner = object()
    made = _bare_completion()

    def write(size: int) -> Callable[[Completion], list[bytes]]:
        return lambda c: [f"{c.id} {c.created} ".encode() + b"x" * size]

    def add(n: int, size: int) -> Template | None:
        at = templates.key(owner, extra=n)
        assert not kept.wanted(at)  # seen once: not yet
        assert kept.wanted(at)
        return kept.build(at, (owner,), made, write(size)(made), write(size))

    assert add(0, 5_000) is None  # one alone over its bound
    for n in range(1, 6):
        assert add(n, 3_000) is not None
    assert len(kept) == 2  # ~3,500 bytes each: the oldest went first
    assert kept.find(templates.key(owner, extra=5), (owner,)) is not None
    assert kept.find(templates.key(owner, extra=5), (object(),)) is None  # another owner
    kept.clear()
    assert len(kept) == 0


def test_a_body_that_never_repeats_costs_the_templates_nothing(
    servers: tuple[MockServer, MockServer], completions: list[str]
) -> None:
    kept, _ = servers
    # A validated cache that holds about one body: the requests' objects come and go, and
    # an object's identity is reused once it is gone.
    kept.mock.validated._cache.max_bytes = 4096
    try:
        for n in range(200):
            body = CHAT | {"messages": [{"role": "user", "content": f"{PROMPT} #{n}"}]}
            assert _post(kept, "/chat/completions", body).status_code == 200
    finally:
        kept.mock.validated._cache.max_bytes = VALIDATED_CACHE_BYTES
    assert len(completions) == 200
    assert len(kept.mock.templates) == 0


def test_an_answer_its_own_check_refuses_is_cut_the_same_way_every_time(
    servers: tuple[MockServer, MockServer],
) -> None:
    """With self_check, a chunk outside the dialect's contract ends the stream after its 200;
    the request that would have kept the answer must not turn that into a 500."""
    kept, _ = servers
    # A finish reason no schema has (a scenario file could not say it; a Rule in code can).
    busy = Reply(content="", finish_reason="made_up")
    kept.add(Rule(name="busy", reply=busy))
    body = CHAT | {"model": "deepseek-v3", "stream": True}
    seen = []
    for _ in range(6):
        with httpx.stream(
            "POST", kept.url + "/deepseek/chat/completions", json=body, headers=AUTH
        ) as answer:
            try:
                answer.read()
                seen.append((answer.status_code, "complete"))
            except httpx.HTTPError:
                seen.append((answer.status_code, "cut"))
    assert seen == [(200, "cut")] * 6
    assert len(kept.mock.templates) == 0


def test_a_reply_keeps_its_own_usage_figures() -> None:
    figures = {"prompt_tokens": 10}
    reply = Reply(content="x", usage=figures)
    figures["prompt_tokens"] = 99  # the caller's dict, changed later: the reply is kept by it
    assert reply.usage == {"prompt_tokens": 10}
