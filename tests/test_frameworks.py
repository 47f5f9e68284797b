"""The frameworks apps call DeepSeek through, pointed at the mock with today's model: they
behave as against live, the two most-reported V4 400s included (a forced tool_choice in thinking
mode, and a tool loop that drops `reasoning_content`, which LangChain and litellm both do)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from mockserver.server import MockServer

# litellm fetches its model price list from the network on import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEY = "sk-test"
MODEL = "deepseek-flash"
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FORCED = "Thinking mode does not support this tool_choice"
PASSBACK = "The `reasoning_content` in the thinking mode must be passed back to the API."


@pytest.fixture
def chat_model(mock_now: MockServer) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=MODEL, base_url=mock_now.url, api_key=KEY, max_retries=0)  # type: ignore[arg-type]


def test_langchain_gets_an_answer_with_exact_usage(mock_now: MockServer, chat_model: Any) -> None:
    answer = chat_model.invoke("hi")
    assert answer.content
    usage = answer.usage_metadata
    assert (
        usage["input_tokens"] == 5
    )  # V4's template: BOS, <｜User｜>, hi, <｜Assistant｜>, <think>
    assert usage["output_token_details"]["reasoning"] > 0  # V4 thinks by default
    assert [e.status for e in mock_now.journal.entries()] == [200]


def test_langchain_forced_tool_choice_is_refused_in_thinking_mode(chat_model: Any) -> None:
    import openai

    with pytest.raises(openai.BadRequestError, match=FORCED):
        chat_model.bind_tools([WEATHER], tool_choice="required").invoke("Weather in Paris?")


def test_langchain_tool_loop_fails_on_the_second_turn_as_live(chat_model: Any) -> None:
    import openai
    from langchain_core.messages import HumanMessage, ToolMessage

    with_tools = chat_model.bind_tools([WEATHER])
    question = HumanMessage("Weather in Paris?")
    call = with_tools.invoke([question])
    assert call.tool_calls[0]["name"] == "get_weather"
    result = ToolMessage("sunny", tool_call_id=call.tool_calls[0]["id"])
    # langchain-openai does not send reasoning_content back: live answers this 400.
    with pytest.raises(openai.BadRequestError, match=re.escape(PASSBACK)):
        with_tools.invoke([question, call, result])
    # With thinking off there is nothing to pass back, and the loop completes.
    plain = chat_model.bind_tools([WEATHER]).bind(extra_body={"thinking": {"type": "disabled"}})
    call = plain.invoke([question])
    result = ToolMessage("sunny", tool_call_id=call.tool_calls[0]["id"])
    assert plain.invoke([question, call, result]).content


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def litellm_module() -> Iterator[Any]:
    """litellm, with what its import does to the process undone afterwards: it hangs filters
    of its own on uvicorn's loggers, which rewrite the access lines other tests read."""
    before = {name: list(logging.getLogger(name).filters) for name in UVICORN_LOGGERS}
    import litellm

    litellm.suppress_debug_info = True
    yield litellm
    for name, filters in before.items():
        logging.getLogger(name).filters[:] = filters


def test_litellm_deepseek_provider_gets_an_answer(
    mock_now: MockServer, litellm_module: Any
) -> None:
    answer = litellm_module.completion(
        model=f"deepseek/{MODEL}",
        api_base=mock_now.url,
        api_key=KEY,
        messages=[{"role": "user", "content": "hi"}],
    )
    assert answer.choices[0].message.content
    assert answer.choices[0].message.reasoning_content
    assert answer.usage.prompt_tokens == 5
    (entry,) = mock_now.journal.entries()
    assert entry.json is not None and entry.json["model"] == MODEL


def test_litellm_gets_both_v4_400s(mock_now: MockServer, litellm_module: Any) -> None:
    common: dict[str, Any] = {
        "model": f"deepseek/{MODEL}",
        "api_base": mock_now.url,
        "api_key": KEY,
        "tools": [WEATHER],
    }
    question = {"role": "user", "content": "Weather in Paris?"}
    with pytest.raises(litellm_module.BadRequestError, match=FORCED):
        litellm_module.completion(messages=[question], tool_choice="required", **common)
    call = litellm_module.completion(messages=[question], **common).choices[0].message
    assert call.tool_calls
    dropped = {
        "role": "assistant",
        "content": "",
        "tool_calls": [c.model_dump() for c in call.tool_calls],
    }
    result = {"role": "tool", "tool_call_id": call.tool_calls[0].id, "content": "sunny"}
    with pytest.raises(litellm_module.BadRequestError, match=re.escape(PASSBACK)):
        litellm_module.completion(messages=[question, dropped, result], **common)
    kept = dropped | {"reasoning_content": call.reasoning_content}
    answer = litellm_module.completion(messages=[question, kept, result], **common)
    assert answer.choices[0].message.content
    assert [e.status for e in mock_now.journal.entries()] == [400, 200, 400, 200]


def test_openai_sdk_meets_both_v4_400s_and_passes_with_the_passback(mock_now: MockServer) -> None:
    import openai

    client = openai.OpenAI(base_url=mock_now.url, api_key=KEY, max_retries=0)
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    tools: Any = [WEATHER]
    with client:
        with pytest.raises(openai.BadRequestError, match=FORCED):
            client.chat.completions.create(
                model=MODEL, messages=[question], tools=tools, tool_choice="required"
            )
        call = client.chat.completions.create(model=MODEL, messages=[question], tools=tools)
        message = call.choices[0].message
        assert message.tool_calls
        # Rebuilt from the SDK's typed fields, the assistant turn loses reasoning_content.
        calls = [c.model_dump() for c in message.tool_calls]
        dropped: Any = {"role": "assistant", "content": "", "tool_calls": calls}
        result: Any = {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "ok"}
        with pytest.raises(openai.BadRequestError, match=re.escape(PASSBACK)):
            client.chat.completions.create(
                model=MODEL, messages=[question, dropped, result], tools=tools
            )
        kept: Any = dropped | {"reasoning_content": getattr(message, "reasoning_content", "")}
        answer = client.chat.completions.create(
            model=MODEL, messages=[question, kept, result], tools=tools
        )
    assert answer.choices[0].message.content
