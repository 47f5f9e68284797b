"""DeepSeek's Anthropic API (`/anthropic/v1/messages`) through the official `anthropic` SDK,
against a real server: answers, streams, tool loops, thinking, model names per era, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, MessageParam, TextBlock, ThinkingBlock, ToolParam, ToolUseBlock

from mockserver import ErrorReply, MockServer, Reply, Rule, ToolCall

Json = dict[str, Any]
KEYS = {"x-api-key": "sk-a"}
HI: list[MessageParam] = [{"role": "user", "content": "hi"}]
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def client(mock_now: MockServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=mock_now.url_for("anthropic"), api_key="sk-test", max_retries=0
    ) as sdk:
        yield sdk


def _text(message: Message) -> str:
    return "".join(block.text for block in message.content if isinstance(block, TextBlock))


def _body(error: anthropic.APIStatusError) -> Json:
    assert isinstance(error.body, dict)
    return error.body


def _plain(blocks: Any) -> list[Json]:
    """Blocks as data: a stream's final message has the SDK's parsed block types."""
    return [block.model_dump(exclude_none=True) for block in blocks]


def _chat_prompt_tokens(server: MockServer, body: Json) -> int:
    """The prompt count DeepSeek's chat completions give the same conversation."""
    answer = httpx.post(
        server.url + "/chat/completions", json=body, headers={"authorization": "Bearer sk-test"}
    )
    assert answer.status_code == 200, answer.text
    tokens: int = answer.json()["usage"]["prompt_tokens"]
    return tokens


def test_create_answers_in_anthropic_shape_with_thinking(
    client: anthropic.Anthropic, mock_now: MockServer
) -> None:
    message = client.messages.create(model="deepseek-flash", max_tokens=200, messages=HI)

    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant"
    assert message.model == "deepseek-flash"
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    assert text.type == "text" and text.text
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    # The same tokenizer and template as chat completions: "hi" in thinking mode.
    same = {"model": "deepseek-flash", "messages": HI}
    assert message.usage.input_tokens == _chat_prompt_tokens(mock_now, same)
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens == 0
    (entry,) = [e for e in mock_now.journal.entries() if e.path.startswith("/anthropic")]
    assert (entry.path, entry.dialect, entry.status) == ("/anthropic/v1/messages", "anthropic", 200)


def test_hi_without_thinking_counts_the_captured_five_tokens(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="deepseek-flash",
        max_tokens=50,
        messages=HI,
        thinking={"type": "disabled"},
    )
    assert [block.type for block in message.content] == ["text"]
    assert message.usage.input_tokens == 5  # V4's "hi" (live capture 2026-05-08)


def test_usage_counts_the_reply_and_a_repeated_prompt_hits_the_cache(
    client: anthropic.Anthropic,
) -> None:
    long: list[MessageParam] = [{"role": "user", "content": "Tell me about caches. " * 40}]
    first = client.messages.create(model="deepseek-v4-pro", max_tokens=40, messages=long)
    again = client.messages.create(model="deepseek-v4-pro", max_tokens=40, messages=long)
    assert first.usage.cache_read_input_tokens == 0
    assert again.usage.cache_read_input_tokens and again.usage.cache_read_input_tokens % 64 == 0
    total = first.usage.input_tokens
    assert again.usage.input_tokens + again.usage.cache_read_input_tokens == total
    assert first.usage.output_tokens == 40 and first.stop_reason == "max_tokens"


def test_stream_text_stream_and_final_message_match_create(client: anthropic.Anthropic) -> None:
    asked: Json = {"model": "deepseek-flash", "max_tokens": 120, "messages": HI}
    whole = client.messages.create(**asked)
    with client.messages.stream(**asked) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == _text(whole)
    assert _plain(final.content) == _plain(whole.content)
    assert final.usage == whole.usage
    assert (final.stop_reason, final.model) == (whole.stop_reason, whole.model)


