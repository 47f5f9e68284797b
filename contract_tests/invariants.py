"""The checks behind the contract tests, shared by the example tests and the property tests.

Each check states one documented fact and fails with what was seen. What differs between the
dialects comes from their schemas, or, for where streamed usage sits (which no schema can say),
from `PLACEMENT` below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from contract_tests.wire import ApiClient, Json, Reply, Sse
from mockserver import tokens
from mockserver.catalog import packaged
from mockserver.drift import documented_values
from mockserver.invariants import (
    ABSENT,
    NULL,
    PLACEMENT,
    UsagePlacement,
    finish_problems,
    finish_reasons,
    framing_problems,
    identity_problems,
    joined_messages,
    message_problems,
    placement_problems,
    usage_problems,
)

PROMPT = "Reply with one short friendly sentence."
# `created` is unix seconds from the provider's clock: allow for skew, not for a wrong unit.
CLOCK_SKEW = 600
ID_SHAPE = re.compile(r"^\S+$")


# DeepSeek's V4 models think unless told not to, and a chain of thought would spend the small
# max_tokens before the answer starts: the cheap requests turn it off.
THINKING_OFF = {"thinking": {"type": "disabled"}}


def thinks_by_default(model: str) -> bool:
    spec = packaged("deepseek").newest.models.get(model)
    return spec is not None and spec.thinking


def predicted_prompt_tokens(dialect: str, request: Json, env: Mapping[str, str]) -> int:
    """What DeepSeek's tokenizer and the model's template count for `request`'s messages."""
    from contract_tests.target import era_of

    spec = era_of(dialect, env).models[request["model"]]
    thinking = spec.thinking and request.get("thinking") != THINKING_OFF["thinking"]
    ids = tokens.prompt_ids(request["messages"], template=spec.template, thinking=thinking)
    return len(ids)


def simple_request(model: str, **extra: Any) -> Json:
    """A small, cheap request: one user message and a low max_tokens, plus `extra`."""
    base = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 24}
    if thinks_by_default(model):
        base |= THINKING_OFF
    return base | extra


def expect_status(reply: Reply, status: int, what: str) -> None:
    __tracebackhide__ = True
    if reply.status != status:
        excerpt = reply.body[:300].decode("utf-8", "replace")
        raise AssertionError(f"{what}: expected HTTP {status}, got {reply.status}: {excerpt}")


def check_created(created: object, reply: Reply, where: str) -> None:
    __tracebackhide__ = True
    assert isinstance(created, int) and not isinstance(created, bool), (
        f"{where}: created must be integer unix seconds, got {created!r}"
    )
    low, high = reply.sent_at - CLOCK_SKEW, reply.received_at + CLOCK_SKEW
    assert low <= created <= high, (
        f"{where}: created={created} is not within {CLOCK_SKEW} s of the request "
        f"(sent at {reply.sent_at:.0f})"
    )


def check_id(value: object, where: str) -> None:
    __tracebackhide__ = True
    assert isinstance(value, str) and ID_SHAPE.match(value), (
        f"{where}: id must be a non-empty string without whitespace, got {value!r}"
    )


def check_usage(usage: object, where: str) -> None:
    """total = prompt + completion; where the cache split is sent, hit + miss = prompt."""
    __tracebackhide__ = True
    found = usage_problems(usage, where)
    assert not found, found[0]


def reasoning_used(message: Json, usage: Json) -> bool:
    """Thinking models may count chain-of-thought outside max_tokens (R1 era), so the
    completion bound is only checked for answers without reasoning."""
    details = usage.get("completion_tokens_details") or {}
    return bool(message.get("reasoning_content")) or bool(details.get("reasoning_tokens"))


