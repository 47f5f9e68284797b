"""Non-streaming chat completions over a real socket, per dialect, as clients see them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from mockserver import tokens
from mockserver.schemas import assert_valid
from mockserver.server import MockServer

Json = dict[str, Any]
AUTH = {"Authorization": "Bearer sk-test"}
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]


def post(server: MockServer, dialect: str, body: Json, **kw: Any) -> httpx.Response:
    headers = AUTH | kw.pop("headers", {})
    return httpx.post(
        server.url_for(dialect) + "/chat/completions", json=body, headers=headers, **kw
    )


def client(server: MockServer, dialect: str = "deepseek") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url_for(dialect), api_key="sk-test", max_retries=0)


def test_sdk_gets_a_deepseek_completion_with_exact_usage(mock: MockServer) -> None:
    with client(mock) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(model="deepseek-chat", messages=HELLO)
    completion = raw.parse()
    body = json.loads(raw.http_response.content)
    assert_valid("deepseek/chat-completion.schema.json", body)
    assert b'": ' not in raw.http_response.content, "DeepSeek sends compact JSON"
    assert len(raw.headers["x-ds-trace-id"]) == 32
    assert list(body) == [
        "id", "object", "created", "model", "choices", "usage", "system_fingerprint",
    ]  # fmt: skip
    usage = completion.usage
    assert usage is not None
    # V3.2's encoding: BOS, <｜User｜>, "Hello", <｜Assistant｜>, </think> (non-thinking)
    assert usage.prompt_tokens == tokens.count(tokens.render_prompt(HELLO, template="v3.2")) == 5
    content = completion.choices[0].message.content or ""
    assert usage.completion_tokens == tokens.count(content) > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert body["usage"]["prompt_cache_hit_tokens"] + body["usage"]["prompt_cache_miss_tokens"] == 5


def test_the_model_list_and_the_balance_carry_the_trace_header_as_every_answer_does(
    mock: MockServer,
) -> None:
    # DeepSeek puts x-ds-trace-id on every response (200s and errors alike); the AI/ML API
    # its x-inference-id.
    with client(mock) as sdk:
        listed = sdk.models.with_raw_response.list()
    base = mock.url_for("deepseek")
    balance = httpx.get(base + "/user/balance", headers=AUTH)
    traces = [listed.headers["x-ds-trace-id"], balance.headers["x-ds-trace-id"]]
    assert all(len(t) == 32 and int(t, 16) >= 0 for t in traces) and traces[0] != traces[1]
    aiml = httpx.get(mock.url_for("aimlapi") + "/models")
    assert aiml.status_code == 200
    assert len(aiml.headers["x-inference-id"]) == 36


def test_the_seed_multi_turn_example_runs_unchanged_against_acedata(mock: MockServer) -> None:
    # The AceData page's own `requests` example, only the URL swapped.
    payload = {
        "model": "deepseek-v3",
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi! How can I assist you today?"},
            {"role": "user", "content": "What I say just now?"},
        ],
    }
    headers = {
        "accept": "application/json",
        "authorization": "Bearer {token}",
        "content-type": "application/json",
    }
    response = httpx.post(mock.url + "/deepseek/chat/completions", json=payload, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert_valid("acedata/chat-completion.schema.json", body)
    assert body["usage"] == {"prompt_tokens": 22, "completion_tokens": 57, "total_tokens": 79}
    assert body["choices"][0]["flag"] == 0 and body["id"].startswith("as-")
    assert b'"object": "chat.completion"' in response.content, "AceData sends spaced JSON"


def test_aimlapi_answers_with_its_canonical_model_and_extras(mock: MockServer) -> None:
    response = post(mock, "aimlapi", {"model": "deepseek-chat", "messages": HELLO})
    body = response.json()
    assert_valid("aimlapi/chat-completion.schema.json", body)
    assert body["model"] == "deepseek/deepseek-chat-v3-0324"
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "" and message["refusal"] is None
    assert message["content"].startswith("Hello! 😊 How can I assist you today?")
    assert body["meta"]["usage"]["credits_used"] > 0
    assert response.headers["x-inference-id"]
    assert int(response.headers["x-aimlapi-credits-used"]) == body["meta"]["usage"]["credits_used"]


def test_a_repeated_prefix_hits_the_cache(mock: MockServer) -> None:
    long_prompt = "Summarise the following notes. " + "The quick brown fox jumps. " * 60
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": long_prompt}]}
    first = post(mock, "deepseek", body).json()["usage"]
    second = post(mock, "deepseek", body).json()["usage"]
    assert first["prompt_cache_hit_tokens"] == 0
    assert second["prompt_cache_hit_tokens"] > 0
    assert second["prompt_tokens_details"]["cached_tokens"] == second["prompt_cache_hit_tokens"]
    for usage in (first, second):
        hit, miss = usage["prompt_cache_hit_tokens"], usage["prompt_cache_miss_tokens"]
        assert hit + miss == usage["prompt_tokens"]


def test_max_tokens_truncates_with_finish_reason_length(mock: MockServer) -> None:
    body = post(mock, "deepseek", {"model": "deepseek-chat", "messages": HELLO, "max_tokens": 5})
    data = body.json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 5


def test_stop_sequence_ends_the_reply_before_it(mock: MockServer) -> None:
    full = post(mock, "deepseek", {"model": "deepseek-chat", "messages": HELLO}).json()
    text = full["choices"][0]["message"]["content"]
    word = text.split()[3]
    cut = post(mock, "deepseek", {"model": "deepseek-chat", "messages": HELLO, "stop": [word]})
    choice = cut.json()["choices"][0]
    assert choice["message"]["content"] == text[: text.index(word)]
    assert choice["finish_reason"] == "stop"


def test_same_seed_and_request_give_the_same_words(mock: MockServer) -> None:
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Tell me a fact"}]}
    first, second = (post(mock, "deepseek", body).json() for _ in range(2))
    assert first["choices"][0]["message"] == second["choices"][0]["message"]
    assert first["id"] != second["id"]


def test_json_mode_content_parses(mock: MockServer) -> None:
    body = {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": "Answer in json"}],
        "response_format": {"type": "json_object"},
    }
    content = post(mock, "deepseek", body).json()["choices"][0]["message"]["content"]
    assert isinstance(json.loads(content), dict)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["location", "unit"],
        },
    },
}


def test_tools_give_a_tool_call_with_valid_arguments(mock: MockServer) -> None:
    with client(mock) as sdk:
        completion = sdk.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function"
    arguments = json.loads(calls[0].function.arguments)
    assert set(arguments) == {"location", "unit"} and arguments["unit"] in ("celsius", "fahrenheit")
    assert calls[0].id.startswith("call_00_")


def test_a_tool_result_gets_a_text_answer(mock: MockServer) -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_00_x",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_00_x", "content": "21 °C"},
    ]
    body = {"model": "deepseek-chat", "messages": messages, "tools": [WEATHER_TOOL]}
    choice = post(mock, "deepseek", body).json()["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["content"]


def test_reasoner_thinks_first_and_counts_reasoning_tokens(mock: MockServer) -> None:
    data = post(mock, "deepseek", {"model": "deepseek-reasoner", "messages": HELLO}).json()
    message = data["choices"][0]["message"]
    details = data["usage"]["completion_tokens_details"]
    assert details["reasoning_tokens"] == tokens.count(message["reasoning_content"]) > 0
    assert data["usage"]["completion_tokens"] == details["reasoning_tokens"] + tokens.count(
        message["content"]
    )


def test_logprobs_on_the_chat_model(mock: MockServer) -> None:
    body = {"model": "deepseek-chat", "messages": HELLO, "logprobs": True, "top_logprobs": 3}
    data = post(mock, "deepseek", body).json()
    items = data["choices"][0]["logprobs"]["content"]
    assert len(items) == data["usage"]["completion_tokens"]
    assert all(len(item["top_logprobs"]) == 3 and item["logprob"] <= 0 for item in items)


def test_acedata_gives_n_choices(mock: MockServer) -> None:
    body = {"model": "deepseek-v3.2-exp", "messages": HELLO, "n": 3}
    data = post(mock, "acedata", body).json()
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    assert_valid("acedata/chat-completion.schema.json", data)


def test_models_and_balance(mock: MockServer) -> None:
    models = httpx.get(mock.url + "/models", headers=AUTH).json()
    assert_valid("deepseek/models.schema.json", models)
    assert {"deepseek-chat", "deepseek-reasoner"} <= {m["id"] for m in models["data"]}
    balance = httpx.get(mock.url + "/user/balance", headers=AUTH).json()
    assert_valid("deepseek/balance.schema.json", balance)
    aiml = httpx.get(mock.url_for("aimlapi") + "/models").json()  # no key needed there
    assert_valid("aimlapi/models.schema.json", aiml)


@pytest.mark.parametrize("dialect", ["deepseek", "aimlapi", "acedata"])
def test_every_dialect_with_the_sdk(mock: MockServer, dialect: str) -> None:
    model = {"deepseek": "deepseek-chat", "aimlapi": "deepseek-chat", "acedata": "deepseek-v3"}
    with client(mock, dialect) as sdk:
        completion = sdk.chat.completions.create(model=model[dialect], messages=HELLO)
    assert completion.choices[0].message.content
    # DeepSeek's own API counts with V3.2's encoding (one </think> more); the gateways' V3
    # models with V3's template, as their captures show.
    expected = {"deepseek": 5, "aimlapi": 4, "acedata": 4}[dialect]
    assert completion.usage is not None and completion.usage.prompt_tokens == expected
    assert [entry.dialect for entry in mock.journal.entries()] == [dialect]


def test_aimlapi_echoes_a_valid_client_request_id(mock: MockServer) -> None:
    body = {"model": "deepseek-chat", "messages": HELLO}
    echoed = post(mock, "aimlapi", body, headers={"X-Client-Request-Id": "trace-42.a:b"})
    assert echoed.headers["x-client-request-id"] == "trace-42.a:b"
    dropped = post(mock, "aimlapi", body, headers={"X-Client-Request-Id": "not valid!"})
    assert "x-client-request-id" not in dropped.headers
