"""The checks behind the contract tests, shared by the example tests and the property tests.

Each check states one documented fact and fails with what was seen. What differs between the
dialects comes from their schemas, or, for where streamed usage sits (which no schema can say),
from `PLACEMENT` below.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contract_tests.drift import documented_values
from contract_tests.wire import DONE, ApiClient, Json, Reply, Sse
from mockserver import tokens
from mockserver.catalog import packaged

PROMPT = "Reply with one short friendly sentence."
# `created` is unix seconds from the provider's clock: allow for skew, not for a wrong unit.
CLOCK_SKEW = 600
ID_SHAPE = re.compile(r"^\S+$")


@dataclass(frozen=True, slots=True)
class UsagePlacement:
    """Where a stream's usage travels (api_facts §1.7, §2.5, §3.5, §4)."""

    separate_chunk: bool  # its own `choices: []` chunk after the finish chunk (AI/ML)
    elsewhere: frozenset[str]  # what the other chunks carry: "absent" and/or "null"
    elsewhere_with_include_usage: frozenset[str]


ABSENT, NULL = "absent", "null"
PLACEMENT: dict[str, UsagePlacement] = {
    # DeepSeek (2026 reference, observed): on the finish chunk; the key is absent elsewhere,
    # or null everywhere else when include_usage is set.
    "deepseek": UsagePlacement(False, frozenset({ABSENT}), frozenset({NULL})),
    # AI/ML (its streaming example): a separate usage chunk after the finish chunk, which
    # itself says null. Null elsewhere; whether the key may be left out is not documented.
    "aimlapi": UsagePlacement(True, frozenset({NULL, ABSENT}), frozenset({NULL, ABSENT})),
    # AceData (its stream capture): on the finish chunk, even without include_usage; null
    # elsewhere (the chunk schema requires the key).
    "acedata": UsagePlacement(False, frozenset({NULL}), frozenset({NULL})),
}


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
    assert isinstance(usage, dict), f"{where}: usage must be an object, got {usage!r}"
    prompt, completion, total = (
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        usage.get("total_tokens"),
    )
    assert all(isinstance(v, int) for v in (prompt, completion, total)), (
        f"{where}: usage counters must be integers: {usage}"
    )
    assert total == prompt + completion, (  # type: ignore[operator]
        f"{where}: total_tokens {total} != prompt_tokens {prompt} + completion_tokens {completion}"
    )
    hit, miss = usage.get("prompt_cache_hit_tokens"), usage.get("prompt_cache_miss_tokens")
    if hit is not None or miss is not None:
        assert isinstance(hit, int) and isinstance(miss, int), (
            f"{where}: the cache split comes as a pair of integers: hit={hit!r}, miss={miss!r}"
        )
        assert hit + miss == prompt, (
            f"{where}: prompt_cache_hit_tokens {hit} + prompt_cache_miss_tokens {miss} "
            f"!= prompt_tokens {prompt}"
        )
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        assert cached is None or cached == hit, (
            f"{where}: prompt_tokens_details.cached_tokens {cached} != "
            f"prompt_cache_hit_tokens {hit}"
        )


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


def check_framing(sse: Sse) -> None:
    """`text/event-stream`, every event dispatched, `[DONE]` exactly once and last."""
    __tracebackhide__ = True
    expect_status(sse.reply, 200, "streamed chat completion")
    assert sse.reply.content_type.startswith("text/event-stream"), (
        f"a stream must be text/event-stream, got {sse.reply.content_type!r}"
    )
    assert sse.events, "the stream carried no data events at all"
    assert sse.unterminated is None, (
        f"the stream ended inside an event (no blank line after it): {sse.unterminated[:120]!r}"
    )
    assert sse.done_count == 1, (
        "the stream ended without data: [DONE]"
        if sse.done_count == 0
        else f"data: [DONE] came {sse.done_count} times; it must come exactly once"
    )
    assert sse.events[-1] == DONE, (
        f"data: [DONE] must be the last event; {len(sse.events) - 1 - sse.events.index(DONE)} "
        "event(s) followed it"
    )


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
    for key in ("id", "created", "model"):
        values = Counter(repr(chunk.get(key)) for chunk in chunks)
        assert len(values) == 1, f"{key} differs between chunks: {dict(values)}"
    check_id(chunks[0].get("id"), "the stream")
    check_created(chunks[0].get("created"), reply, "the stream")


