"""The Store interface, the same tests on both implementations: memory and a real Redis.

Whatever one process decides, the shared store must decide the same way: the same rules
answer, the same seeded draws fall, the same limits refuse, the same prompt prefixes hit.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from mockserver.delivery import Delivery
from mockserver.dialects import DEEPSEEK
from mockserver.errors import ApiError
from mockserver.journal import Batch, Entry
from mockserver.scenario import (
    ErrorReply,
    Match,
    Reply,
    Rule,
    ToolCall,
    rule_from_json,
    rule_to_json,
)
from mockserver.settings import Settings
from mockserver.state import Store, namespace_of, open_store
from mockserver.validation import ChatRequest, parse_body, parse_chat

STARTUP = (Rule(name="startup", match=Match(prompt=re.compile("^boot$"))),)


def chat(text: str = "hello", model: str = "deepseek-flash") -> ChatRequest:
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "%s"}]}' % (
        model.encode(),
        text.encode(),
    )
    return parse_chat(parse_body(body), DEEPSEEK.limits, DEEPSEEK.catalog.newest)


def make_store(kind: str, url: str | None, **settings: object) -> Store:
    state = None if kind == "memory" else url
    return open_store(Settings(state=state, **settings), STARTUP)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(kind: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_db") if kind == "redis" else None


@pytest.fixture
def store(kind: str, url: str | None) -> Iterator[Store]:
    made = make_store(kind, url, seed=3)
    yield made
    made.close()


def decide(store: Store, text: str = "hello", namespace: str = "default") -> str:
    return store.space(namespace).scenario.decide(chat(text), {}, "deepseek").name


def test_a_new_namespace_starts_with_the_startup_rules(store: Store) -> None:
    assert store.space("fresh").scenario.rules == STARTUP
    assert decide(store, "boot", "fresh") == "startup"
    assert decide(store, "hello", "fresh") == "generated"


def test_times_sequences_and_replacing_by_name(store: Store) -> None:
    book = store.space().scenario
    book.replace([Rule(name="one", times=1), Rule(name="two", times=2)])
    assert [decide(store) for _ in range(4)] == ["one", "two", "two", "generated"]
    assert book.uses() == {"one": 1, "two": 2}
    book.add(Rule(name="two", times=1))  # replaced where it stands, counted from 0
    book.add(Rule(name="three", reply=ErrorReply(status=503)))
    assert [rule.name for rule in book.rules] == ["one", "two", "three"]
    assert [decide(store) for _ in range(2)] == ["two", "three"]
    assert [(rule.name, used) for rule, used in book.usage()] == [
        ("one", 1),
        ("two", 1),
        ("three", 1),
    ]


def test_seeded_draws_are_the_same_in_both_stores(redis_db: str) -> None:
    """The draw is a SHA-1 both sides compute: Redis's script and this process agree."""
    rules = [Rule(name="flaky", probability=0.3, times=40), Rule(name="coin", probability=0.5)]
    outcomes = []
    for kind in ("memory", "redis"):
        store = make_store(kind, redis_db, seed=7)
        store.space().scenario.replace(rules)
        outcomes.append([decide(store) for _ in range(120)])
        store.close()
    assert outcomes[0] == outcomes[1]
    assert {"flaky", "coin", "generated"} == set(outcomes[0])
    assert outcomes[0].count("flaky") <= 40


def test_times_is_exact_under_threads(store: Store) -> None:
    store.space().scenario.replace([Rule(name="five", times=5)])
    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: decide(store), range(80)))
    assert names.count("five") == 5


def test_a_change_is_seen_by_another_handle_at_once(kind: str, url: str | None) -> None:
    """Two stores on one Redis are two workers: a rule added on one answers on the other at
    the very next request (the rules carry a version that every decision checks)."""
    if kind == "memory":
        first = second = make_store(kind, url)
    else:
        first, second = make_store(kind, url), make_store(kind, url)
    assert decide(second) == "generated"  # the second worker has read the rules
    first.space().scenario.add(Rule(name="down", reply=ErrorReply(status=503)))
    assert decide(second) == "down"
    first.close()
    second.close()


