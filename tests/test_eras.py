"""DeepSeek as it is today, and as it was: every era's models, rules and texts, against a real
server. The texts are the ones fixtures/catalog/deepseek.json quotes with their sources."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from mockserver import tokens
from mockserver.catalog import catalog_from_json, era_moment, packaged, parse_date, read_catalog
from mockserver.resources import data_dir
from mockserver.schemas import assert_valid
from mockserver.server import MockServer
from mockserver.settings import Settings

Json = dict[str, Any]
AUTH = {"Authorization": "Bearer sk-test"}
HI: list[Json] = [{"role": "user", "content": "hi"}]
TOOL: Json = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CALL: Json = {
    "id": "call_00_abc",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
}
NEWEST_UNKNOWN = (
    "The supported API model names are deepseek-flash, deepseek-v4-pro, deepseek-v4-flash, "
    "and deepseek-v4-flash-vision-exp, but you passed {}."
)


def post(
    server: MockServer, body: Json, *, era: str | None = None, path: str = "/chat/completions"
) -> httpx.Response:
    headers = AUTH | ({"X-Mock-Era": era} if era else {})
    return httpx.post(server.url + path, json=body, headers=headers, timeout=30)


def refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert_valid("deepseek/error.schema.json", body)
    return str(body["error"]["message"])


def flash(**extra: Any) -> Json:
    return {"model": "deepseek-flash", "messages": HI} | extra


def tool_loop(assistant: Json) -> list[Json]:
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]} | assistant,
        {"role": "tool", "tool_call_id": "call_00_abc", "content": "sunny"},
    ]


# --- the models of each era --------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    ["deepseek-flash", "deepseek-v4-flash", "deepseek-v4-pro", "deepseek-v4-flash-vision-exp"],
)
def test_newest_era_serves_todays_models(mock_now: MockServer, model: str) -> None:
    response = post(mock_now, {"model": model, "messages": HI})
    assert response.status_code == 200, response.text
    answered = response.json()["model"]
    # The two temporary aliases of V4.1 Flash answer as it (the legacy aliases' pattern).
    assert answered == {"deepseek-v4-pro": "deepseek-v4-pro"}.get(model, "deepseek-flash")
    assert response.json()["system_fingerprint"] == "fp_058df29938_prod0820_fp8_kvcache_20260402"


@pytest.mark.parametrize("model", ["deepseek-chat", "deepseek-reasoner", "gpt-4o"])
def test_retired_and_unknown_names_get_the_v4_text(mock_now: MockServer, model: str) -> None:
    message = refused(post(mock_now, {"model": model, "messages": HI}))
    assert message == NEWEST_UNKNOWN.format(model)


def test_the_probe_of_2026_09_01_is_reproduced_word_for_word(mock_now: MockServer) -> None:
    message = refused(post(mock_now, {"model": "deepseek-chat", "messages": HI}, era="2026-09-01"))
    assert message == (
        "The supported API model names are deepseek-v4-pro, deepseek-v4-flash, and "
        "deepseek-v4-flash-vision-exp, but you passed deepseek-chat."
    )


@pytest.mark.parametrize(
    ("era", "model", "status", "answered"),
    [
        ("v3.2", "deepseek-chat", 200, "deepseek-chat"),
        ("v3.2", "deepseek-flash", 400, None),
        ("2026-05-08", "deepseek-chat", 200, "deepseek-v4-flash"),  # the live capture's day
        ("2026-05-08", "deepseek-reasoner", 200, "deepseek-v4-flash"),
        ("2026-07-24T15:58Z", "deepseek-chat", 200, "deepseek-v4-flash"),
        ("2026-07-24T15:59Z", "deepseek-chat", 400, None),  # retired at 15:59 UTC
        ("2026-09-09", "deepseek-flash", 400, None),
        ("2026-09-10", "deepseek-flash", 200, "deepseek-flash"),
    ],
)
def test_each_date_serves_that_days_models(
    mock_now: MockServer, era: str, model: str, status: int, answered: str | None
) -> None:
    response = post(mock_now, {"model": model, "messages": HI, "max_tokens": 50}, era=era)
    assert response.status_code == status, response.text
    if answered is not None:
        assert response.json()["model"] == answered


def test_v32_reasoner_with_thinking_off_answers_as_deepseek_chat(mock: MockServer) -> None:
    body = {"model": "deepseek-reasoner", "messages": HI, "thinking": {"type": "disabled"}}
    answer = post(mock, body).json()
    assert answer["model"] == "deepseek-chat"
    assert "reasoning_content" not in answer["choices"][0]["message"]


def test_legacy_alias_has_v4_limits_in_the_v4_era(mock_now: MockServer) -> None:
    v4 = post(mock_now, {"model": "deepseek-chat", "messages": HI, "max_tokens": 9000}, era="v4")
    assert v4.status_code == 200, v4.text
    v32 = post(mock_now, {"model": "deepseek-chat", "messages": HI, "max_tokens": 9000}, era="v3.2")
    assert refused(v32) == "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"
    too_big = post(mock_now, flash(max_tokens=393217))
    assert refused(too_big) == (
        "Invalid max_tokens value, the valid range of max_tokens is [1, 393216]"
    )


def test_models_lists_the_eras_ids_with_2026_fields(mock_now: MockServer) -> None:
    now = httpx.get(mock_now.url + "/models", headers=AUTH).json()
    assert_valid("deepseek/models.schema.json", now)
    assert [m["id"] for m in now["data"]] == ["deepseek-v4-pro", "deepseek-flash"]
    flash_entry = now["data"][1]
    assert flash_entry["context_window"] == 1048576
    assert flash_entry["max_output_tokens"] == 393216
    assert flash_entry["input_modalities"] == ["file", "image", "text"]
    assert flash_entry["effort"] == {
        "supported_levels": ["low", "high", "max"],
        "default_level": "high",
    }
    old = httpx.get(mock_now.url + "/models", headers=AUTH | {"X-Mock-Era": "v3.2"}).json()
    assert old["data"] == [
        {"id": "deepseek-chat", "object": "model", "owned_by": "deepseek"},
        {"id": "deepseek-reasoner", "object": "model", "owned_by": "deepseek"},
    ]


def test_an_unknown_era_is_a_clear_400(mock_now: MockServer) -> None:
    message = refused(post(mock_now, flash(), era="2026-13-45"))
    assert message.startswith("x-mock-era: '2026-13-45' is not a date") or "unknown era" in message


# --- the V4 request rules, each with its text ---------------------------------------------------

RULES = [
    pytest.param(
        flash(tools=[TOOL], tool_choice="required"),
        "Thinking mode does not support this tool_choice",
        id="thinking + tool_choice required",
    ),
    pytest.param(
        flash(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}),
        "Thinking mode does not support this tool_choice",
        id="thinking + named tool_choice",
    ),
    pytest.param(
        flash(messages=tool_loop({}), tools=[TOOL]),
        "The `reasoning_content` in the thinking mode must be passed back to the API.",
        id="reasoning_content not passed back",
    ),
    pytest.param(
        flash(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
        "This response_format type is unavailable now",
        id="json_schema",
    ),
    pytest.param(
        flash(response_format={"type": "json_object"}),
        "Prompt must contain the word 'json' in some form to use 'response_format' of type "
        "'json_object'.",
        id="json_object without the word",
    ),
    pytest.param(
        flash(messages=[{"role": "developer", "content": "Be brief"}, *HI]),
        "Failed to deserialize the JSON body into the target type: messages[0].role: unknown "
        "variant `developer`, expected one of `system`, `user`, `assistant`, `tool`, "
        "`latest_reminder`",
        id="developer role",
    ),
    pytest.param(
        flash(messages=[*HI, {"role": "tool", "tool_call_id": "x", "content": "r"}]),
        "Messages with role 'tool' must be a response to a preceding message with 'tool_calls'",
        id="orphan tool message",
    ),
    pytest.param(
        flash(
            thinking={"type": "disabled"},
            messages=[
                *tool_loop({})[:2],
                {"role": "tool", "tool_call_id": "call_00_other", "content": "sunny"},
            ],
        ),
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id', The following tool_call_ids did not have response messages: "
        "call_00_abc",
        id="tool_call_id not answered",
    ),
    pytest.param(
        flash(thinking={"type": "disabled"}, messages=[*tool_loop({})[:2], *HI]),
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id' (insufficient tool messages following tool_calls message)",
        id="insufficient tool messages",
    ),
    pytest.param(
        flash(reasoning_effort="ultra2"),
        "Failed to deserialize the JSON body into the target type: reasoning_effort: unknown "
        "variant `ultra2`, expected one of `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, "
        "`max`",
        id="reasoning_effort unknown",
    ),
    pytest.param(
        flash(reasoning_effort=3),
        "Failed to parse the request body as JSON: reasoning_effort: expected value",
        id="reasoning_effort not a string",
    ),
    pytest.param(
        {
            "model": "deepseek-v4-pro",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                }
            ],
        },
        "Model do not support image input",
        id="image on a text model",
    ),
    pytest.param(
        {"model": "deepseek-flash", "messages": [{"role": "user", "content": [{"type": "nope"}]}]},
        "Failed to deserialize the JSON body into the target type: messages[0]: unknown variant "
        "`nope`, expected one of `text`, `image_url`, `file`",
        id="a made-up part type on the vision model",
    ),
    pytest.param(
        {"model": "deepseek-flash", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
        "Failed to deserialize the JSON body into the target type: messages[0].content[0]: "
        "missing field `text`",
        id="a text part without its text",
    ),
    pytest.param(
        flash(top_p=0), "Invalid top_p value, the valid range of top_p is (0, 1.0]", id="top_p 0"
    ),
    pytest.param(
        flash(top_p=1.5),
        "Invalid top_p value, the valid range of top_p is (0, 1.0]",
        id="top_p 1.5",
    ),
    pytest.param(flash(stop=["x"] * 17), "Stop string array too long: 17", id="stop over 16"),
    pytest.param(
        flash(top_logprobs=2),
        "Invalid top_logprobs and logprobs value, logprobs must be set to true if top_logprobs is "
        "used.",
        id="top_logprobs without logprobs",
    ),
    pytest.param(
        flash(logprobs=True, top_logprobs=21),
        "Invalid top_logprobs value, the valid range of top_logprobs is [0, 20].",
        id="top_logprobs over 20",
    ),
    pytest.param(
        flash(logprobs=True, top_logprobs=-1),
        "Failed to deserialize the JSON body into the target type: top_logprobs: invalid value: "
        "integer `-1`, expected u8",
        id="top_logprobs negative",
    ),
    pytest.param(
        flash(messages=[*HI, {"role": "assistant", "content": "```python\n", "prefix": True}]),
        'prefix is only available when using beta api (set base_url="https://api.deepseek.com/beta")',
        id="prefix outside /beta",
    ),
    pytest.param(
        flash(tools=[{**TOOL, "function": {**TOOL["function"], "strict": True}}]),
        "strict mode function calling is only available when using beta api "
        '(set base_url="https://api.deepseek.com/beta")',
        id="strict tool outside /beta",
    ),
]


@pytest.mark.parametrize(("body", "message"), RULES)
def test_v4_rules_refuse_with_deepseeks_text(
    mock_now: MockServer, body: Json, message: str
) -> None:
    assert refused(post(mock_now, body)) == message


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            flash(messages=tool_loop({"reasoning_content": ""}), tools=[TOOL]), id="passback"
        ),
        pytest.param(
            flash(messages=tool_loop({}), tools=[TOOL], thinking={"type": "disabled"}),
            id="no thinking",
        ),
        pytest.param(
            flash(messages=tool_loop({}), tools=[TOOL], reasoning_effort="none"), id="effort none"
        ),
        pytest.param(flash(tools=[TOOL], tool_choice="auto"), id="tool_choice auto"),
        pytest.param(
            flash(tools=[TOOL], tool_choice="required", thinking={"type": "disabled"}),
            id="required, no thinking",
        ),
        pytest.param(
            flash(
                response_format={"type": "json_object"},
                messages=[{"role": "user", "content": "Answer in JSON"}],
            ),
            id="json word",
        ),
        pytest.param(
            flash(messages=[{"role": "latest_reminder", "content": "Be brief"}, *HI]),
            id="latest_reminder",
        ),
        pytest.param(flash(top_p=1.0, logprobs=True, top_logprobs=20), id="top_p 1, logprobs"),
        pytest.param(
            flash(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AAAA"},
                            },
                        ],
                    }
                ]
            ),
            id="image on the vision model",
        ),
    ],
)
def test_what_live_accepts_is_accepted(mock_now: MockServer, body: Json) -> None:
    response = post(mock_now, body)
    assert response.status_code == 200, response.text


def test_late_2025_keeps_its_own_rules_and_texts(mock: MockServer) -> None:
    chat = {"model": "deepseek-chat", "messages": HI}
    assert post(mock, chat | {"top_p": 0}).status_code == 200
    assert (
        post(mock, chat | {"messages": [{"role": "developer", "content": "x"}, *HI]}).status_code
        == 200
    )
    assert refused(post(mock, chat | {"model": "nope"})) == "Model Not Exist"
    reasoner = {"model": "deepseek-reasoner", "messages": tool_loop({}), "tools": [TOOL]}
    assert refused(post(mock, reasoner)) == (
        "Missing `reasoning_content` field in the assistant message at message index 1. For more "
        "information, please refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls"
    )
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]
    assert refused(post(mock, chat | {"messages": image})) == (
        "Failed to deserialize the JSON body into the target type: messages[0]: unknown variant "
        "`image_url`, expected `text`"
    )


# --- what changes the answer, not just the status -----------------------------------------------


def test_reasoning_effort_none_turns_thinking_off(mock_now: MockServer) -> None:
    thinking = post(mock_now, flash()).json()["choices"][0]["message"]
    assert thinking["reasoning_content"]
    off = post(mock_now, flash(reasoning_effort="none")).json()
    assert "reasoning_content" not in off["choices"][0]["message"]
    assert "completion_tokens_details" not in off["usage"]


def test_max_completion_tokens_is_ignored_as_live_ignores_it(mock_now: MockServer) -> None:
    body = flash(thinking={"type": "disabled"})
    capped = post(mock_now, body | {"max_completion_tokens": 5}).json()
    assert capped["choices"][0]["finish_reason"] == "stop"
    assert capped["usage"]["completion_tokens"] > 5
    limited = post(mock_now, body | {"max_tokens": 5}).json()
    assert limited["choices"][0]["finish_reason"] == "length"
    assert limited["usage"]["completion_tokens"] == 5


def test_parallel_tool_calls_are_numbered(mock_now: MockServer) -> None:
    from mockserver.scenario import Reply, Rule, ToolCall

    mock_now.add(
        Rule(
            name="two", reply=Reply(content="", tool_calls=(ToolCall(name="a"), ToolCall(name="b")))
        )
    )
    calls = post(mock_now, flash(tools=[TOOL])).json()["choices"][0]["message"]["tool_calls"]
    assert [c["id"][:8] for c in calls] == ["call_00_", "call_01_"]


def test_the_prompt_cache_is_kept_per_model_and_user(mock_now: MockServer) -> None:
    long = [{"role": "user", "content": "word " * 300}]
    first = post(mock_now, {"model": "deepseek-v4-pro", "messages": long}).json()["usage"]
    again = post(mock_now, {"model": "deepseek-v4-pro", "messages": long}).json()["usage"]
    other = post(mock_now, {"model": "deepseek-flash", "messages": long}).json()["usage"]
    user = post(mock_now, {"model": "deepseek-v4-pro", "messages": long, "user_id": "u2"}).json()
    assert first["prompt_cache_hit_tokens"] == 0 < again["prompt_cache_hit_tokens"]
    assert other["prompt_cache_hit_tokens"] == 0
    assert user["usage"]["prompt_cache_hit_tokens"] == 0


# --- exact usage, per model generation ----------------------------------------------------------


def test_v4_hi_counts_5_prompt_tokens_as_captured(mock_now: MockServer) -> None:
    # Live 2026-05-08: {"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}]}
    # (then an alias of V4 Flash, non-thinking) → "prompt_tokens":5
    usage = post(mock_now, {"model": "deepseek-chat", "messages": HI}, era="2026-05-08").json()
    assert usage["usage"]["prompt_tokens"] == 5


def test_v32_reasoner_without_thinking_counts_10_as_captured(mock: MockServer) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Hi"},
    ]
    body = {"model": "deepseek-reasoner", "messages": messages, "thinking": {"type": "disabled"}}
    assert post(mock, body).json()["usage"]["prompt_tokens"] == 10


def test_thinking_mode_counts_think_and_keeps_the_tool_loops_reasoning() -> None:
    loop: list[Json] = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "old thought"},
        {"role": "user", "content": "1+1=?"},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "use the tool",
            "tool_calls": [CALL],
        },
        {"role": "tool", "tool_call_id": "call_00_abc", "content": "2"},
    ]
    rendered = tokens.render_prompt(loop, template="v3.2", thinking=True)
    assert "old thought" not in rendered  # dropped: it is before the last user message
    assert "<｜Assistant｜></think>Hello!<｜end▁of▁sentence｜>" in rendered
    assert "<｜Assistant｜><think>use the tool</think>" in rendered
    assert rendered.endswith("<｜Assistant｜><think>")
    assert tokens.render_prompt(HI, template="v3.2").endswith("<｜Assistant｜></think>")


# --- beta features that work -------------------------------------------------------------------


def test_chat_prefix_completion_continues_the_prefix_on_beta(mock_now: MockServer) -> None:
    client = openai.OpenAI(base_url=mock_now.url + "/beta", api_key="sk-test", max_retries=0)
    with client:
        completion = client.chat.completions.create(
            model="deepseek-flash",
            messages=[
                {"role": "user", "content": "Please write quick sort code"},
                {"role": "assistant", "content": "```python\n", "prefix": True},  # type: ignore[list-item]
            ],
            stop=["```"],
            extra_body={"thinking": {"type": "disabled"}},
        )
    content = completion.choices[0].message.content or ""
    assert not content.startswith("```"), "the prefix is not repeated"
    assert "def " in content and "```" not in content  # code, cut at the closing fence


def test_fim_completion_with_the_openai_sdk(mock_now: MockServer) -> None:
    client = openai.OpenAI(base_url=mock_now.url + "/beta", api_key="sk-test", max_retries=0)
    with client:
        completion = client.completions.create(
            model="deepseek-flash",
            prompt="def fib(a):",
            suffix="    return fib(a-1) + fib(a-2)",
            max_tokens=128,
        )
        streamed = client.completions.create(
            model="deepseek-flash", prompt="def fib(a):", max_tokens=128, stream=True
        )
        text = "".join(chunk.choices[0].text for chunk in streamed if chunk.choices)
    assert completion.object == "text_completion"
    assert "return" in completion.choices[0].text  # code for a code prompt, not prose
    assert completion.usage is not None
    expected = tokens.count(
        "<｜begin▁of▁sentence｜><｜fim▁begin｜>def fib(a):<｜fim▁hole｜>"
        "    return fib(a-1) + fib(a-2)<｜fim▁end｜>"
    )
    assert completion.usage.prompt_tokens == expected
    assert completion.usage.completion_tokens == tokens.count(completion.choices[0].text)
    assert text


def test_fim_echo_and_limits(mock_now: MockServer) -> None:
    body = {
        "model": "deepseek-flash",
        "prompt": "Once upon a time, ",
        "echo": True,
        "max_tokens": 20,
    }
    echoed = post(mock_now, body, path="/beta/completions").json()
    assert_valid("deepseek/completion.schema.json", echoed)
    assert echoed["choices"][0]["text"].startswith("Once upon a time, ")
    too_long = post(mock_now, body | {"max_tokens": 4097}, path="/beta/completions")
    assert (
        refused(too_long) == "Invalid max_tokens value, the valid range of max_tokens is [1, 4096]"
    )
    reasoner = post(
        mock_now, body | {"model": "deepseek-reasoner"}, era="v3.2", path="/beta/completions"
    )
    assert refused(reasoner) == "deepseek-reasoner does not support FIM completion"
    assert post(mock_now, body, path="/completions").status_code == 404  # beta only


def test_strict_tools_on_beta_get_arguments_that_fit(mock_now: MockServer) -> None:
    strict: Json = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer", "minimum": 1, "maximum": 3},
                },
                "required": ["city", "days"],
                "additionalProperties": False,
            },
        },
    }
    body = flash(tools=[strict], thinking={"type": "disabled"}, tool_choice="required")
    calls = post(mock_now, body, path="/beta/chat/completions").json()["choices"][0]["message"][
        "tool_calls"
    ]

    arguments = json.loads(calls[0]["function"]["arguments"])
    assert set(arguments) == {"city", "days"} and 1 <= arguments["days"] <= 3
    loose = {
        **strict,
        "function": {
            **strict["function"],
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "minLength": 2}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    message = refused(post(mock_now, body | {"tools": [loose]}, path="/beta/chat/completions"))
    assert message == (
        "Invalid schema for function 'get_weather': parameters.properties.city uses `minLength`, "
        "which strict mode does not support"
    )


# --- limits -----------------------------------------------------------------------------------


def test_concurrency_429_has_deepseeks_whole_text_and_no_retry_after() -> None:
    with MockServer(Settings(port=0, max_concurrent=1)) as server:
        slow = {"X-Mock-Delivery": "stall_after=1", **AUTH}  # holds its slot
        with (
            httpx.Client(timeout=30) as client,
            client.stream(
                "POST", server.url + "/chat/completions", json=flash(stream=True), headers=slow
            ),
        ):
            refused_one = client.post(server.url + "/chat/completions", json=flash(), headers=AUTH)
    assert refused_one.status_code == 429
    assert "retry-after" not in refused_one.headers
    assert refused_one.json()["error"]["message"] == (
        "Your current concurrency is 2, which exceeds your concurrency limit of 1 based on your "
        "remaining balance. Please top up your balance to restore your concurrency."
    )


def test_the_rate_window_extension_sends_whole_seconds() -> None:
    with MockServer(Settings(port=0, rate_limit=1, rate_window=2.5)) as server:
        assert post(server, flash()).status_code == 200
        limited = post(server, flash())
    assert limited.status_code == 429
    assert limited.headers["retry-after"] in ("1", "2", "3")


# --- the catalogue file -------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["deepseek", "aimlapi", "acedata"])
def test_packaged_catalogues_are_valid(dialect: str) -> None:
    path = data_dir("fixtures") / "catalog" / f"{dialect}.json"
    catalog, _ = read_catalog(path)  # checked against schemas/catalog.schema.json
    assert catalog.default_model in catalog.newest.models


def test_a_catalogue_file_adds_a_model_and_a_user_can_serve_it(tmp_path: Any) -> None:

    document = json.loads((data_dir("fixtures") / "catalog" / "deepseek.json").read_text("utf-8"))
    document["models"].append(
        {"id": "deepseek-v5", "family": "v4.1", "from": "2026-11-01", "context": 2097152,
         "max_tokens": {"max": 65536, "default": 8192}, "thinking": False}
    )  # fmt: skip
    path = tmp_path / "deepseek.json"
    path.write_text(json.dumps(document), "utf-8")
    with MockServer(Settings(port=0, catalogs=(path,))) as server:
        answer = post(server, {"model": "deepseek-v5", "messages": HI})
        before = post(server, {"model": "deepseek-v5", "messages": HI}, era="2026-10-31")
    assert answer.status_code == 200 and answer.json()["model"] == "deepseek-v5"
    assert before.status_code == 400


def test_a_broken_catalogue_is_refused_with_its_path(tmp_path: Any) -> None:
    path = tmp_path / "deepseek.json"
    path.write_text('{"dialect": "deepseek", "families": {}, "eras": [], "models": []}', "utf-8")
    with pytest.raises(ValueError, match="not a valid catalogue"):
        read_catalog(path)


def test_an_alias_of_a_model_not_served_is_a_clear_error() -> None:
    document = {
        "dialect": "deepseek",
        "families": {"v4": {"template": "v3.2"}},
        "eras": [
            {"name": "x", "from": "2026-01-01", "title": "x", "roles": ["user"], "checks": {}}
        ],
        "models": [{"id": "a", "from": "2026-01-01", "alias_of": "b"}],
    }
    with pytest.raises(ValueError, match="alias of 'b', which is not served"):
        catalog_from_json(document)


def test_era_names_and_dates_resolve() -> None:
    catalogs = [packaged(name) for name in ("deepseek", "aimlapi", "acedata")]
    assert era_moment("v4", catalogs) == parse_date("2026-04-24")
    assert era_moment(None, catalogs) == parse_date("2026-09-10")
    assert packaged("deepseek").at(parse_date("2026-07-24T15:59Z")).name == "v4-legacy-retired"
    assert packaged("deepseek").at(parse_date("2020-01-01")).name == "v3.2"
    with pytest.raises(ValueError, match="unknown era 'v9'"):
        era_moment("v9", catalogs)
