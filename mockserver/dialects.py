"""How each provider speaks: paths, auth, ids, JSON spacing, key order, extras and errors.

The pipeline never asks "which dialect am I?"; it asks the dialect. Key orders and spacing
follow the live captures in fixtures/captures/.
"""

from __future__ import annotations

import json
import secrets
import string
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from mockserver.catalog import ACEDATA_MODELS, AIMLAPI_MODELS, DEEPSEEK_MODELS
from mockserver.errors import ApiError, Kind
from mockserver.responder import Choice, Completion
from mockserver.streaming import deltas
from mockserver.usage import Usage
from mockserver.validation import Limits

Json = dict[str, Any]
ALNUM = string.ascii_letters + string.digits


def compact(value: Any) -> bytes:
    return orjson.dumps(value)


def spaced(value: Any) -> bytes:
    """Python-style `", "` / `": "` separators, non-ASCII as is: AceData's wire form."""
    return json.dumps(value, ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class ErrorBody:
    status: int
    body: bytes
    media_type: str = "application/json"


@dataclass(frozen=True, kw_only=True)
class Dialect:
    name: str
    title: str
    limits: Limits
    default_model: str
    chat_paths: tuple[str, ...]
    models_paths: tuple[str, ...] = ()
    balance_paths: tuple[str, ...] = ()
    models_need_key: bool = True
    sdk_path: str = ""  # appended to the server URL to give an OpenAI SDK's base_url
    home: str = ""  # the path prefix this dialect owns (its errors answer unknown paths there)
    invalid_key_message: Callable[[str], str | None] = field(default=lambda key: None)
    key_env: str
    live_base_url: str
    dumps: Callable[[Any], bytes]
    new_id: Callable[[str], str]  # model → completion id
    render: Callable[[Completion], Json]
    chunks: Callable[[Completion, bool], Iterator[Json]]  # (completion, include_usage)
    error: Callable[[ApiError, str], ErrorBody]  # (error, path)
    headers: Callable[[Completion | None, bool], dict[str, str]] = field(
        default=lambda completion, stream: {}
    )
    models_body: Callable[[], Json] = field(default=lambda: {"object": "list", "data": []})
    balance_body: Callable[[bool], Json] = field(default=lambda available: {})

    def schema(self, kind: str) -> str:
        """`kind` is chat-completion, chat-completion-chunk, error, models or balance."""
        return f"{self.name}/{kind}.schema.json"

    def response_model(self, model: str) -> str:
        spec = self.limits.models.get(model)
        return spec.answers_as or model if spec else model


def _usage_deepseek(usage: Usage) -> Json:
    out: Json = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_hit_tokens},
    }
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    out["prompt_cache_hit_tokens"] = usage.cache_hit_tokens
    out["prompt_cache_miss_tokens"] = usage.cache_miss_tokens
    return out