@pytest.mark.anyio
async def test_async_client_creates_and_streams(mock_now: MockServer) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=mock_now.url_for("anthropic"), api_key="sk-test", max_retries=0
    ) as sdk:
        message = await sdk.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=60,
            messages=HI,
            thinking={"type": "disabled"},
        )
        async with sdk.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=60,
            messages=HI,
            thinking={"type": "disabled"},
        ) as stream:
            final = await stream.get_final_message()
    assert message.model == "deepseek-flash"  # other claude* names are served by deepseek-flash
    assert _plain(final.content) == _plain(message.content) and final.usage == message.usage


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    question: MessageParam = {"role": "user", "content": "What is the weather in Paris?"}
    first = client.messages.create(
        model="deepseek-flash",
        max_tokens=400,
        tools=[WEATHER],
        messages=[question],
    )
    assert first.stop_reason == "tool_use"
    (call,) = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict)
    assert isinstance(call.input["city"], str)

    # The whole assistant turn goes back (thinking included), then the result.
    answer = client.messages.create(
        model="deepseek-flash",
        max_tokens=400,
        tools=[WEATHER],
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}],
            },
        ],
    )
    assert answer.stop_reason == "end_turn"
    assert answer.content[-1].type == "text" and answer.content[-1].text


def test_a_tool_loop_without_its_thinking_is_refused_as_deepseek_does(
    client: anthropic.Anthropic,
) -> None:
    first = client.messages.create(
        model="deepseek-flash",
        max_tokens=400,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    without_thinking = [block for block in first.content if block.type != "thinking"]
    (call,) = [block for block in first.content if block.type == "tool_use"]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(
            model="deepseek-flash",
            max_tokens=400,
            tools=[WEATHER],
            messages=[
                {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": without_thinking},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "-3"}],
                },
            ],
        )
    assert refused.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "The `content[].thinking` in the thinking mode must be passed back to the API.",
        },
    }


def test_canned_rules_answer_this_surface_too(
    client: anthropic.Anthropic, mock_now: MockServer
) -> None:
    mock_now.add(
        Rule(
            name="weather",
            reply=Reply(
                content="Checking.",
                reasoning_content="Use the tool.",
                tool_calls=(ToolCall(name="get_weather", arguments='{"city": "Rome"}'),),
            ),
        )
    )
    message = client.messages.create(
        model="deepseek-flash",
        max_tokens=100,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather?"}],
    )
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    thinking, _, call = message.content
    assert isinstance(thinking, ThinkingBlock) and thinking.thinking == "Use the tool."
    assert isinstance(call, ToolUseBlock) and call.input == {"city": "Rome"}
    assert message.stop_reason == "tool_use"
    assert mock_now.journal.entries()[-1].rule == "weather"


def test_stop_sequences_end_with_stop_sequence(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(
        model="deepseek-flash", max_tokens=200, messages=HI, thinking={"type": "disabled"}
    )
    word = _text(plain).split()[3]
    cut = client.messages.create(
        model="deepseek-flash",
        max_tokens=200,
        messages=HI,
        thinking={"type": "disabled"},
        stop_sequences=["nope-never", word],
    )
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == word
    assert _text(plain).startswith(_text(cut))
    assert word not in _text(cut)


@pytest.mark.parametrize(
    ("era", "model", "served"),
    [
        ("newest", "claude-opus-4-1", "deepseek-v4-pro"),
        ("newest", "claude-sonnet-4-5", "deepseek-flash"),
        ("newest", "claude-haiku-4-5", "deepseek-flash"),
        ("newest", "claude-3-7-sonnet-latest", "deepseek-flash"),
        ("newest", "deepseek-v4-pro", "deepseek-v4-pro"),
        ("v4", "claude-opus-4-1", "deepseek-v4-pro"),
        ("v4", "claude-sonnet-4-5", "deepseek-v4-flash"),
        ("v4", "gpt-4o", "deepseek-v4-flash"),  # unknown names were mapped to flash then
        ("v3.2", "claude-opus-4-1", "deepseek-chat"),  # …and to deepseek-chat before V4
        ("v3.2", "deepseek-reasoner", "deepseek-reasoner"),
    ],
)
def test_model_names_are_mapped_as_deepseek_maps_them_in_each_era(
    client: anthropic.Anthropic, era: str, model: str, served: str
) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=20,
        messages=HI,
        extra_headers={"X-Mock-Era": era},
    )
    assert message.model == served


def test_unknown_names_that_are_not_claude_are_refused_today(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="gpt-4o", max_tokens=20, messages=HI)
    error = _body(refused.value)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].endswith("but you passed gpt-4o.")


