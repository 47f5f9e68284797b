"""DeepSeek's own API: compact JSON, cache fields, x-ds-trace-id, the OpenAI-style error."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from mockserver import ids, tokens
from mockserver.catalog import Era
from mockserver.dialects.base import (
    Dialect,
    ErrorBody,
    Json,
    chunk_head,
    compact,
    completion_head,
    logprobs_json,
    message_json,
)
from mockserver.errors import ApiError, Kind
from mockserver.responder import Completion
from mockserver.streaming import Delta, Part, Run, chunked, deltas
from mockserver.usage import Usage
from mockserver.validation import Limits


def usage_deepseek(usage: Usage) -> Json:
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


def _deepseek_render(c: Completion) -> Json:
    return completion_head(c) | {
        "choices": [
            {
                "index": ch.index,
                "message": message_json(ch, role_first=True, call_index=True),
                "logprobs": logprobs_json(ch),
                "finish_reason": ch.finish_reason,
            }
            for ch in c.choices
        ],
        "usage": usage_deepseek(c.usage),
        "system_fingerprint": c.fingerprint,
    }


def _deepseek_chunks(c: Completion, include_usage: bool) -> Iterator[Part]:
    head = chunk_head(c, system_fingerprint=c.fingerprint)
    for choice in c.choices:
        last = choice is c.choices[-1]

        def chunk(d: Delta, last: bool = last) -> Json:
            out = head | {
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
            if d.finish_reason is not None and last:
                out["usage"] = usage_deepseek(c.usage)
            elif include_usage:
                out["usage"] = None
            return out

        yield from chunked(deltas(choice, role_chunk=True), chunk)


def _fim_render(c: Completion) -> Json:
    """`object: "text_completion"` with `choices[].text`, in the chat completion's key order."""
    return {
        "id": c.id,
        "object": "text_completion",
        "created": c.created,
        "model": c.model,
        "choices": [
            {
                "index": ch.index,
                "text": ch.content or "",
                "logprobs": None,
                "finish_reason": ch.finish_reason,
            }
            for ch in c.choices
        ],
        "usage": usage_deepseek(c.usage),
        "system_fingerprint": c.fingerprint,
    }


def _fim_chunks(c: Completion, include_usage: bool) -> Iterator[Part]:
    head = {
        "id": c.id,
        "object": "text_completion",
        "created": c.created,
        "model": c.model,
        "system_fingerprint": c.fingerprint,
    }
    tail: Json = {"usage": None} if include_usage else {}
    for choice in c.choices:
        index = choice.index

        def chunk(piece: str, index: int = index) -> Json:
            text = {"index": index, "text": piece, "logprobs": None, "finish_reason": None}
            return head | {"choices": [text]} | tail

        yield Run(chunk, tokens.pieces(choice.content or ""))
        yield head | {
            "choices": [
                {
                    "index": choice.index,
                    "text": "",
                    "logprobs": None,
                    "finish_reason": choice.finish_reason,
                }
            ],
            "usage": usage_deepseek(c.usage),
        }


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


def _deepseek_headers(
    completion: Completion | None, stream: bool, request: Mapping[str, str]
) -> dict[str, str]:
    return {"x-ds-trace-id": ids.hex_token(16)}


def _deepseek_models(era: Era) -> Json:
    """The era's listed models; from V4 on with the capability fields of DeepSeek's 2026
    list-models reference (as a research note of 2026-09-27 quotes it)."""
    data: list[Json] = []
    for spec in era.models.values():
        if not spec.listed:
            continue
        entry: Json = {"id": spec.id, "object": "model", "owned_by": spec.owned_by}
        if era.listing == "capabilities":
            entry |= {
                "name": spec.name or spec.id,
                "context_window": spec.context,
                "max_output_tokens": spec.max_output,
                "input_modalities": sorted(spec.inputs),
                "output_modalities": ["text"],
                "effort": {"supported_levels": list(spec.efforts)}
                | ({"default_level": spec.default_effort} if spec.default_effort else {}),
                "api_capabilities": _capabilities(spec.fim),
            }
        data.append(entry)
    return {"object": "list", "data": data}


def _capabilities(fim: bool) -> list[str]:
    found = ["chat_completions", "tool_calls", "json_output", "chat_prefix_completion"]
    return [*found, "fim_completion"] if fim else found


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
    limits=Limits(max_stop=16, max_n=1),
    chat_paths=("/chat/completions", "/v1/chat/completions", "/beta/chat/completions"),
    fim_paths=("/beta/completions",),
    beta_prefix="/beta/",
    models_paths=("/models", "/v1/models"),
    balance_paths=("/user/balance",),
    key_env="DEEPSEEK_API_KEY",
    live_base_url="https://api.deepseek.com",
    dumps=compact,
    new_id=lambda model: ids.uuid4(),
    render=_deepseek_render,
    chunks=_deepseek_chunks,
    fim_render=_fim_render,
    fim_chunks=_fim_chunks,
    error=_deepseek_error,
    headers=_deepseek_headers,
    models_body=_deepseek_models,
    balance_body=_deepseek_balance,
    invalid_key_message=lambda key: (
        f"Authentication Fails, Your api key: ****{key[-4:]} is invalid"
    ),
)