def test_rules_round_trip_as_scenario_json() -> None:
    rule = Rule(
        name="everything",
        match=Match(
            model="deepseek-flash",
            stream=True,
            prompt=re.compile("weather"),
            headers=(("x-team", re.compile("^a$")),),
            dialect="deepseek",
        ),
        reply=Reply(
            content="hi",
            reasoning_content="think",
            tool_calls=(ToolCall(name="f", arguments='{"a": 1}'),),
            finish_reason="tool_calls",
            usage={"prompt_tokens": 3},
        ),
        delivery=Delivery(gap=0.01, cut_after=3),
        times=2,
        probability=0.5,
    )
    error = Rule(name="e", reply=ErrorReply(status=429, retry_after=2, plain=True))
    for each in (rule, error, Rule(name="plain")):
        assert rule_from_json(rule_to_json(each)) == each


def test_the_journal_numbers_bounds_waits_and_clears(kind: str, url: str | None) -> None:
    store = make_store(kind, url, journal_size=3)
    journal = store.space().journal
    for i in range(5):
        journal.record(Entry(method="POST", path=f"/{i}", body=b"\xff\x00body"))
    kept = journal.wait_for(5, timeout=1)
    assert [(e.seq, e.path) for e in kept] == [(3, "/2"), (4, "/3"), (5, "/4")]
    assert kept[0].body == b"\xff\x00body" and len(journal) == 3
    journal.clear()
    assert journal.entries() == [] and len(journal) == 0
    with pytest.raises(AssertionError, match="recorded 0 exchanges, expected 1"):
        journal.wait_for(1, timeout=0.05)
    journal.record(Entry(method="GET", path="/after"))
    assert [e.seq for e in journal.entries()] == [7]  # never reused: the clear took 6
    store.close()


def test_wait_for_returns_when_another_thread_records(store: Store) -> None:
    journal = store.space().journal
    started = threading.Event()

    def record_later() -> None:
        started.wait(5)
        for i in range(3):
            journal.record(Entry(method="POST", path=f"/{i}"))

    writer = threading.Thread(target=record_later)
    writer.start()
    started.set()
    assert len(journal.wait_for(3, timeout=5)) == 3
    writer.join(5)


def test_namespaces_do_not_share_anything(store: Store) -> None:
    a, b = store.space("a"), store.space("b")
    a.scenario.replace([Rule(name="only-a")])
    a.journal.record(Entry(method="POST", path="/a"))
    assert decide(store, namespace="a") == "only-a"
    assert decide(store, namespace="b") == "generated"
    assert b.journal.entries() == []
    assert {"a", "b"} <= set(store.namespaces())


def test_limits_refuse_exactly_the_excess(kind: str, url: str | None) -> None:
    store = make_store(kind, url, max_concurrent=2, rate_limit=3, rate_window=60.0)
    limits = store.space().limiter
    first, second = limits.acquire(), limits.acquire()
    with pytest.raises(ApiError) as refused:
        limits.acquire("current {current}, limit {limit}")
    assert refused.value.message == "current 3, limit 2"
    first()
    first()  # twice is once
    third = limits.acquire()
    second()
    third()
    with pytest.raises(ApiError) as rate:
        limits.acquire()
    assert rate.value.headers["retry-after"] in {"59", "60"}
    assert limits.in_flight == 0
    store.close()


def test_the_balance_runs_out_and_resets(kind: str, url: str | None) -> None:
    store = make_store(kind, url, balance_tokens=10)
    account = store.space().balance
    account.check()
    account.spend(7)
    assert account.left == 3 and account.available
    account.spend(7)
    assert account.left == 0
    with pytest.raises(ApiError):
        account.check()
    account.reset()
    assert account.left == 10
    assert store.space("other").balance.left == 10
    store.close()


def test_prompt_cache_hits_are_the_same_in_both_stores(redis_db: str) -> None:
    long = chat(" ".join(f"word{i}" for i in range(300))).prompt_ids
    longer = [*long, *range(200)]
    hits = []
    for kind in ("memory", "redis"):
        store = make_store(kind, redis_db)
        cache = store.space().cache
        hits.append(
            [
                cache.hit(long, "m"),
                cache.hit(long, "m"),
                cache.hit(longer, "m"),
                cache.hit(long, "u"),
            ]
        )
        cache.clear()
        hits[-1].append(cache.hit(long, "m"))
        store.close()
    assert hits[0] == hits[1]
    assert hits[0][0] == 0 and hits[0][1] == len(long) // 64 * 64 and hits[0][3] == 0