def test_thinking_was_ignored_before_v4(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="deepseek-chat",
        max_tokens=20,
        messages=HI,
        thinking={"type": "enabled", "budget_tokens": 2048},
        extra_headers={"X-Mock-Era": "v3.2"},
    )
    assert [block.type for block in message.content] == ["text"]


def test_budget_tokens_is_ignored_and_effort_accepted(client: anthropic.Anthropic) -> None:
    small = client.messages.create(
        model="deepseek-flash",
        max_tokens=300,
        messages=HI,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    large = client.messages.create(
        model="deepseek-flash",
        max_tokens=300,
        messages=HI,
        thinking={"type": "enabled", "budget_tokens": 60000},
    )
    assert small.content[0].type == large.content[0].type == "thinking"
    assert _plain(small.content) == _plain(large.content)  # the budget changes nothing
    effort = client.messages.create(
        model="deepseek-flash",
        max_tokens=300,
        messages=HI,
        extra_body={"output_config": {"effort": "high"}},
    )
    assert effort.content[0].type == "thinking"
    with pytest.raises(anthropic.BadRequestError, match=r"output_config\.effort"):
        client.messages.create(
            model="deepseek-flash",
            max_tokens=300,
            messages=HI,
            extra_body={"output_config": {"effort": "extreme"}},
        )


def test_keys_in_x_api_key_or_bearer_and_versions_ignored(mock_now: MockServer) -> None:
    url = mock_now.url_for("anthropic") + "/v1/messages"
    body = {"model": "deepseek-flash", "max_tokens": 10, "messages": HI}
    headers = {"anthropic-version": "1999-01-01", "anthropic-beta": "no-such-beta-2020"}
    for key in ({"x-api-key": "sk-a"}, {"authorization": "Bearer sk-a"}):
        assert httpx.post(url, json=body, headers=headers | key).status_code == 200
    missing = httpx.post(url, json=body, headers=headers)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    # DeepSeek's Messages reference also serves the path without /v1.
    short = mock_now.url_for("anthropic") + "/messages"
    assert httpx.post(short, json=body, headers={"x-api-key": "sk-a"}).status_code == 200


def test_a_wrong_key_is_an_authentication_error() -> None:
    with (
        MockServer(api_keys=("sk-right-key-1234",)) as server,
        anthropic.Anthropic(
            base_url=server.url_for("anthropic"), api_key="sk-wrong-key-5678", max_retries=0
        ) as sdk,
        pytest.raises(anthropic.AuthenticationError) as refused,
    ):
        sdk.messages.create(model="deepseek-flash", max_tokens=10, messages=HI)
    assert _body(refused.value)["error"]["message"].endswith("****5678 is invalid")


@pytest.mark.parametrize(
    ("status", "raised", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_each_error_status_raises_its_sdk_exception(
    client: anthropic.Anthropic, status: int, raised: type[Exception], kind: str
) -> None:
    with pytest.raises(raised) as caught:
        client.messages.create(
            model="deepseek-flash",
            max_tokens=10,
            messages=HI,
            extra_headers={"X-Mock-Fault": str(status)},
        )
    assert isinstance(caught.value, anthropic.APIStatusError)
    assert caught.value.status_code == status
    assert _body(caught.value)["type"] == "error"
    assert _body(caught.value)["error"]["type"] == kind


def test_overloaded_twice_then_the_sdk_retries_into_an_answer(mock_now: MockServer) -> None:
    mock_now.add(Rule(name="busy", reply=ErrorReply(status=529, retry_after_ms=1), times=2))
    with anthropic.Anthropic(
        base_url=mock_now.url_for("anthropic"), api_key="sk-test", max_retries=2
    ) as sdk:
        message = sdk.messages.create(model="deepseek-flash", max_tokens=10, messages=HI)
    assert message.content
    assert [e.status for e in mock_now.journal.entries()] == [529, 529, 200]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"model": "deepseek-flash", "messages": HI}, "max_tokens: Field required"),
        (
            {"model": "deepseek-flash", "max_tokens": 9, "messages": []},
            "messages: List should have at least 1 item",
        ),
        (
            {
                "model": "deepseek-flash",
                "max_tokens": 9,
                "messages": [{"role": "system", "content": "x"}],
            },
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            {"model": "deepseek-flash", "max_tokens": "9", "messages": HI},
            "max_tokens: Input should be a valid integer",
        ),
        (
            {
                "model": "deepseek-flash",
                "max_tokens": 9,
                "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}],
            },
            "messages.0.content.0: content blocks of type `document` are not supported",
        ),
        (
            {
                "model": "deepseek-flash",
                "max_tokens": 9,
                "messages": [
                    {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}]},
                    *HI,
                ],
            },
            "content blocks of type `redacted_thinking` are not supported",
        ),
        (
            {"model": "deepseek-flash", "max_tokens": 400000, "messages": HI},
            "the valid range of max_tokens is [1, 393216]",
        ),
        (
            {"model": "deepseek-flash", "max_tokens": 9, "messages": HI, "temperature": 3},
            "the valid range of temperature is [0, 2]",
        ),
        (
            {
                "model": "deepseek-flash",
                "max_tokens": 9,
                "messages": HI,
                "tool_choice": {"type": "sometimes"},
            },
            "tool_choice.type",
        ),
        (
            {
                "model": "deepseek-flash",
                "max_tokens": 9,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "search_result", "source": "x", "title": "t", "content": []}
                        ],
                    }
                ],
            },
            "type `search_result` are not supported",
        ),
        (
            {
                "model": "deepseek-flash",
                "max_tokens": 9,
                "messages": HI,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools.0.type: tools of type 'web_search_20250305' are not supported",
        ),
        ([1, 2], "Input should be a JSON object"),
    ],
)
def test_bad_requests_get_a_clear_400_in_anthropic_envelope(
    mock_now: MockServer, body: Any, says: str
) -> None:
    answer = httpx.post(
        mock_now.url_for("anthropic") + "/v1/messages", json=body, headers={"x-api-key": "sk-a"}
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert says in error["error"]["message"]


def test_images_follow_the_model_and_the_era(client: anthropic.Anthropic) -> None:
    image: MessageParam = {
        "role": "user",
        "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "text", "text": "What is this?"},
        ],
    }
    # deepseek-flash takes images today; deepseek-v4-pro does not.
    assert client.messages.create(model="deepseek-flash", max_tokens=20, messages=[image]).content
    with pytest.raises(anthropic.BadRequestError, match="Model do not support image input"):
        client.messages.create(model="deepseek-v4-pro", max_tokens=20, messages=[image])
    with pytest.raises(anthropic.BadRequestError, match="type `image` are not supported"):
        client.messages.create(
            model="deepseek-v4-flash",
            max_tokens=20,
            messages=[image],
            extra_headers={"X-Mock-Era": "v4"},
        )