def finish_reasons(chunks: Iterable[Json]) -> dict[int, list[object]]:
    found: dict[int, list[object]] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if choice.get("finish_reason") is not None:
                found.setdefault(choice.get("index", 0), []).append(choice["finish_reason"])
    return found


def check_finish_reasons(api: ApiClient, chunks: list[Json], n: int = 1) -> None:
    """Exactly one finish_reason per choice, from the documented set."""
    __tracebackhide__ = True
    found = finish_reasons(chunks)
    assert sorted(found) == list(range(n)), (
        f"expected a finish_reason for each of the {n} choice(s); got them for indexes "
        f"{sorted(found)}"
    )
    for index, reasons in found.items():
        assert len(reasons) == 1, (
            f"choice {index} got {len(reasons)} finish_reasons {reasons}; exactly one is allowed"
        )
    documented = documented_values(
        api.target.dialect.schema("chat-completion-chunk"), "choices", "[]", "finish_reason"
    )
    for reasons in found.values():
        assert reasons[0] in documented, (
            f"finish_reason {reasons[0]!r} is not one of {sorted(documented)}"
        )


def _usage_state(chunk: Json) -> str:
    if "usage" not in chunk:
        return ABSENT
    return NULL if chunk["usage"] is None else "set"


def check_usage_placement(api: ApiClient, chunks: list[Json], include_usage: bool) -> Json:
    """Usage sits where the dialect documents it, once, and adds up; returns it."""
    __tracebackhide__ = True
    rule = PLACEMENT[api.target.dialect.name]
    carriers = [n for n, chunk in enumerate(chunks) if chunk.get("usage") is not None]
    assert len(carriers) == 1, f"exactly one chunk must carry usage; chunks {carriers} do"
    at = carriers[0]
    last_finish = max(
        (
            n
            for n, chunk in enumerate(chunks)
            for c in chunk.get("choices") or []
            if c.get("finish_reason") is not None
        ),
        default=-1,
    )
    if rule.separate_chunk:
        assert at == len(chunks) - 1 and chunks[at].get("choices") == [], (
            f"usage must come in a separate last chunk with choices: []; it is on chunk {at} "
            f"of {len(chunks)} with choices {chunks[at].get('choices')!r}"
        )
        assert last_finish == at - 1, (
            f"the usage chunk must follow the finish chunk; finish at {last_finish}, usage at {at}"
        )
    else:
        assert at == last_finish, (
            f"usage must ride on the finish chunk ({last_finish}); it is on chunk {at}"
        )
    allowed = rule.elsewhere_with_include_usage if include_usage else rule.elsewhere
    for n, chunk in enumerate(chunks):
        if n != at:
            state = _usage_state(chunk)
            assert state in allowed, (
                f"chunk {n}: usage is {state} (include_usage={include_usage}); "
                f"expected {' or '.join(sorted(allowed))}"
            )
    usage = chunks[at]["usage"]
    check_usage(usage, f"chunk {at}'s usage")
    assert isinstance(usage, dict)
    return usage


def joined_messages(chunks: Iterable[Json]) -> dict[int, str]:
    """Content and reasoning deltas joined per choice index."""
    texts: dict[int, list[str]] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            pieces = texts.setdefault(choice.get("index", 0), [])
            pieces += [delta.get("reasoning_content") or "", delta.get("content") or ""]
            pieces += [
                (call.get("function") or {}).get("arguments") or ""
                for call in delta.get("tool_calls") or []
            ]
    return {index: "".join(pieces) for index, pieces in texts.items()}


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
    messages = joined_messages(chunks)
    for index in range(n):
        assert messages.get(index), f"choice {index}: the deltas join to an empty message"
    return chunks
