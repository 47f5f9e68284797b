"""DeepSeek's Anthropic API (`/anthropic/v1/messages`): the message, the named events of a
stream, the error envelope and the `anthropic` SDK, against the mock or live
(`CONTRACT_DIALECT=anthropic`, with DEEPSEEK_API_KEY). About 10 requests, max_tokens ≤ 24."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from contract_tests.target import WRONG_KEY, Target
from contract_tests.wire import ApiClient, Reply, Sse

WIRE = "anthropic"  # only the anthropic target runs these; the chat modules never get it
Json = dict[str, Any]
ORDER_HEAD = "message_start"
ORDER_TAIL = ("message_delta", "message_stop")


def ask(model: str, **extra: Any) -> Json:
    """A cheap question; thinking off so a small max_tokens still reaches the answer."""
    body: Json = {
        "model": model,
        "max_tokens": 24,
        "messages": [{"role": "user", "content": "Say hello in three words."}],
        "thinking": {"type": "disabled"},
    }
    return body | extra


def events(sse: Sse) -> list[tuple[str, Json]]:
    """(event name, data) pairs; every event carries both, and the name is the data's type."""
    names = [name for name in sse.fields if name == "event"]
    assert len(names) == len(sse.events), "every data line comes with an `event:` line"
    out = []
    for n, data in enumerate(sse.events):
        payload = json.loads(data)
        assert isinstance(payload, dict) and isinstance(payload.get("type"), str), data[:200]
        out.append((payload["type"], payload))
        assert data != "[DONE]", f"event {n}: Anthropic streams have no [DONE]"
    return out


def check_message(api: ApiClient, reply: Reply) -> Json:
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type.startswith("application/json"), reply.content_type
    message = reply.object()
    api.conforms("chat-completion", message, "the message")
    assert message["type"] == "message" and message["role"] == "assistant"
    usage = message["usage"]
    assert all(
        isinstance(usage[k], int) and usage[k] >= 0 for k in ("input_tokens", "output_tokens")
    )
    return message


def test_a_message_keeps_the_contract(api: ApiClient, target: Target) -> None:
    message = check_message(api, api.chat(ask(target.model)))
    texts = [b["text"] for b in message["content"] if b["type"] == "text"]
    assert texts and "".join(texts).strip()
    assert message["stop_reason"] in ("end_turn", "max_tokens")
    assert message["usage"]["output_tokens"] <= 24


def test_max_tokens_one_ends_with_max_tokens(api: ApiClient, target: Target) -> None:
    message = check_message(api, api.chat(ask(target.model, max_tokens=1)))
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 1


def test_a_claude_name_is_served(api: ApiClient) -> None:
    message = check_message(api, api.chat(ask("claude-sonnet-4-5")))
    assert message["model"], "the answer names a model"


def test_a_stream_is_named_events_in_order(api: ApiClient, target: Target) -> None:
    sse = api.stream(ask(target.model))
    assert sse.reply.status == 200 and sse.reply.content_type.startswith("text/event-stream")
    assert sse.unterminated is None
    found = events(sse)
    for _, data in found:
        api.conforms("chat-completion-chunk", data, f"the {data['type']} event")
    names = [name for name, _ in found if name != "ping"]
    assert names[0] == ORDER_HEAD and tuple(names[-2:]) == ORDER_TAIL
    open_blocks: list[int] = []
    text = ""
    for name, data in found:
        if name == "content_block_start":
            assert not open_blocks, "one block at a time"
            open_blocks.append(data["index"])
        elif name == "content_block_delta":
            assert open_blocks == [data["index"]]
            text += data["delta"].get("text", "")
        elif name == "content_block_stop":
            assert open_blocks == [data["index"]]
            open_blocks.pop()
    assert not open_blocks and text.strip()
    final = found[-2][1]
    assert final["delta"]["stop_reason"] in ("end_turn", "max_tokens")
    assert final["usage"]["output_tokens"] > 0


@pytest.mark.parametrize(
    ("case", "status", "kind"),
    [
        ("wrong key", 401, "authentication_error"),
        ("unknown non-claude model", 400, "invalid_request_error"),
        ("malformed JSON body", 400, "invalid_request_error"),
    ],
)
def test_errors_come_in_anthropic_envelope(
    api: ApiClient, target: Target, case: str, status: int, kind: str
) -> None:
    if case == "wrong key":
        reply = api.send(
            "POST",
            api.chat_path,
            body=ask(target.model),
            headers={"x-api-key": WRONG_KEY},
            wrong_key=WRONG_KEY,
        )
    elif case == "unknown non-claude model":
        reply = api.chat(ask("deepseek-contract-no-such-model"))
    else:
        reply = api.send("POST", api.chat_path, content=json.dumps(ask(target.model)).encode()[:-9])
    assert reply.status == status, reply.body[:300]
    body = reply.object()
    api.conforms("error", body, f"the {case} error")
    assert body["error"]["type"] == kind


def test_the_anthropic_sdk_reads_a_message_and_a_stream(api: ApiClient, target: Target) -> None:
    api.budget.spend("anthropic SDK create")
    api.budget.spend("anthropic SDK stream")
    with anthropic.Anthropic(
        base_url=target.sdk_base_url, api_key=target.api_key, max_retries=0
    ) as sdk:
        message = sdk.messages.create(**ask(target.model))
        with sdk.messages.stream(**ask(target.model)) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert message.content and text.strip()
    assert final.usage.output_tokens > 0 and final.stop_reason in ("end_turn", "max_tokens")
