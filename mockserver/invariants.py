"""The stream and body invariants of the wire contract, as plain functions that return what is
wrong (an empty list when nothing is). The contract suite asserts on them; the validating proxy
reports them as drift. One implementation, so both say the same thing in the same words.

What differs between the dialects comes from their schemas, or, for where streamed usage sits
(which no schema can say), from `PLACEMENT` below.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]
DONE = "[DONE]"


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


def framing_problems(events: list[str], unterminated: str | None) -> list[str]:
    """Every event dispatched, `[DONE]` exactly once and last."""
    if not events:
        return ["the stream carried no data events at all"]
    found: list[str] = []
    if unterminated is not None:
        found.append(
            f"the stream ended inside an event (no blank line after it): {unterminated[:120]!r}"
        )
    done = sum(1 for data in events if data == DONE)
    if done == 0:
        found.append("the stream ended without data: [DONE]")
    elif done > 1:
        found.append(f"data: [DONE] came {done} times; it must come exactly once")
    elif events[-1] != DONE:
        after = len(events) - 1 - events.index(DONE)
        found.append(f"data: [DONE] must be the last event; {after} event(s) followed it")
    return found


def identity_problems(chunks: list[Json]) -> list[str]:
    """One completion: the same id, created and model on every chunk."""
    found = []
    for key in ("id", "created", "model"):
        values = Counter(repr(chunk.get(key)) for chunk in chunks)
        if len(values) > 1:
            found.append(f"{key} differs between chunks: {dict(values)}")
    return found


def finish_reasons(chunks: Iterable[Json]) -> dict[int, list[object]]:
    found: dict[int, list[object]] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if choice.get("finish_reason") is not None:
                found.setdefault(choice.get("index", 0), []).append(choice["finish_reason"])
    return found


def finish_problems(chunks: list[Json], n: int, documented: set[str]) -> list[str]:
    """Exactly one finish_reason per choice, from the documented set."""
    found = finish_reasons(chunks)
    if sorted(found) != list(range(n)):
        return [
            f"expected a finish_reason for each of the {n} choice(s); got them for indexes "
            f"{sorted(found)}"
        ]
    out = [
        f"choice {index} got {len(reasons)} finish_reasons {reasons}; exactly one is allowed"
        for index, reasons in found.items()
        if len(reasons) != 1
    ]
    out += [
        f"finish_reason {reasons[0]!r} is not one of {sorted(documented)}"
        for reasons in found.values()
        if reasons[0] not in documented
    ]
    return out


def usage_problems(usage: object, where: str) -> list[str]:
    """total = prompt + completion; where the cache split is sent, hit + miss = prompt."""
    if not isinstance(usage, dict):
        return [f"{where}: usage must be an object, got {usage!r}"]
    prompt, completion, total = (
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        usage.get("total_tokens"),
    )
    if not all(isinstance(v, int) for v in (prompt, completion, total)):
        return [f"{where}: usage counters must be integers: {usage}"]
    if total != prompt + completion:  # type: ignore[operator]
        return [
            f"{where}: total_tokens {total} != prompt_tokens {prompt} + completion_tokens "
            f"{completion}"
        ]
    hit, miss = usage.get("prompt_cache_hit_tokens"), usage.get("prompt_cache_miss_tokens")
    if hit is None and miss is None:
        return []
    if not (isinstance(hit, int) and isinstance(miss, int)):
        return [f"{where}: the cache split comes as a pair of integers: hit={hit!r}, miss={miss!r}"]
    if hit + miss != prompt:
        return [
            f"{where}: prompt_cache_hit_tokens {hit} + prompt_cache_miss_tokens {miss} "
            f"!= prompt_tokens {prompt}"
        ]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is not None and cached != hit:
        return [
            f"{where}: prompt_tokens_details.cached_tokens {cached} != "
            f"prompt_cache_hit_tokens {hit}"
        ]
    return []


def usage_state(chunk: Json) -> str:
    if "usage" not in chunk:
        return ABSENT
    return NULL if chunk["usage"] is None else "set"


def placement_problems(dialect: str, chunks: list[Json], include_usage: bool) -> list[str]:
    """Usage sits where the dialect documents it, once, and adds up."""
    rule = PLACEMENT[dialect]
    carriers = [n for n, chunk in enumerate(chunks) if chunk.get("usage") is not None]
    if len(carriers) != 1:
        return [f"exactly one chunk must carry usage; chunks {carriers} do"]
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
        if not (at == len(chunks) - 1 and chunks[at].get("choices") == []):
            return [
                f"usage must come in a separate last chunk with choices: []; it is on chunk {at} "
                f"of {len(chunks)} with choices {chunks[at].get('choices')!r}"
            ]
        if last_finish != at - 1:
            return [
                f"the usage chunk must follow the finish chunk; finish at {last_finish}, "
                f"usage at {at}"
            ]
    elif at != last_finish:
        return [f"usage must ride on the finish chunk ({last_finish}); it is on chunk {at}"]
    allowed = rule.elsewhere_with_include_usage if include_usage else rule.elsewhere
    for n, chunk in enumerate(chunks):
        state = usage_state(chunk)
        if n != at and state not in allowed:
            return [
                f"chunk {n}: usage is {state} (include_usage={include_usage}); "
                f"expected {' or '.join(sorted(allowed))}"
            ]
    return usage_problems(chunks[at]["usage"], f"chunk {at}'s usage")


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


def message_problems(chunks: list[Json], n: int) -> list[str]:
    messages = joined_messages(chunks)
    return [
        f"choice {index}: the deltas join to an empty message"
        for index in range(n)
        if not messages.get(index)
    ]
