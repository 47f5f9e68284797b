"""Faults → what a client sees, against a real server: the openai SDK (sync and async) and
httpx. Every documented error of every dialect, broken deliveries, and account limits."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import openai
import pytest

from mockserver.delivery import Delivery
from mockserver.faults import parse_fault
from mockserver.scenario import ErrorReply, Match, Reply, Rule
from mockserver.schemas import assert_valid
from mockserver.server import MockServer
from mockserver.settings import Settings
from tests.conftest import LATE_2025
from tests.sse import parse

Json = dict[str, Any]
AUTH = {"Authorization": "Bearer sk-test"}
MODELS = {"deepseek": "deepseek-chat", "aimlapi": "deepseek-chat", "acedata": "deepseek-v3"}
MESSAGES: Any = [{"role": "user", "content": "héllo 😊"}]


def sdk(
    server: MockServer, dialect: str = "deepseek", retries: int = 0, **kw: Any
) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.url_for(dialect), api_key="sk-test", max_retries=retries, **kw
    )


def ask(client: openai.OpenAI, dialect: str = "deepseek", **kw: Any) -> Any:
    return client.chat.completions.create(model=MODELS[dialect], messages=MESSAGES, **kw)


def statuses(server: MockServer) -> list[int | None]:
    return [entry.status for entry in server.journal.entries()]


# ------------------------------------------------------------------ documented errors


DEEPSEEK_ERRORS = [
    (400, openai.BadRequestError),
    (401, openai.AuthenticationError),
    (402, openai.APIStatusError),
    (422, openai.UnprocessableEntityError),
    (429, openai.RateLimitError),
    (500, openai.InternalServerError),
    (503, openai.InternalServerError),
]
AIML_ERRORS = [
    (400, openai.BadRequestError),
    (401, openai.AuthenticationError),
    (403, openai.PermissionDeniedError),
    (404, openai.NotFoundError),
    (429, openai.RateLimitError),
    (500, openai.InternalServerError),
    (502, openai.InternalServerError),
    (503, openai.InternalServerError),
    (504, openai.InternalServerError),
]
ACEDATA_CODES = [
    ("bad_request", 400),
    ("no_token", 400),
    ("invalid_token", 401),
    ("token_expired", 401),
    ("token_mismatched", 401),
    ("token_mismatched", 400),
    ("disabled", 403),
    ("used_up", 403),
    ("forbidden", 403),
    ("no_api", 404),
    ("too_many_requests", 429),
    ("api_error", 500),
    ("timeout", 504),
    ("api_not_implemented", 400),
]


@pytest.mark.parametrize(("status", "exception"), DEEPSEEK_ERRORS)
def test_deepseek_documented_errors(
    mock: MockServer, status: int, exception: type[Exception]
) -> None:
    mock.add(Rule(name="fault", reply=ErrorReply(status=status)))
    with sdk(mock) as client, pytest.raises(exception) as caught:
        ask(client)
    error = caught.value
    assert isinstance(error, openai.APIStatusError) and error.status_code == status
    assert type(error) is exception or status == 402  # 402 has no subclass of its own
    body = error.response.json()
    assert_valid("deepseek/error.schema.json", body)
    assert error.code == "invalid_request_error"
    assert error.response.headers["x-ds-trace-id"]


@pytest.mark.parametrize("status", [401, 422])
def test_deepseek_plain_text_variants(mock: MockServer, status: int) -> None:
    mock.add(
        Rule(
            name="plain",
            reply=ErrorReply(status=status, message="Failed to deserialize", plain=True),
        )
    )
    response = httpx.post(
        mock.url + "/chat/completions",
        json={"model": "deepseek-chat", "messages": MESSAGES},
        headers=AUTH,
    )
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Failed to deserialize"
    with sdk(mock) as client, pytest.raises(openai.APIStatusError) as caught:
        ask(client)
    assert caught.value.body == "Failed to deserialize" and caught.value.code is None


@pytest.mark.parametrize(("status", "exception"), AIML_ERRORS)
def test_aimlapi_documented_errors(
    mock: MockServer, status: int, exception: type[Exception]
) -> None:
    mock.add(Rule(name="fault", reply=ErrorReply(status=status)))
    with sdk(mock, "aimlapi") as client, pytest.raises(exception) as caught:
        ask(client, "aimlapi")
    assert isinstance(caught.value, openai.APIStatusError)
    body = caught.value.response.json()
    assert_valid("aimlapi/error.schema.json", body)
    assert body["statusCode"] == status and body["path"] == "/aimlapi/v1/chat/completions"


@pytest.mark.parametrize(("code", "status"), ACEDATA_CODES)
def test_acedata_code_table(mock: MockServer, code: str, status: int) -> None:
    mock.add(Rule(name="fault", reply=ErrorReply(status=status, code=code)))
    with sdk(mock, "acedata") as client, pytest.raises(openai.APIStatusError) as caught:
        ask(client, "acedata")
    assert caught.value.status_code == status
    assert caught.value.code == code  # the SDK reads the inner error object
    body = caught.value.response.json()
    assert_valid("acedata/error.schema.json", body)
    assert body["trace_id"]


# ------------------------------------------------------------------ retries


def test_sdk_retries_two_503s_then_succeeds(mock: MockServer) -> None:
    mock.add(Rule(name="overloaded", reply=ErrorReply(status=503, retry_after_ms=1), times=2))
    with sdk(mock, retries=2) as client:
        completion = ask(client)
    assert completion.choices[0].message.content
    assert statuses(mock) == [503, 503, 200]
    retry_counts = [
        entry.headers.get("x-stainless-retry-count") for entry in mock.journal.entries()
    ]
    assert retry_counts == ["0", "1", "2"]


def test_async_sdk_retries_429s_then_succeeds(mock: MockServer) -> None:
    mock.add(Rule(name="limited", reply=ErrorReply(status=429, retry_after_ms=1), times=2))

    async def main() -> str | None:
        async with openai.AsyncOpenAI(
            base_url=mock.base_url, api_key="sk-test", max_retries=2
        ) as client:
            completion = await client.chat.completions.create(
                model="deepseek-chat", messages=MESSAGES
            )
            return completion.choices[0].message.content

    assert asyncio.run(main())
    assert statuses(mock) == [429, 429, 200]


def test_sdk_waits_as_long_as_retry_after_says(mock: MockServer) -> None:
    # Without the header the SDK's first backoff is at most 1 s; 1.5 s can only come from it.
    mock.add(Rule(name="slow down", reply=ErrorReply(status=429, retry_after=1.5), times=1))
    with sdk(mock, retries=1) as client:
        ask(client)
    first, second = mock.journal.entries()
    assert second.started - first.started >= 1.5
    assert [first.status, second.status] == [429, 200]


def test_sdk_does_not_retry_402(mock: MockServer) -> None:
    mock.add(Rule(name="broke", reply=ErrorReply(status=402)))
    with sdk(mock, retries=2) as client, pytest.raises(openai.APIStatusError):
        ask(client)
    assert statuses(mock) == [402]


# ------------------------------------------------------------------ broken deliveries


def test_reset_mid_stream_is_a_connection_error(mock: MockServer) -> None:
    mock.add(Rule(name="reset", delivery=Delivery(cut_after=3, reset=True)))
    with sdk(mock) as client, pytest.raises(openai.APIConnectionError):
        list(ask(client, stream=True))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            mock.url + "/chat/completions",
            json={"model": "deepseek-chat", "messages": MESSAGES, "stream": True},
            headers=AUTH,
        )
    entries = mock.journal.wait_for(2)
    assert [e.complete for e in entries] == [False, False]


def test_clean_cut_ends_the_stream_without_done(mock: MockServer) -> None:
    mock.add(Rule(name="cut", delivery=Delivery(cut_after=3)))
    with sdk(mock) as client:
        parts = list(ask(client, stream=True))
    assert len(parts) == 3  # the SDK ends quietly: only the raw frames show the missing [DONE]
    raw = httpx.post(
        mock.url + "/chat/completions",
        json={"model": "deepseek-chat", "messages": MESSAGES, "stream": True},
        headers=AUTH,
    )
    frames = parse(raw.content)
    assert len(frames.events) == 3 and "[DONE]" not in frames.events


def test_stall_hits_the_client_read_timeout_and_frees_the_server(mock: MockServer) -> None:
    mock.add(Rule(name="stall", delivery=Delivery(stall_after=2)))
    with (
        sdk(mock, timeout=httpx.Timeout(5, read=0.5)) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        list(ask(client, stream=True))
    entry = mock.journal.wait_for(1)[0]
    assert entry.status == 200 and not entry.complete
    assert httpx.get(mock.url + "/__mock/health").json()["open_bodies"] == 0


def test_malformed_chunk_raises_json_error_in_the_sdk(mock: MockServer) -> None:
    mock.add(Rule(name="garbled", delivery=Delivery(malformed_at=2)))
    with sdk(mock) as client, pytest.raises(json.JSONDecodeError):
        list(ask(client, stream=True))


def test_in_band_error_event_raises_api_error(mock: MockServer) -> None:
    mock.add(Rule(name="in-band", delivery=Delivery(error_at=2)))
    with sdk(mock) as client, pytest.raises(openai.APIError) as caught:
        list(ask(client, stream=True))
    assert not isinstance(caught.value, openai.APIStatusError)  # no status: it came in-band


@pytest.mark.parametrize("body", ["", "  \n"])
def test_empty_200_body_breaks_json_parsing(mock: MockServer, body: str) -> None:
    mock.add(Rule(name="empty", delivery=Delivery(body=body)))
    with sdk(mock) as client, pytest.raises(json.JSONDecodeError):
        ask(client)
    assert statuses(mock) == [200]


def test_duplicated_done_is_seen_raw_and_ignored_by_the_sdk(mock: MockServer) -> None:
    mock.add(Rule(name="twice", delivery=Delivery(duplicate_done=True)))
    raw = httpx.post(
        mock.url + "/chat/completions",
        json={"model": "deepseek-chat", "messages": MESSAGES, "stream": True},
        headers=AUTH,
    )
    assert parse(raw.content).events[-2:] == ["[DONE]", "[DONE]"]
    with sdk(mock) as client:
        assert list(ask(client, stream=True))


def test_split_writes_change_no_byte(mock: MockServer) -> None:
    body = {"model": "deepseek-chat", "messages": MESSAGES, "stream": True}
    mock.add(Rule(name="echo", reply=Reply(content="añb 😊 ok")))
    whole = httpx.post(mock.url + "/chat/completions", json=body, headers=AUTH).content
    split = httpx.post(
        mock.url + "/chat/completions",
        json=body,
        headers=AUTH | {"X-Mock-Delivery": "split_writes"},
    ).content
    strip = [json.loads(e) | {"id": "", "created": 0} for e in parse(whole).events[:-1]]
    assert strip == [json.loads(e) | {"id": "", "created": 0} for e in parse(split).events[:-1]]
    with sdk(mock, default_headers={"X-Mock-Delivery": "split_writes"}) as client:
        text = "".join(p.choices[0].delta.content or "" for p in ask(client, stream=True))
    assert text == "añb 😊 ok"


INTERRUPTED = Rule(
    name="interrupted",
    reply=Reply(content="Partial", finish_reason="insufficient_system_resource"),
)


@pytest.mark.parametrize(
    ("dialect", "finish"),
    [("deepseek", "insufficient_system_resource"), ("aimlapi", "length"), ("acedata", "length")],
)
def test_insufficient_system_resource_finish_reason(
    mock: MockServer, dialect: str, finish: str
) -> None:
    """DeepSeek's own reason where DeepSeek is spoken; the gateways document no such value, so
    their catalogues map it (the session server checks every answer against its schema)."""
    mock.add(INTERRUPTED)
    with sdk(mock, dialect) as client:
        completion = ask(client, dialect)
        chunks = list(ask(client, dialect, stream=True))
    assert completion.choices[0].finish_reason == finish
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == finish
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Partial"
    # Both answered whole: no 500 from the server's own check (the last two: an exchange of
    # the test before may be recorded after the reset).
    assert [entry.status for entry in mock.journal.wait_for(2)[-2:]] == [200, 200]


def test_a_catalogue_chooses_what_a_gateway_answers_for_a_finish_reason(tmp_path: Any) -> None:
    from mockserver.resources import data_dir

    document = json.loads((data_dir("fixtures") / "catalog" / "acedata.json").read_text("utf-8"))
    path = tmp_path / "acedata.json"

    def answered(mapping: Json) -> str | None:
        document["eras"][0]["finish_reasons"] = mapping
        path.write_text(json.dumps(document), "utf-8")
        settings = Settings(port=0, catalogs=(path,), rules=(INTERRUPTED,))
        with MockServer(settings) as server, sdk(server, "acedata") as client:
            finish: str | None = ask(client, "acedata").choices[0].finish_reason
            return finish

    assert answered({"insufficient_system_resource": {"as": "stop"}}) == "stop"
    # null: passed through as DeepSeek sends it
    assert answered({"insufficient_system_resource": None}) == "insufficient_system_resource"


def test_one_off_fault_header(mock: MockServer) -> None:
    with (
        sdk(mock, default_headers={"X-Mock-Fault": "503"}) as client,
        pytest.raises(openai.InternalServerError),
    ):
        ask(client)
    with sdk(mock) as client:
        ask(client)
    assert statuses(mock) == [503, 200]
    bad = httpx.post(
        mock.url + "/chat/completions",
        json={"model": "deepseek-chat", "messages": MESSAGES},
        headers=AUTH | {"X-Mock-Fault": "nonsense=1"},
    )
    assert bad.status_code == 400 and "x-mock-fault" in bad.json()["error"]["message"]
    counted = httpx.post(
        mock.url + "/chat/completions",
        json={"model": "deepseek-chat", "messages": MESSAGES},
        headers=AUTH | {"X-Mock-Fault": "503x99"},
    )
    assert counted.status_code == 400
    assert "xN counts requests" in counted.json()["error"]["message"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("503", Rule(name="--fault 503", reply=ErrorReply(status=503))),
        ("503x2", Rule(name="--fault 503x2", reply=ErrorReply(status=503), times=2)),
        (
            "429:retry_after=2",
            Rule(name="--fault 429:retry_after=2", reply=ErrorReply(status=429, retry_after=2)),
        ),
        ("cut_after=5", Rule(name="--fault cut_after=5", delivery=Delivery(cut_after=5))),
        (
            "reset_after=3x1",
            Rule(
                name="--fault reset_after=3x1", delivery=Delivery(cut_after=3, reset=True), times=1
            ),
        ),
        ("empty_body", Rule(name="--fault empty_body", delivery=Delivery(body=""))),
    ],
)
def test_fault_shortcuts(spec: str, expected: Rule) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("200", "200 is not an error status (400-599)"),
        ("slow", "unknown fault 'slow'"),
        ("cut_after=x", "expected STATUS[xN][:key=value,...] or SETTING=N[xN]"),
        ("cut_after=y", "cut_after needs a whole number, 0 or more, e.g. cut_after=3, not 'y'"),
        ("cut_after=-1", "cut_after needs a whole number, 0 or more, e.g. cut_after=3, not '-1'"),
        ("503:colour=red", "unknown option 'colour'"),
        ("429:retry_after=abc", "retry_after needs a number, e.g. retry_after=2, not 'abc'"),
    ],
)
def test_fault_shortcut_mistakes_are_explained(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_fault(spec)


# ------------------------------------------------------------------ stateful behaviour


def test_times_is_exact_under_parallel_load(mock: MockServer) -> None:
    mock.add(Rule(name="seven", reply=ErrorReply(status=503), times=7))

    async def main() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            body = {"model": "deepseek-chat", "messages": MESSAGES}
            calls = [
                client.post(mock.url + "/chat/completions", json=body, headers=AUTH)
                for _ in range(60)
            ]
            return [r.status_code for r in await asyncio.gather(*calls)]

    results = asyncio.run(main())
    assert results.count(503) == 7 and results.count(200) == 53
    assert mock.scenario.uses() == {"seven": 7, **{r.name: 0 for r in mock.mock.startup}}


def test_sequence_of_rules_by_times(mock: MockServer) -> None:
    mock.add(
        Rule(name="first overloaded", reply=ErrorReply(status=503), times=1),
        Rule(name="then limited", reply=ErrorReply(status=429), times=1),
        Rule(name="then canned", reply=Reply(content="finally"), times=1),
    )
    with sdk(mock) as client:
        outcomes = []
        for _ in range(4):
            try:
                outcomes.append(ask(client).choices[0].message.content)
            except openai.APIStatusError as exc:
                outcomes.append(exc.status_code)
    assert outcomes[:3] == [503, 429, "finally"]
    assert [e.rule for e in mock.journal.entries()][:3] == [
        "first overloaded",
        "then limited",
        "then canned",
    ]


def test_seeded_probability_is_reproducible() -> None:
    def run() -> list[int]:
        with MockServer(Settings(port=0, era=LATE_2025, seed=42)) as server:
            server.add(Rule(name="flaky", reply=ErrorReply(status=500), probability=0.5))
            body = {"model": "deepseek-chat", "messages": MESSAGES}
            return [
                httpx.post(server.url + "/chat/completions", json=body, headers=AUTH).status_code
                for _ in range(20)
            ]

    first, second = run(), run()
    assert first == second
    assert 0 < first.count(500) < 20


def test_concurrency_limit_is_exact() -> None:
    with MockServer(Settings(port=0, era=LATE_2025, max_concurrent=5)) as server:
        held = Delivery(gap=0.5)
        server.add(Rule(name="slow", match=Match(stream=True), delivery=held))

        async def main() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"model": "deepseek-chat", "messages": MESSAGES, "stream": True}
                streams = [
                    client.stream("POST", server.url + "/chat/completions", json=body, headers=AUTH)
                    for _ in range(5)
                ]
                opened = [await s.__aenter__() for s in streams]
                # Kept referenced: a dropped line iterator is finalised, which can close its
                # stream and free a slot while the test still counts on it.
                lines = [response.aiter_lines() for response in opened]
                for line in lines:  # all five are in flight once each has sent a frame
                    await line.__anext__()
                plain = {"model": "deepseek-chat", "messages": MESSAGES}
                extra = await asyncio.gather(
                    *(
                        client.post(server.url + "/chat/completions", json=plain, headers=AUTH)
                        for _ in range(15)
                    )
                )
                for s in streams:
                    await s.__aexit__(None, None, None)
                return [r.status_code for r in extra]

        assert asyncio.run(main()) == [429] * 15
        server.journal.wait_for(20)
        body = {"model": "deepseek-chat", "messages": MESSAGES}
        assert (
            httpx.post(server.url + "/chat/completions", json=body, headers=AUTH).status_code == 200
        )
        limited = [e for e in server.journal.entries() if e.status == 429]
        assert len(limited) == 15


def test_rate_window_is_exact_and_says_when_to_retry() -> None:
    with MockServer(Settings(port=0, era=LATE_2025, rate_limit=3, rate_window=60)) as server:

        async def main() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"model": "deepseek-chat", "messages": MESSAGES}
                return await asyncio.gather(
                    *(
                        client.post(server.url + "/chat/completions", json=body, headers=AUTH)
                        for _ in range(10)
                    )
                )

        responses = asyncio.run(main())
        assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 7
        limited = [r for r in responses if r.status_code == 429]
        assert all(0 < float(r.headers["retry-after"]) <= 60 for r in limited)
        assert_valid("deepseek/error.schema.json", limited[0].json())


@pytest.mark.parametrize(
    ("dialect", "status", "code"),
    [("deepseek", 402, None), ("aimlapi", 403, None), ("acedata", 403, "used_up")],
)
def test_balance_runs_out(dialect: str, status: int, code: str | None) -> None:
    with MockServer(Settings(port=0, era=LATE_2025, balance_tokens=60)) as server:
        url = server.url_for(dialect) + "/chat/completions"
        body = {"model": MODELS[dialect], "messages": MESSAGES}
        codes = [httpx.post(url, json=body, headers=AUTH).status_code for _ in range(6)]
        assert codes[0] == 200 and codes[-1] == status
        refused = httpx.post(url, json=body, headers=AUTH).json()
        assert_valid(f"{dialect}/error.schema.json", refused)
        if code:
            assert refused["error"]["code"] == code
        if dialect == "deepseek":
            balance = httpx.get(server.url + "/user/balance", headers=AUTH).json()
            assert balance["is_available"] is False
            with sdk(server, retries=2) as client, pytest.raises(openai.APIStatusError) as caught:
                ask(client)
            assert caught.value.status_code == 402


@pytest.mark.parametrize(
    "setting",
    [
        "first_byte=-1",
        "gap=nan",
        "gap=inf",
        "keep_alives=1, keep_alive_interval=-1",
        "cut_after=-1",
        "tokens_per_second=0",
        "first_byte=1e9",
    ],
)
def test_impossible_timings_are_refused_up_front(mock: MockServer, setting: str) -> None:
    body = {"model": "deepseek-chat", "messages": MESSAGES, "stream": True}
    response = httpx.post(
        mock.url + "/chat/completions", json=body, headers=AUTH | {"X-Mock-Delivery": setting}
    )
    assert response.status_code == 400
    assert "x-mock-delivery" in response.json()["error"]["message"]


def test_acedata_auth_faults_are_401_with_their_own_message(mock: MockServer) -> None:
    mock.add(Rule(name="expired", reply=ErrorReply(status=401, code="token_expired"), times=1))
    url = mock.url_for("acedata") + "/chat/completions"
    body = {"model": "deepseek-v3", "messages": MESSAGES}
    expired = httpx.post(url, json=body, headers=AUTH)
    assert expired.status_code == 401
    assert expired.json()["error"] == {
        "code": "token_expired",
        "message": "The specified token has expired.",
    }
    refused = httpx.post(url, json=body, headers=AUTH | {"X-Mock-Fault": "401"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_token"


def test_plain_option_and_unknown_fault_words() -> None:
    assert parse_fault("401:plain=true").reply == ErrorReply(status=401, plain=True)
    with pytest.raises(ValueError, match=r"unknown fault 'bogus'.*cut_after=N"):
        parse_fault("bogus")
    with pytest.raises(ValueError, match=r"x0 would never answer"):
        parse_fault("503x0")


@pytest.mark.parametrize(
    ("limits", "refused"),
    [({"rate_limit": 1, "rate_window": 60}, 429), ({"balance_tokens": 1}, 402)],
    ids=["rate limit", "balance"],
)
def test_a_refused_request_does_not_use_up_a_rule(limits: dict[str, Any], refused: int) -> None:
    """strict=True counts `times`: a request the account refuses was never answered by it."""
    with MockServer(Settings(port=0, era=LATE_2025, **limits)) as server:
        body = {"model": "deepseek-chat", "messages": MESSAGES}
        assert httpx.post(server.url + "/chat/completions", json=body, headers=AUTH).is_success
        server.add(Rule(name="once", reply=ErrorReply(status=503), times=1))
        again = httpx.post(server.url + "/chat/completions", json=body, headers=AUTH)
        assert again.status_code == refused
        assert server.scenario.uses()["once"] == 0
        assert server.journal.entries()[-1].rule is None  # no rule answered it


def test_each_rules_draws_do_not_depend_on_the_order_requests_arrive() -> None:
    """Two probability rules, the same requests in two orders: each rule takes the same ones
    of the requests it sees, counted in its own order."""

    def run(order: list[bool]) -> dict[bool, list[int]]:
        with MockServer(Settings(port=0, era=LATE_2025, seed=42)) as server:
            for stream in (True, False):
                server.add(
                    Rule(
                        name=f"flaky stream={stream}",
                        match=Match(stream=stream),
                        reply=ErrorReply(status=500),
                        probability=0.5,
                    )
                )
            seen: dict[bool, list[int]] = {True: [], False: []}
            for stream in order:
                body = {"model": "deepseek-chat", "messages": MESSAGES, "stream": stream}
                status = httpx.post(
                    server.url + "/chat/completions", json=body, headers=AUTH
                ).status_code
                seen[stream].append(status)
            return seen

    grouped = run([True] * 12 + [False] * 12)
    interleaved = run([True, False] * 12)
    assert grouped == interleaved
    assert 0 < grouped[True].count(500) < 12 and 0 < grouped[False].count(500) < 12


def test_frame_0_faults_break_a_non_streamed_body(mock: MockServer) -> None:
    """A non-streamed answer is one frame: malformed_at=0 cuts its JSON, error_at=0 is the
    in-band error object with status 200."""
    body = {"model": "deepseek-chat", "messages": MESSAGES}
    garbled = httpx.post(
        mock.url + "/chat/completions",
        json=body,
        headers=AUTH | {"X-Mock-Delivery": "malformed_at=0"},
    )
    assert garbled.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(garbled.content)
    mock.add(Rule(name="in-band", delivery=Delivery(error_at=0)))
    with sdk(mock) as client:
        reply = ask(client)
    assert reply.model_extra is not None and reply.model_extra["error"]["type"] == "server_error"


@pytest.mark.parametrize(
    "fault", ["malformed_at=3", "error_at=1", "cut_after=3", "reset_after=1", "stall_after=1"]
)
def test_a_later_frame_fault_on_a_non_streamed_body_is_refused(
    mock: MockServer, fault: str
) -> None:
    """A non-streamed body is frame 0: a fault at or after frame 1 could never happen (a cut
    or a stall after it would leave the body whole), so it is a 400 rather than skipped."""
    body = {"model": "deepseek-chat", "messages": MESSAGES}
    # The delivery header spells a reset as a cut with `reset`.
    spelled = {
        "X-Mock-Fault": fault,
        "X-Mock-Delivery": fault.replace("reset_after=", "reset,cut_after="),
    }
    for header, words in spelled.items():
        refused = httpx.post(
            mock.url + "/chat/completions", json=body, headers=AUTH | {header: words}
        )
        assert refused.status_code == 400, refused.text
        message = refused.json()["error"]["message"]
        assert f"{fault} is past the end of a non-streamed answer" in message
    with httpx.stream(
        "POST",
        mock.url + "/chat/completions",
        json=body | {"stream": True},
        headers=AUTH | {"X-Mock-Fault": fault},
        timeout=10,
    ) as streamed:
        assert streamed.status_code == 200  # a stream has later frames
