"""The AI/ML API: canonical model ids, meta.usage, a usage chunk of its own, NestJS errors."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from mockserver import ids
from mockserver.catalog import Era
from mockserver.dialects.base import (
    ALNUM,
    Dialect,
    ErrorBody,
    Json,
    chunk_head,
    compact,
    tool_calls_json,
    usage_core,
)
from mockserver.errors import ApiError
from mockserver.responder import Completion
from mockserver.streaming import Delta, Part, chunked, deltas
from mockserver.usage import Usage
from mockserver.validation import Limits

# One credit is half a micro-dollar: the docs' example pairs 2480 credits with $0.00124.
_USD_PER_INPUT, _USD_PER_OUTPUT = 0.28e-6, 0.42e-6


def _aiml_meta(usage: Usage) -> Json:
    usd = usage.prompt_tokens * _USD_PER_INPUT + usage.completion_tokens * _USD_PER_OUTPUT
    return {"usage": {"credits_used": round(usd * 2_000_000), "usd_spent": round(usd, 8)}}


def _aiml_render(c: Completion) -> Json:
    choices = []
    for ch in c.choices:
        message: Json = {
            "role": "assistant",
            "content": ch.content,
            "reasoning_content": ch.reasoning or "",
            "refusal": None,
        }
        if ch.tool_calls:
            message["tool_calls"] = tool_calls_json(ch, with_index=False)
        logprobs = {"content": ch.logprobs, "refusal": None} if ch.logprobs is not None else None
        choices.append(
            {
                "index": ch.index,
                "finish_reason": ch.finish_reason,
                "logprobs": logprobs,
                "message": message,
            }
        )
    return {
        "id": c.id,
        "object": "chat.completion",
        "choices": choices,
        "created": c.created,
        "model": c.model,
        "usage": usage_core(c.usage),
        "meta": _aiml_meta(c.usage),
    }


def _aiml_chunks(c: Completion, include_usage: bool) -> Iterator[Part]:
    head = chunk_head(c)

    def chunk(d: Delta) -> Json:
        choices = [
            {
                "index": d.index,
                "delta": d.delta,
                "logprobs": None,
                "finish_reason": d.finish_reason,
            }
        ]
        return head | {"choices": choices, "usage": None}

    for choice in c.choices:
        yield from chunked(deltas(choice, role_chunk=True), chunk)
    # A separate usage chunk with empty choices closes the stream, with or without include_usage.
    yield head | {"choices": [], "usage": usage_core(c.usage), "meta": _aiml_meta(c.usage)}


AIML_MESSAGES: dict[int, str] = {
    400: "Body validation error!",
    401: "This request requires a valid API key. "
    "You can create a new API key on the Billing page: https://aimlapi.com/app/keys",
    403: "You've run out of credits. Please top up your balance or update your payment method "
    "to continue: https://aimlapi.com/app/billing/",
    404: "Not Found",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service unavailable",
    504: "Generation timeout",
}


def _aiml_error(error: ApiError, path: str) -> ErrorBody:
    status = 403 if error.kind == "insufficient_balance" and error.status == 402 else error.status
    message = error.message or AIML_MESSAGES.get(status, "Error")
    if status == 400 and error.message and not error.message.startswith("Body validation"):
        message = f"Body validation error! {error.message}"
    if error.plain:
        return ErrorBody(status, message.encode(), "text/plain; charset=utf-8")
    body = {
        "message": message,
        "path": path,
        "requestId": ids.uuid4(),
        "statusCode": status,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return ErrorBody(status, compact(body))


# X-Client-Request-Id: 1-128 of these characters, echoed back; anything else is dropped.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _aiml_headers(
    completion: Completion | None, stream: bool, request: Mapping[str, str]
) -> dict[str, str]:
    headers = {"x-inference-id": ids.uuid4()}
    client_id = request.get("x-client-request-id", "")
    if _CLIENT_ID.fullmatch(client_id):
        headers["x-client-request-id"] = client_id
    if completion is not None and not stream:
        meta = _aiml_meta(completion.usage)["usage"]
        headers["x-aimlapi-credits-used"] = str(meta["credits_used"])
        headers["x-aimlapi-usd-spent"] = str(meta["usd_spent"])
    return headers


def _aiml_models(era: Era) -> Json:
    """AI/ML's own listing: canonical ids with their aliases and an `info` block."""
    data = []
    for spec in era.models.values():
        if not spec.listed:
            continue
        aliases = [m.id for m in era.models.values() if m.answers_as == spec.id and m is not spec]
        data.append(
            {
                "id": spec.id,
                "aliases": aliases,
                "type": "openai/chat-completions",
                "info": {
                    "name": spec.name or spec.id,
                    "developer": "DeepSeek",
                    "description": f"{spec.name or spec.id} chat model.",
                    "contextLength": 128000 if spec.context == 131072 else spec.context,
                    "url": f"https://aimlapi.com/models/{spec.id.rsplit('/', 1)[-1]}",
                },
                "tags": ["chat"],
            }
        )
    return {"object": "list", "data": data}


def _aiml_balance(available: bool) -> Json:
    return {
        "balance": 100000 if available else 0,
        "lowBalance": not available,
        "lowBalanceThreshold": 10000,
        "lastUpdated": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "autoDebitStatus": "disabled",
        "status": "current" if available else "low",
        "statusExplanation": "Balance is current" if available else "Balance is low",
    }


AIMLAPI = Dialect(
    name="aimlapi",
    title="AI/ML API",
    limits=Limits(max_stop=4, max_n=1),
    chat_paths=("/v1/chat/completions", "/chat/completions"),
    models_paths=("/v1/models", "/models", "/api/v1/models"),
    balance_paths=("/v1/billing/balance",),
    models_need_key=False,
    sdk_path="/v1",
    key_env="AIMLAPI_API_KEY",
    live_base_url="https://api.aimlapi.com",
    dumps=compact,
    new_id=lambda model: f"gen-{int(datetime.now(UTC).timestamp())}-" + ids.pick(ALNUM, 20),
    render=_aiml_render,
    chunks=_aiml_chunks,
    error=_aiml_error,
    headers=_aiml_headers,
    models_body=_aiml_models,
    balance_body=_aiml_balance,
)