def test_namespace_names_are_checked() -> None:
    assert namespace_of({}) == "default"
    assert namespace_of({"x-mock-namespace": "tests/test_a.py::test_b-1"}) == (
        "tests/test_a.py::test_b-1"
    )
    with pytest.raises(ApiError, match="not a namespace name"):
        namespace_of({"x-mock-namespace": "a b"})


def test_a_decision_brings_the_cache_hit_and_an_error_leaves_the_cache_cold(store: Store) -> None:
    """`Space.decide` gives the rule and the prompt-cache hit (one round trip on Redis); a
    request answered with an error does not warm the cache, in either store."""
    space = store.space()
    prompt = chat(" ".join(f"boom{i}" for i in range(300)))
    whole = len(prompt.prompt_ids) // 64 * 64
    space.scenario.replace(
        [
            Rule(
                name="down",
                match=Match(prompt=re.compile("boom")),
                reply=ErrorReply(status=503),
                times=1,
            )
        ]
    )

    async def three() -> list[tuple[str, int | None]]:
        seen: list[tuple[str, int | None]] = []
        for _ in range(3):
            rule, cached = await space.decide(prompt, {}, "deepseek")
            # An error is never answered, so the app never asks for its hit.
            seen.append((rule.name, None if isinstance(rule.reply, ErrorReply) else cached()))
        await store.aclose()
        return seen

    assert asyncio.run(three()) == [("down", None), ("generated", 0), ("generated", whole)]


def test_mock_server_refuses_workers() -> None:
    from mockserver.server import MockServer

    with pytest.raises(ValueError, match="deepseek-mock serve --workers N"):
        MockServer(workers=2)


# ------------------------------------------------------------------ following the journal


def _entry(seq: int) -> Entry:
    return Entry(method="GET", path=f"/{seq}")


def test_read_returns_what_came_after_a_cursor_and_skips_what_was_dropped(
    kind: str, url: str | None
) -> None:
    store = make_store(kind, url, journal_size=3)
    journal = store.space().journal
    assert journal.read(0, timeout=0) == (0, False, [])
    for seq in (1, 2):
        journal.record(_entry(seq))
    cursor, cleared, entries = journal.read(0, timeout=0)
    assert (cursor, cleared, [e.seq for e in entries]) == (2, False, [1, 2])
    assert journal.read(cursor, timeout=0) == (2, False, [])
    for seq in (3, 4, 5):
        journal.record(_entry(seq))
    assert [e.seq for e in journal.read(2, timeout=0).entries] == [3, 4, 5]
    assert [e.seq for e in journal.read(1, timeout=0).entries] == [3, 4, 5]  # 2 is gone
    store.close()


def test_a_clear_moves_the_cursor_and_reaches_the_reader(store: Store) -> None:
    journal = store.space().journal
    journal.record(_entry(1))
    journal.clear()
    assert journal.read(1, timeout=0) == (2, True, [])  # no entry since, but a clear
    journal.record(_entry(2))
    cursor, cleared, entries = journal.read(1, timeout=0)
    assert (cursor, cleared, [e.seq for e in entries]) == (3, True, [3])
    assert journal.read(2, timeout=0).cleared is False  # the clear came before cursor 2
    # A cursor from an earlier server, beyond this journal's: a clear, and all it has.
    assert journal.read(40, timeout=0) == (3, True, entries)


def test_read_waits_for_a_record_or_a_clear_and_gives_up_after_its_timeout(store: Store) -> None:
    journal = store.space().journal
    assert journal.read(0, timeout=0.05) == (0, False, [])
    for act in ("record", "clear"):
        cursor = journal.read(0, timeout=0).cursor
        got: list[Batch] = []

        def follow(after: int = cursor, into: list[Batch] = got) -> None:
            into.append(journal.read(after, timeout=10))

        reader = threading.Thread(target=follow)
        reader.start()
        if act == "record":
            journal.record(_entry(1))
        else:
            journal.clear()
        reader.join(timeout=5)
        assert not reader.is_alive() and got[0].cursor == cursor + 1