def check_completion(api: ApiClient, reply: Reply, request: Json) -> Json:
    """Every invariant of a 200 non-streamed completion; returns the body."""
    __tracebackhide__ = True
    expect_status(reply, 200, "chat completion")
    assert "json" in reply.content_type, f"content-type {reply.content_type!r} is not JSON"
    body = reply.object()
    api.conforms("chat-completion", body, "the completion")
    assert body["object"] == "chat.completion", f"object is {body['object']!r}"
    check_id(body["id"], "the completion")
    check_created(body["created"], reply, "the completion")
    check_usage(body["usage"], "the completion's usage")
    n = request.get("n") or 1
    indexes = [choice["index"] for choice in body["choices"]]
    assert indexes == list(range(n)), f"asked for n={n}; the choices are indexed {indexes}"
    documented = documented_values(
        api.target.dialect.schema("chat-completion"), "choices", "[]", "finish_reason"
    )
    for choice in body["choices"]:
        reason = choice["finish_reason"]
        assert reason in documented, f"finish_reason {reason!r} is not one of {sorted(documented)}"
        limit = request.get("max_tokens")
        if limit is not None and n == 1 and not reasoning_used(choice["message"], body["usage"]):
            completion = body["usage"]["completion_tokens"]
            assert completion <= limit, f"completion_tokens {completion} > max_tokens {limit}"
    return body


# ------------------------------------------------------------------------------ streams

# Shared with the validating proxy (mockserver.invariants); named here for the suite's users.
__all__ = [
    "ABSENT",
    "NULL",
    "PLACEMENT",
    "UsagePlacement",
    "finish_reasons",
    "joined_messages",
]


def check_framing(sse: Sse) -> None:
    """`text/event-stream`, every event dispatched, `[DONE]` exactly once and last."""
    __tracebackhide__ = True
    expect_status(sse.reply, 200, "streamed chat completion")
    assert sse.reply.content_type.startswith("text/event-stream"), (
        f"a stream must be text/event-stream, got {sse.reply.content_type!r}"
    )
    found = framing_problems(sse.events, sse.unterminated)
    assert not found, found[0]


def check_chunks_conform(api: ApiClient, sse: Sse) -> list[Json]:
    __tracebackhide__ = True
    chunks = sse.chunks()
    assert chunks, "no chunk before data: [DONE]"
    for n, chunk in enumerate(chunks):
        api.conforms("chat-completion-chunk", chunk, f"chunk {n}")
    return chunks


def check_same_identity(chunks: list[Json], reply: Reply) -> None:
    """One completion: the same id, created and model on every chunk."""
    __tracebackhide__ = True
    found = identity_problems(chunks)
    assert not found, found[0]
    check_id(chunks[0].get("id"), "the stream")
    check_created(chunks[0].get("created"), reply, "the stream")


def check_finish_reasons(api: ApiClient, chunks: list[Json], n: int = 1) -> None:
    """Exactly one finish_reason per choice, from the documented set."""
    __tracebackhide__ = True
    documented = documented_values(
        api.target.dialect.schema("chat-completion-chunk"), "choices", "[]", "finish_reason"
    )
    found = finish_problems(chunks, n, documented)
    assert not found, found[0]


def check_usage_placement(api: ApiClient, chunks: list[Json], include_usage: bool) -> Json:
    """Usage sits where the dialect documents it, once, and adds up; returns it."""
    __tracebackhide__ = True
    found = placement_problems(api.target.dialect.name, chunks, include_usage)
    assert not found, found[0]
    usage = next(chunk["usage"] for chunk in chunks if chunk.get("usage") is not None)
    assert isinstance(usage, dict)
    return usage


def check_stream(api: ApiClient, sse: Sse, request: Json) -> list[Json]:
    """Every invariant of a streamed completion; returns the chunks."""
    __tracebackhide__ = True
    check_framing(sse)
    chunks = check_chunks_conform(api, sse)
    check_same_identity(chunks, sse.reply)
    n = request.get("n") or 1
    check_finish_reasons(api, chunks, n)
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    check_usage_placement(api, chunks, include_usage)
    found = message_problems(chunks, n)
    assert not found, found[0]
    return chunks
