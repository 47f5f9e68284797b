"""AceData Cloud: spaced JSON, role in every delta, its own error codes and trace_id."""

from __future__ import annotations

import string
from collections.abc import Iterator

from mockserver import ids
from mockserver.dialects.base import (
    ALNUM,
    Dialect,
    ErrorBody,
    Json,
    chunk_head,
    completion_head,
    logprobs_json,
    message_json,
    spaced,
    usage_core,
)
from mockserver.errors import ApiError, Kind
from mockserver.responder import Completion
from mockserver.streaming import Delta, Part, chunked, deltas
from mockserver.usage import Usage
from mockserver.validation import Limits

# Captured 2025-08: `deepseek-v3` answers with an `as-…` id and a `flag` in the choice; the
# newer models (2025-12 capture) with `chatcmpl-<uuid>`, `refs` and `service_tier`.
_FLAG_MODELS = frozenset({"deepseek-v3"})


def _acedata_id(model: str) -> str:
    if model in _FLAG_MODELS:
        return "as-" + ids.pick(string.ascii_lowercase + string.digits, 10)
    return f"chatcmpl-{ids.uuid4()}"


def _acedata_render(c: Completion) -> Json:
    if c.model in _FLAG_MODELS:
        return completion_head(c) | {
            "choices": [
                {
                    "index": ch.index,
                    "message": message_json(ch, role_first=True, call_index=False),
                    "finish_reason": ch.finish_reason,
                    "flag": 0,
                }
                for ch in c.choices
            ],
            "usage": usage_core(c.usage),
        }
    return completion_head(c) | {
        "usage": usage_core(c.usage),
        "choices": [
            {
                "index": ch.index,
                "message": message_json(ch, role_first=False, call_index=False),
                "refs": None,
                "logprobs": logprobs_json(ch),
                "finish_reason": ch.finish_reason,
                "service_tier": None,
            }
            for ch in c.choices
        ],
    }


def _acedata_stream_usage(usage: Usage) -> Json:
    return usage_core(usage) | {
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


def _acedata_chunks(c: Completion, include_usage: bool) -> Iterator[Part]:
    head = chunk_head(c, system_fingerprint=None)
    for choice in c.choices:
        last = choice is c.choices[-1]

        def chunk(d: Delta, last: bool = last) -> Json:
            # role repeats in every delta, and so does content (the capture's chunks all carry
            # it): a tool-call or finish delta without text says content null
            delta: Json = {"content": None} | d.delta | {"role": "assistant"}
            out: Json = head | {
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
            if d.finish_reason is not None and last:
                out["usage"] = _acedata_stream_usage(c.usage)
            return out

        yield from chunked(deltas(choice, role_chunk=False), chunk)


def _acedata_stream_id(model: str) -> str:
    """Together-style ids, as in the stream capture: o7X27b1-2kFHot-97098d957dd1d39a-PDX."""
    pick = ids.pick(ALNUM, 13)
    return f"{pick[:7]}-{pick[7:]}-{ids.hex_token(8)}-PDX"


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


# The documented message of each code, for a fault that names a code but no message.
ACEDATA_MESSAGES: dict[str, str] = {
    "bad_request": "The request is invalid.",
    "no_token": "The token is not specified.",
    "invalid_token": "The specified token is invalid or wrong.",
    "token_expired": "The specified token has expired.",
    "token_mismatched": "The specified token is not matched with API.",
    "disabled": "The specified token is disabled.",
    "used_up": "Balance insufficient",
    "forbidden": "The request is forbidden.",
    "no_api": "The API does not exist.",
    "too_many_requests": "You have exceeded the rate limit.",
    "api_error": "Internal server error.",
    "timeout": "The request timed out.",
    "api_not_implemented": "The API is not implemented.",
}


def _acedata_error(error: ApiError, path: str) -> ErrorBody:
    code, status, default = ACEDATA_CODES[error.kind]
    if error.code is not None:
        default = ACEDATA_MESSAGES.get(error.code, default)
    if error.code is not None or error.kind not in ("missing_key", "insufficient_balance"):
        status = error.status  # AceData answers these two kinds with its own status
    message = error.message or default
    if error.plain:
        return ErrorBody(status, message.encode(), "text/plain; charset=utf-8")
    body = {
        "error": {"code": error.code or code, "message": message},
        "trace_id": ids.uuid4(),
    }
    return ErrorBody(status, spaced(body))


ACEDATA = Dialect(
    name="acedata",
    title="AceData Cloud",
    limits=Limits(max_stop=4, max_n=128),
    chat_paths=("/deepseek/chat/completions",),
    sdk_path="/deepseek",
    home="/deepseek",
    key_env="ACEDATA_API_TOKEN",
    live_base_url="https://api.acedata.cloud",
    dumps=spaced,
    new_id=_acedata_id,
    new_stream_id=_acedata_stream_id,
    render=_acedata_render,
    chunks=_acedata_chunks,
    error=_acedata_error,
)
