"""Streams over a real socket: frames byte-faithful to each provider, flushed as produced,
and nothing left behind when clients leave."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any, cast

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from openai.types.chat import ChatCompletionToolParam

from mockserver.resources import data_dir
from mockserver.schemas import assert_valid
from mockserver.server import MockServer
from mockserver.streaming import join
from tests.sse import Stream, parse

Json = dict[str, Any]
AUTH = {"Authorization": "Bearer sk-test"}
MODELS = {"deepseek": "deepseek-chat", "aimlapi": "deepseek-chat", "acedata": "deepseek-v3"}


def stream(
    server: MockServer, dialect: str, body: Json, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, Stream]:
    response = httpx.post(
        server.url_for(dialect) + "/chat/completions",
        json=body | {"stream": True},
        headers=AUTH | (headers or {}),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "content-length" not in response.headers
    return response, parse(response.content)


def body_for(dialect: str, text: str = "Tell me about streams", **extra: Any) -> Json:
    return {"model": MODELS[dialect], "messages": [{"role": "user", "content": text}]} | extra


def check_common(dialect: str, frames: Stream) -> list[Json]:
    assert frames.events[-1] == "[DONE]" and frames.events.count("[DONE]") == 1
    chunks = frames.chunks
    for chunk in chunks:
        assert_valid(f"{dialect}/chat-completion-chunk.schema.json", chunk)
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]]
    assert len(finishes) == 1
    return chunks


def test_deepseek_frames_without_include_usage(mock: MockServer) -> None:
    _, frames = stream(mock, "deepseek", body_for("deepseek"))
    chunks = check_common("deepseek", frames)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert all("usage" not in c for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"] == {
        "content": ""
    }
    assert (
        last["usage"]["total_tokens"]
        == last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"]
    )
    assert all(c["system_fingerprint"].startswith("fp_") for c in chunks)
    assert all('": ' not in e for e in frames.events), "compact JSON"


def test_deepseek_include_usage_sends_null_until_the_finish_chunk(mock: MockServer) -> None:
    body = body_for("deepseek", stream_options={"include_usage": True})
    chunks = check_common("deepseek", stream(mock, "deepseek", body)[1])
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["usage"]["completion_tokens"] == len(chunks) - 2  # one chunk per token
    assert chunks[-1]["choices"], "no separate usage-only chunk"


def test_aimlapi_sends_a_separate_usage_chunk(mock: MockServer) -> None:
    chunks = check_common("aimlapi", stream(mock, "aimlapi", body_for("aimlapi"))[1])
    finish = [i for i, c in enumerate(chunks) if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish == [len(chunks) - 2]
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["prompt_tokens"] > 0
    assert usage_chunk["meta"]["usage"]["credits_used"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


def test_acedata_hello_reproduces_the_capture(mock: MockServer) -> None:
    capture = json.loads(
        (data_dir("fixtures") / "captures/acedata/seed-stream-hello.json").read_text("utf-8")
    )
    response = httpx.post(
        mock.url + capture["request"]["path"],
        json=capture["request"]["json"],
        headers={"authorization": "Bearer {token}"},
    )
    frames = parse(response.content)
    chunks = check_common("acedata", frames)
    live = [json.loads(e) for e in capture["response"]["sse"] if e != "[DONE]"]
    assert [c["choices"][0]["delta"] for c in chunks] == [c["choices"][0]["delta"] for c in live]
    assert chunks[-1]["usage"] == live[-1]["usage"]
    # Byte for byte the same frames, once id and created are set to the captured ones.
    ours = [
        re.sub(r'"id": "[^"]+", "object": "chat.completion.chunk", "created": \d+', "", e)
        for e in frames.events
    ]
    theirs = [
        re.sub(r'"id": "[^"]+", "object": "chat.completion.chunk", "created": \d+', "", e)
        for e in capture["response"]["sse"]
    ]
    assert ours == theirs
    assert re.fullmatch(r"\w{7}-\w{6}-[0-9a-f]{16}-PDX", chunks[0]["id"])


def test_sdk_reassembles_the_same_message_and_usage(mock: MockServer) -> None:
    with openai.OpenAI(base_url=mock.base_url, api_key="sk-test", max_retries=0) as sdk:
        plain = sdk.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "Hi there"}]
        )
        parts = list(
            sdk.chat.completions.create(
                model="deepseek-chat",
                messages=[{"role": "user", "content": "Hi there"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(p.choices[0].delta.content or "" for p in parts if p.choices)
    assert text == plain.choices[0].message.content
    assert parts[-1].usage is not None and plain.usage is not None
    assert parts[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert parts[-1].usage.prompt_tokens == plain.usage.prompt_tokens


def test_nothing_in_a_prompt_breaks_the_framing(mock: MockServer) -> None:
    trap = 'say "\n\ndata: [DONE]\n\n" and\r\n: comment'
    body = body_for("deepseek", trap) | {"stream": True}
    mock.add(_echo_rule(trap))
    _, frames = stream(mock, "deepseek", body)
    chunks = check_common("deepseek", frames)
    assert join(chunks)["content"] == trap


def _echo_rule(text: str) -> Any:
    from mockserver.scenario import Reply, Rule

    return Rule(name="echo", reply=Reply(content=text))


def test_keep_alive_lines_before_a_stream_still_parse_in_the_sdk(mock: MockServer) -> None:
    headers = {"X-Mock-Delivery": "keep_alives=3"}
    _, frames = stream(mock, "deepseek", body_for("deepseek"), headers)
    assert frames.comments == [": keep-alive"] * 3
    raw = httpx.post(
        mock.url + "/chat/completions",
        json=body_for("deepseek", stream=True),
        headers=AUTH | headers,
    )
    assert raw.content.startswith(b": keep-alive\n\n: keep-alive\n\n: keep-alive\n\ndata: {")
    with openai.OpenAI(
        base_url=mock.base_url, api_key="sk-test", max_retries=0, default_headers=headers
    ) as sdk:
        parts = list(
            sdk.chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
        plain = sdk.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "x"}]
        )
    assert (
        "".join(p.choices[0].delta.content or "" for p in parts) == plain.choices[0].message.content
    )


def test_blank_lines_before_a_json_body_still_parse(mock: MockServer) -> None:
    headers = {"X-Mock-Delivery": "keep_alives=2"}
    raw = httpx.post(
        mock.url + "/chat/completions", json=body_for("deepseek"), headers=AUTH | headers
    )
    assert raw.content.startswith(b"\n\n{")
    with openai.OpenAI(
        base_url=mock.base_url, api_key="sk-test", max_retries=0, default_headers=headers
    ) as sdk:
        completion = sdk.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "x"}]
        )
    assert completion.choices[0].message.content


def test_thinking_model_streams_reasoning_then_content(mock: MockServer) -> None:
    body = {"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "Why?"}]}
    chunks = check_common("deepseek", stream(mock, "deepseek", body)[1])
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": None, "reasoning_content": ""}
    kinds = ["r" if d.get("reasoning_content") else "c" for d in deltas[1:-1]]
    assert kinds == sorted(kinds, reverse=True), "all reasoning before any content"
    assert deltas[-1] == {"content": "", "reasoning_content": None}
    plain = httpx.post(mock.url + "/chat/completions", json=body, headers=AUTH).json()
    joined = join(chunks)
    assert joined["reasoning_content"] == plain["choices"][0]["message"]["reasoning_content"]
    assert joined["content"] == plain["choices"][0]["message"]["content"]
    assert (
        chunks[-1]["usage"]["completion_tokens_details"]
        == plain["usage"]["completion_tokens_details"]
    )


def test_tool_calls_stream_as_openai_deltas(mock: MockServer) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "required": ["q"],
            },
        },
    }
    body = {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": "find it"}],
        "tools": [tool],
    }
    chunks = check_common("deepseek", stream(mock, "deepseek", body)[1])
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"].startswith("call_00_") and calls[0]["function"] == {
        "name": "lookup",
        "arguments": "",
    }
    assert all(set(call) == {"index", "function"} for call in calls[1:])
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert json.loads(join(chunks)["tool_calls"][0]["arguments"])["q"]
    with openai.OpenAI(base_url=mock.base_url, api_key="sk-test", max_retries=0) as sdk:
        parts = sdk.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": "find it"}],
            tools=[cast(ChatCompletionToolParam, tool)],
            stream=True,
        )
        fragments = ""
        for part in parts:
            for call in (part.choices[0].delta.tool_calls or []) if part.choices else []:
                fragments += (call.function.arguments if call.function else None) or ""
    assert json.loads(fragments)["q"]


REQUESTS = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["deepseek-chat", "deepseek-reasoner"]),
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.just("user"), "content": st.text(min_size=1, max_size=80)}
            ),
            min_size=1,
            max_size=3,
        ),
    },
    optional={
        "max_tokens": st.integers(min_value=1, max_value=80),
        "stop": st.lists(st.sampled_from(["the", "a", ".", "test"]), max_size=2),
        "response_format": st.just({"type": "json_object"}),
    },
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=REQUESTS)
def test_joined_deltas_equal_the_plain_completion(server: MockServer, body: Json) -> None:
    plain = httpx.post(server.url + "/chat/completions", json=body, headers=AUTH).json()
    streamed = httpx.post(
        server.url + "/chat/completions",
        json=body | {"stream": True, "stream_options": {"include_usage": True}},
        headers=AUTH,
    )
    chunks = check_common("deepseek", parse(streamed.content))
    joined = join(chunks)
    message = plain["choices"][0]["message"]
    assert joined["content"] == message["content"]
    assert joined["reasoning_content"] == (message.get("reasoning_content") or "")
    assert joined["finish_reason"] == plain["choices"][0]["finish_reason"]
    usage, streamed_usage = plain["usage"], chunks[-1]["usage"]
    for key in ("prompt_tokens", "completion_tokens", "total_tokens", "completion_tokens_details"):
        assert streamed_usage.get(key) == usage.get(key)


def test_the_first_chunk_arrives_before_the_last_is_sent(mock: MockServer) -> None:
    # 20 tokens 50 ms apart: while we hold the first frame, the server is still writing, so
    # the exchange is not in the journal yet (it is recorded as the last byte leaves).
    headers = AUTH | {"X-Mock-Delivery": "gap=0.05"}
    body = body_for("deepseek") | {"stream": True, "max_tokens": 20}
    with httpx.stream(
        "POST", mock.url + "/chat/completions", json=body, headers=headers
    ) as response:
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
        assert len(mock.journal) == 0
        rest = [line for line in lines if line.startswith("data: ")]
    assert rest[-1] == "data: [DONE]"
    assert mock.journal.wait_for(1)[0].complete


def _open_bodies(server: MockServer) -> int:
    count: int = httpx.get(server.url + "/__mock/health").json()["open_bodies"]
    return count


@pytest.mark.parametrize("dialect", ["deepseek", "acedata"])
def test_hundreds_of_disconnects_leave_nothing_behind(mock: MockServer, dialect: str) -> None:
    rounds = 200
    headers = AUTH | {"X-Mock-Delivery": "gap=0.5"}  # each stream would take ~30 s to finish

    async def leave_early(client: httpx.AsyncClient) -> None:
        body = body_for(dialect) | {"stream": True}
        async with client.stream(
            "POST", mock.url_for(dialect) + "/chat/completions", json=body, headers=headers
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    return  # close the connection mid-stream

    async def main() -> None:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            await asyncio.wait_for(
                asyncio.gather(*(leave_early(client) for _ in range(rounds))), 60
            )

    asyncio.run(main())
    entries = mock.journal.wait_for(rounds, timeout=30)
    assert len(entries) == rounds
    assert not any(entry.complete for entry in entries)
    assert all(entry.status == 200 and entry.stream for entry in entries)
    assert _open_bodies(mock) == 0
    # ... and the server still answers everyone else.
    _, frames = stream(mock, dialect, body_for(dialect))
    check_common(dialect, frames)


def test_hundreds_of_concurrent_streams_complete(mock: MockServer) -> None:
    count = 300

    async def one(client: httpx.AsyncClient, i: int) -> list[Json]:
        body = body_for("deepseek", f"stream number {i}") | {"stream": True}
        response = await client.post(mock.url + "/chat/completions", json=body, headers=AUTH)
        return check_common("deepseek", parse(response.content))

    async def main() -> list[list[Json]]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await asyncio.wait_for(
                asyncio.gather(*(one(client, i) for i in range(count))), 90
            )

    results = asyncio.run(main())
    assert len(results) == count
    assert len({chunks[0]["id"] for chunks in results}) == count
    entries = mock.journal.wait_for(count)
    assert all(entry.complete for entry in entries)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_first_byte_holds_back_the_headers_too(mock: MockServer, stream: bool) -> None:
    """The first byte of an answer is its status line: a client's time to first byte (and its
    connect-to-headers timeout) sees the whole wait."""
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": "Bearer sk-test", "X-Mock-Delivery": "first_byte=0.4"}
    with httpx.Client(base_url=mock.url) as client:
        started = time.perf_counter()
        with client.stream(
            "POST", "/chat/completions", json=body | {"stream": stream}, headers=headers
        ) as response:
            waited = time.perf_counter() - started
            response.read()
    assert response.status_code == 200
    assert waited >= 0.4
    (entry,) = mock.journal.entries()
    assert entry.ttfb_ms is not None and entry.ttfb_ms >= 400