def test_unknown_paths_under_anthropic_answer_in_its_envelope(mock_now: MockServer) -> None:
    # DeepSeek documents no token-counting endpoint: it is an unknown path here.
    answer = httpx.post(
        mock_now.url_for("anthropic") + "/v1/messages/count_tokens",
        json={"model": "deepseek-flash", "messages": HI},
        headers={"x-api-key": "sk-a"},
    )
    assert answer.status_code == 404
    assert answer.json() == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "Not Found"},
    }
    wrong_method = httpx.get(mock_now.url_for("anthropic") + "/v1/messages", headers=KEYS)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"


def test_help_shows_the_anthropic_base_url(capsys: pytest.CaptureFixture[str]) -> None:
    from mockserver import cli

    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:8000/anthropic claude" in capsys.readouterr().out


def test_plugin_fixture_talks_to_the_anthropic_surface(
    deepseek_mock: MockServer, deepseek_anthropic_client: anthropic.Anthropic
) -> None:
    message = deepseek_anthropic_client.messages.create(
        model="deepseek-flash", max_tokens=10, messages=HI
    )
    assert message.type == "message"
    assert deepseek_mock.url_for("anthropic") == deepseek_mock.url + "/anthropic"
    assert json.loads(deepseek_mock.journal.entries()[-1].body)["model"] == "deepseek-flash"


@pytest.mark.anyio
async def test_plugin_async_fixture(
    deepseek_anthropic_async_client: anthropic.AsyncAnthropic,
) -> None:
    message = await deepseek_anthropic_async_client.messages.create(
        model="deepseek-flash", max_tokens=10, messages=HI
    )
    assert message.type == "message"