def _usage_core(usage: Usage) -> Json:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _tool_calls(choice: Choice, *, with_index: bool) -> list[Json]:
    return [
        ({"index": k} if with_index else {})
        | {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for k, c in enumerate(choice.tool_calls)
    ]


# ---------------------------------------------------------------------------------- DeepSeek

FINGERPRINT = "fp_eaab8d114b_prod0820_fp8_kvcache"


def _deepseek_message(choice: Choice) -> Json:
    message: Json = {"role": "assistant", "content": choice.content}
    if choice.reasoning is not None:
        message["reasoning_content"] = choice.reasoning
    if choice.tool_calls:
        message["tool_calls"] = _tool_calls(choice, with_index=True)
    return message


def _deepseek_render(c: Completion) -> Json:
    return {
        "id": c.id,
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "choices": [
            {
                "index": ch.index,
                "message": _deepseek_message(ch),
                "logprobs": {"content": ch.logprobs} if ch.logprobs is not None else None,
                "finish_reason": ch.finish_reason,
            }
            for ch in c.choices
        ],
        "usage": _usage_deepseek(c.usage),
        "system_fingerprint": FINGERPRINT,
    }


def _deepseek_chunks(c: Completion, include_usage: bool) -> Iterator[Json]:
    head = {
        "id": c.id,
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
        "system_fingerprint": FINGERPRINT,
    }
    for choice in c.choices:
        for d in deltas(choice, role_chunk=True):
            chunk = head | {
                "choices": [
                    {
                        "index": d.index,
                        "delta": d.delta,
                        "logprobs": {"content": [d.logprob]} if d.logprob is not None else None,
                        "finish_reason": d.finish_reason,
                    }
                ]
            }
            # Usage rides on the finish chunk; with include_usage every other chunk says null.
            if d.finish_reason is not None and choice is c.choices[-1]:
                chunk["usage"] = _usage_deepseek(c.usage)
            elif include_usage:
                chunk["usage"] = None
            yield chunk


DEEPSEEK_MESSAGES: dict[Kind, tuple[str, str]] = {
    # kind: (type, default message) — codes table of api-docs.deepseek.com and observed bodies
    "invalid_request": ("invalid_request_error", "Invalid Format"),
    "invalid_parameters": ("invalid_request_error", "Invalid Parameters"),
    "missing_key": (
        "authentication_error",
        "Authentication Fails (auth header format should be Bearer sk-...)",
    ),
    "invalid_key": ("authentication_error", "Authentication Fails (no such user)"),
    "forbidden": ("permission_error", "Permission Denied"),
    "insufficient_balance": ("unknown_error", "Insufficient Balance"),
    "not_found": ("invalid_request_error", "Not Found"),
    "method_not_allowed": ("invalid_request_error", "Method Not Allowed"),
    "too_large": ("invalid_request_error", "Request body is too large"),
    "rate_limit": ("rate_limit_error", "Rate Limit Reached"),
    "server_error": ("server_error", "Server Error"),
    "bad_gateway": ("server_error", "Bad Gateway"),
    "overloaded": ("server_error", "Server Overloaded"),
    "timeout": ("server_error", "Gateway Timeout"),
}


def _deepseek_error(error: ApiError, path: str) -> ErrorBody:
    kind_type, default = DEEPSEEK_MESSAGES[error.kind]
    message = error.message or default
    if error.plain:
        return ErrorBody(error.status, message.encode(), "text/plain; charset=utf-8")
    body = {
        "error": {
            "message": message,
            "type": kind_type,
            "param": None,
            "code": error.code or "invalid_request_error",
        }
    }
    return ErrorBody(error.status, compact(body))


def _deepseek_headers(completion: Completion | None, stream: bool) -> dict[str, str]:
    return {"x-ds-trace-id": secrets.token_hex(16)}


def _deepseek_models() -> Json:
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "owned_by": "deepseek"} for m in DEEPSEEK_MODELS],
    }


def _deepseek_balance(available: bool) -> Json:
    total, granted, topped = ("110.00", "10.00", "100.00") if available else ("0.00",) * 3
    return {
        "is_available": available,
        "balance_infos": [
            {
                "currency": "CNY",
                "total_balance": total,
                "granted_balance": granted,
                "topped_up_balance": topped,
            }
        ],
    }


DEEPSEEK = Dialect(
    name="deepseek",
    title="DeepSeek API",
    limits=Limits(models=DEEPSEEK_MODELS, max_stop=16, max_n=1),
    default_model="deepseek-chat",
    chat_paths=("/chat/completions", "/v1/chat/completions", "/beta/chat/completions"),
    models_paths=("/models", "/v1/models"),
    balance_paths=("/user/balance",),
    key_env="DEEPSEEK_API_KEY",
    live_base_url="https://api.deepseek.com",
    dumps=compact,
    new_id=lambda model: str(uuid.uuid4()),
    render=_deepseek_render,
    chunks=_deepseek_chunks,
    error=_deepseek_error,
    headers=_deepseek_headers,
    models_body=_deepseek_models,
    balance_body=_deepseek_balance,
    invalid_key_message=lambda key: (
        f"Authentication Fails, Your api key: ****{key[-4:]} is invalid"
    ),
)

# ------------------------------------------------------------------------------------ AI/ML

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
            message["tool_calls"] = _tool_calls(ch, with_index=False)
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
        "usage": _usage_core(c.usage),
        "meta": _aiml_meta(c.usage),
    }


