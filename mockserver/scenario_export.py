"""Recordings → scenario rules (`schemas/scenario.schema.json`) a person can edit: the recorded
prompt as the match, the recorded answer as the reply, its pacing as the delivery."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from mockserver.cassette import Cassette, Interaction, Json
from mockserver.invariants import DONE, finish_reasons, usage_state
from mockserver.proxy import sse_data

USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "prompt_cache_hit_tokens")


def _last_user_text(body: Json) -> str | None:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return None


def _match(body: Json) -> Json:
    match: Json = {}
    if isinstance(body.get("model"), str):
        match["model"] = body["model"]
    match["stream"] = body.get("stream") is True
    prompt = _last_user_text(body)
    if prompt is not None:
        match["prompt"] = f"^{re.escape(prompt)}$"
    return match


def _usage(usage: Any) -> Json:
    if not isinstance(usage, dict):
        return {}
    out = {k: usage[k] for k in USAGE_FIELDS if isinstance(usage.get(k), int)}
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if isinstance(reasoning, int):
        out["reasoning_tokens"] = reasoning
    return out


def _reply_from_stream(interaction: Interaction) -> tuple[Json, Json]:
    chunks: list[Json] = []
    done = False
    data_at: list[float] = []
    keep_alives = 0
    for event in interaction.events:
        if event.kind == "comment":
            keep_alives += 1
            continue
        data = sse_data(event.raw) if event.kind == "data" else None
        if data is None:
            continue
        data_at.append(event.t_ms)
        if data == DONE:
            done = True
            continue
        try:
            chunk = json.loads(data)
        except ValueError:
            continue
        if isinstance(chunk, dict):
            chunks.append(chunk)
    content, reasoning = [], []
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
    reply: Json = {"content": "".join(content)}
    if any(reasoning):
        reply["reasoning_content"] = "".join(reasoning)
    reasons = finish_reasons(chunks).get(0)
    if reasons:
        reply["finish_reason"] = reasons[0]
    usage = next((c["usage"] for c in chunks if usage_state(c) == "set"), None)
    if _usage(usage):
        reply["usage"] = _usage(usage)
    delivery: Json = {}
    if data_at:
        delivery["first_byte"] = round(data_at[0] / 1000, 3)
    if len(data_at) > 1:
        delivery["gap"] = round((data_at[-1] - data_at[0]) / (len(data_at) - 1) / 1000, 4)
    if keep_alives:
        delivery["keep_alives"] = keep_alives
    if not done:
        delivery["cut_after"] = len(chunks)
        if not interaction.complete:
            delivery["reset"] = True
    return reply, delivery


def _reply_from_body(interaction: Interaction) -> Json:
    try:
        body = json.loads(interaction.body)
    except ValueError:
        return {}
    choice = (body.get("choices") or [{}])[0] if isinstance(body, dict) else {}
    message = choice.get("message") or {}
    reply: Json = {}
    if isinstance(message.get("content"), str):
        reply["content"] = message["content"]
    if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
        reply["reasoning_content"] = message["reasoning_content"]
    calls = [
        {"name": call["function"]["name"], "arguments": call["function"].get("arguments", "")}
        for call in message.get("tool_calls") or []
        if isinstance(call, dict) and isinstance(call.get("function"), dict)
    ]
    if calls:
        reply["tool_calls"] = calls
    if choice.get("finish_reason"):
        reply["finish_reason"] = choice["finish_reason"]
    if _usage(body.get("usage")):
        reply["usage"] = _usage(body.get("usage"))
    return reply


def _error(interaction: Interaction) -> Json:
    error: Json = {"status": interaction.status}
    try:
        body = json.loads(interaction.body)
    except ValueError:
        return error
    inner = body.get("error") if isinstance(body, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else None
    if isinstance(message, str):
        error["message"] = message
    return error


def scenario_from(cassette: Cassette) -> Json:
    """One rule per recorded chat completion, in recorded order. A request recorded more than
    once gets `times: 1` on each rule, so the answers come back in the order they were given."""
    rules: list[Json] = []
    chats = [
        (i, interaction)
        for i, interaction in enumerate(cassette.interactions)
        if str(interaction.request.get("path", "")).endswith("/chat/completions")
        and isinstance(interaction.request.get("json"), dict)
    ]
    repeats = Counter(
        json.dumps(_match(interaction.request["json"]), sort_keys=True) for _, interaction in chats
    )
    for i, interaction in chats:
        body = interaction.request["json"]
        rule: Json = {"name": f"{cassette.name} #{i}", "match": _match(body)}
        if interaction.status >= 400:
            rule["error"] = _error(interaction)
        elif interaction.stream:
            reply, delivery = _reply_from_stream(interaction)
            rule["reply"] = reply
            if delivery:
                rule["delivery"] = delivery
        else:
            rule["reply"] = _reply_from_body(interaction)
        if repeats[json.dumps(rule["match"], sort_keys=True)] > 1:
            rule["times"] = 1
        rules.append(rule)
    return {
        "description": f"from cassette {cassette.name} ({cassette.upstream or 'unknown upstream'},"
        f" {cassette.recorded_at or 'undated'}); edit freely",
        "rules": rules,
    }