def test_readme_snippets_run_as_written(
    mock_now: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    section = readme.split("## DeepSeek's Anthropic API", 1)[1].split("\n## ", 1)[0]
    snippet, pytest_example = (b.split("```", 1)[0] for b in section.split("```python\n")[1:3])
    namespace: Json = {}
    try:
        exec(snippet.replace("http://127.0.0.1:8000", mock_now.url), namespace)
    finally:
        namespace["client"].close()  # the snippet, like a script, leaves that to the exit
    kinds, line, streamed = capsys.readouterr().out.splitlines()
    assert kinds == "['thinking', 'text']"
    assert line.split()[0] == "end_turn" and streamed.endswith(" deepseek-flash")
    assert "def test_my_agent_answers(deepseek_mock, deepseek_anthropic_client)" in pytest_example
    (curl,) = [b.split("```", 1)[0] for b in section.split("```sh\n")[1:2]]
    assert "claude-opus-4-1" in curl and "/anthropic/v1/messages" in curl


def test_a_scenario_file_can_pick_this_surface(mock_now: MockServer) -> None:
    from mockserver.scenario import rules_from_json

    (rule,) = rules_from_json(
        {
            "rules": [
                {
                    "name": "anthropic only",
                    "match": {"dialect": "anthropic"},
                    "reply": {"content": "From the Messages API."},
                }
            ]
        }
    )
    mock_now.add(rule)
    body = {"model": "deepseek-flash", "max_tokens": 50, "messages": HI}
    answer = httpx.post(
        mock_now.url_for("anthropic") + "/v1/messages",
        json=body | {"thinking": {"type": "disabled"}},
        headers={"x-api-key": "sk-a"},
    )
    assert answer.json()["content"] == [{"type": "text", "text": "From the Messages API."}]
    chat = httpx.post(
        mock_now.url + "/chat/completions",
        json={"model": "deepseek-flash", "messages": HI},
        headers={"authorization": "Bearer sk-a"},
    )
    assert chat.json()["choices"][0]["message"]["content"] != "From the Messages API."


def test_bearer_wins_over_x_api_key() -> None:
    body = {"model": "deepseek-flash", "max_tokens": 5, "messages": HI}
    with MockServer(api_keys=("sk-right-key-1234",)) as server:
        url = server.url_for("anthropic") + "/v1/messages"
        both = {"authorization": "Bearer sk-right-key-1234", "x-api-key": "sk-wrong-key-0000"}
        assert httpx.post(url, json=body, headers=both).status_code == 200
        swapped = {"authorization": "Bearer sk-wrong-key-0000", "x-api-key": "sk-right-key-1234"}
        assert httpx.post(url, json=body, headers=swapped).status_code == 401


def test_a_named_tool_in_thinking_mode_is_refused_any_is_auto(client: anthropic.Anthropic) -> None:
    with pytest.raises(
        anthropic.BadRequestError, match="Thinking mode does not support this tool_choice"
    ):
        client.messages.create(
            model="deepseek-flash",
            max_tokens=200,
            tools=[WEATHER],
            tool_choice={"type": "tool", "name": "get_weather"},
            messages=HI,
        )
    forced = client.messages.create(
        model="deepseek-flash",
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        thinking={"type": "disabled"},
        messages=HI,
    )
    assert forced.stop_reason == "tool_use"
    anyone = client.messages.create(
        model="deepseek-flash",
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=HI,
    )
    assert anyone.content


def test_metadata_user_id_isolates_the_prompt_cache(client: anthropic.Anthropic) -> None:
    long: list[MessageParam] = [{"role": "user", "content": "A cached prefix. " * 50}]

    def hits(user: str) -> int | None:
        message = client.messages.create(
            model="deepseek-flash", max_tokens=5, messages=long, metadata={"user_id": user}
        )
        return message.usage.cache_read_input_tokens

    assert hits("alice") == 0
    assert hits("bob") == 0  # another user's cache
    assert hits("alice")


@pytest.mark.parametrize("variable", ["ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY"])
def test_the_environment_claude_code_reads_points_the_sdk_here(
    mock_now: MockServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """The README's variables, which the SDK reads as Claude Code does."""
    for name in ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", mock_now.url + "/anthropic")
    monkeypatch.setenv(variable, "sk-anything")
    with anthropic.Anthropic(max_retries=0) as sdk:
        message = sdk.messages.create(model="deepseek-flash", max_tokens=10, messages=HI)
    assert message.type == "message"
    (entry,) = mock_now.journal.entries()
    assert {"authorization", "x-api-key"} & set(entry.headers)