def _aiml_chunks(c: Completion, include_usage: bool) -> Iterator[Json]:
    head = {"id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model}
    for choice in c.choices:
        for d in deltas(choice, role_chunk=True):
            choices = [
                {
                    "index": d.index,
                    "delta": d.delta,
                    "logprobs": None,
                    "finish_reason": d.finish_reason,
                }
            ]
            yield head | {"choices": choices, "usage": None}
    # A separate usage chunk with empty choices closes the stream, with or without include_usage.
    yield head | {"choices": [], "usage": _usage_core(c.usage), "meta": _aiml_meta(c.usage)}


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
        "requestId": str(uuid.uuid4()),
        "statusCode": status,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return ErrorBody(status, compact(body))


def _aiml_headers(completion: Completion | None, stream: bool) -> dict[str, str]:
    headers = {"x-inference-id": str(uuid.uuid4())}
    if completion is not None and not stream:
        meta = _aiml_meta(completion.usage)["usage"]
        headers["x-aimlapi-credits-used"] = str(meta["credits_used"])
        headers["x-aimlapi-usd-spent"] = str(meta["usd_spent"])
    return headers


def _aiml_models() -> Json:
    return {
        "object": "list",
        "data": [
            {
                "id": "deepseek/deepseek-chat-v3-0324",
                "aliases": ["deepseek-chat", "deepseek/deepseek-chat"],
                "type": "openai/chat-completions",
                "info": {
                    "name": "DeepSeek V3",
                    "developer": "DeepSeek",
                    "description": "DeepSeek V3 (Mar 24, 2025) chat model.",
                    "contextLength": 128000,
                    "url": "https://aimlapi.com/models/deepseek-v3",
                },
                "tags": ["chat"],
            }
        ],
    }


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
    limits=Limits(models=AIMLAPI_MODELS, max_stop=4, max_n=1),
    default_model="deepseek-chat",
    chat_paths=("/v1/chat/completions", "/chat/completions"),
    models_paths=("/v1/models", "/models", "/api/v1/models"),
    balance_paths=("/v1/billing/balance",),
    models_need_key=False,
    sdk_path="/v1",
    key_env="AIMLAPI_API_KEY",
    live_base_url="https://api.aimlapi.com",
    dumps=compact,
    new_id=lambda model: (
        f"gen-{int(datetime.now(UTC).timestamp())}-"
        + "".join(secrets.choice(ALNUM) for _ in range(20))
    ),
    render=_aiml_render,
    chunks=_aiml_chunks,
    error=_aiml_error,
    headers=_aiml_headers,
    models_body=_aiml_models,
    balance_body=_aiml_balance,
)

# ---------------------------------------------------------------------------------- AceData

# Captured 2025-08: `deepseek-v3` answers with an `as-…` id and a `flag` in the choice; the
# newer models (2025-12 capture) with `chatcmpl-<uuid>`, `refs` and `service_tier`.
_FLAG_MODELS = frozenset({"deepseek-v3"})


def _acedata_id(model: str) -> str:
    if model in _FLAG_MODELS:
        return "as-" + "".join(
            secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10)
        )
    return f"chatcmpl-{uuid.uuid4()}"


def _acedata_message(ch: Choice, *, role_first: bool) -> Json:
    message: Json = (
        {"role": "assistant", "content": ch.content}
        if role_first
        else {
            "content": ch.content,
            "role": "assistant",
        }
    )
    if ch.reasoning is not None:
        message["reasoning_content"] = ch.reasoning
    if ch.tool_calls:
        message["tool_calls"] = _tool_calls(ch, with_index=False)
    return message


def _acedata_render(c: Completion) -> Json:
    if c.model in _FLAG_MODELS:
        return {
            "id": c.id,
            "object": "chat.completion",
            "created": c.created,
            "model": c.model,
            "choices": [
                {
                    "index": ch.index,
                    "message": _acedata_message(ch, role_first=True),
                    "finish_reason": ch.finish_reason,
                    "flag": 0,
                }
                for ch in c.choices
            ],
            "usage": _usage_core(c.usage),
        }
    return {
        "id": c.id,
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "usage": _usage_core(c.usage),
        "choices": [
            {
                "index": ch.index,
                "message": _acedata_message(ch, role_first=False),
                "refs": None,
                "logprobs": {"content": ch.logprobs} if ch.logprobs is not None else None,
                "finish_reason": ch.finish_reason,
                "service_tier": None,
            }
            for ch in c.choices
        ],
    }


def _acedata_stream_usage(usage: Usage) -> Json:
    return _usage_core(usage) | {
        "prompt_tokens_details": {
            "cached_tokens": usage.cache_hit_tokens,
            "text_tokens": 0,
            "audio_tokens": 0,
            "image_tokens": 0,
        },
        "completion_tokens_details": {
            "text_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": usage.reasoning_tokens or 0,
        },
        "input_tokens": 0,
        "output_tokens": 0,
        "input_tokens_details": None,
    }


def _acedata_chunks(c: Completion, include_usage: bool) -> Iterator[Json]:
    head = {
        "id": c.id,
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
        "system_fingerprint": None,
    }
    for choice in c.choices:
        for d in deltas(choice, role_chunk=False):
            delta: Json = d.delta | {"role": "assistant"}  # role repeats in every delta
            chunk: Json = head | {
                "choices": [
                    {
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": d.finish_reason,
                        "index": d.index,
                    }
                ],
                "usage": None,
            }
            if d.finish_reason is not None and choice is c.choices[-1]:
                chunk["usage"] = _acedata_stream_usage(c.usage)
            yield chunk


def _acedata_stream_id() -> str:
    """Together-style ids, as in the stream capture: o7X27b1-2kFHot-97098d957dd1d39a-PDX."""
    pick = "".join(secrets.choice(ALNUM) for _ in range(13))
    return f"{pick[:7]}-{pick[7:]}-{secrets.token_hex(8)}-PDX"


ACEDATA_CODES: dict[Kind, tuple[str, int, str]] = {
    # kind: (code, status, default message) — AceData's documented code table
    "invalid_request": ("bad_request", 400, "The request is invalid."),
    "invalid_parameters": ("bad_request", 400, "The request parameters are invalid."),
    "missing_key": ("no_token", 400, "The token is not specified."),
    "invalid_key": ("invalid_token", 401, "The specified token is invalid or wrong."),
    "forbidden": ("forbidden", 403, "The request is forbidden."),
    "insufficient_balance": ("used_up", 403, "Balance insufficient"),
    "not_found": ("no_api", 404, "The API does not exist."),
    "method_not_allowed": ("no_api", 405, "The method is not allowed."),
    "too_large": ("bad_request", 413, "The request body is too large."),
    "rate_limit": ("too_many_requests", 429, "You have exceeded the rate limit."),
    "server_error": ("api_error", 500, "Internal server error."),
    "bad_gateway": ("api_error", 502, "fetch failed"),
    "overloaded": ("api_error", 503, "The service is overloaded."),
    "timeout": ("timeout", 504, "The request timed out."),
}


def _acedata_error(error: ApiError, path: str) -> ErrorBody:
    code, status, default = ACEDATA_CODES[error.kind]
    if error.code is not None or error.kind not in ("missing_key", "insufficient_balance"):
        status = error.status  # AceData answers these two kinds with its own status
    message = error.message or default
    if error.plain:
        return ErrorBody(status, message.encode(), "text/plain; charset=utf-8")
    body = {
        "error": {"code": error.code or code, "message": message},
        "trace_id": str(uuid.uuid4()),
    }
    return ErrorBody(status, spaced(body))


ACEDATA = Dialect(
    name="acedata",
    title="AceData Cloud",
    limits=Limits(models=ACEDATA_MODELS, max_stop=4, max_n=128),
    default_model="deepseek-v3",
    chat_paths=("/deepseek/chat/completions",),
    sdk_path="/deepseek",
    home="/deepseek",
    key_env="ACEDATA_API_TOKEN",
    live_base_url="https://api.acedata.cloud",
    dumps=spaced,
    new_id=_acedata_id,
    render=_acedata_render,
    chunks=_acedata_chunks,
    error=_acedata_error,
)

DIALECTS: Mapping[str, Dialect] = {d.name: d for d in (DEEPSEEK, AIMLAPI, ACEDATA)}


def stream_id(dialect: Dialect, model: str) -> str:
    """Streams get their own id style where the captures show one (AceData)."""
    return _acedata_stream_id() if dialect is ACEDATA else dialect.new_id(model)
