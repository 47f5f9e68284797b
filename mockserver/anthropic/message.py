"""A finished completion as an Anthropic `message`, and errors in Anthropic's envelope.

Key order follows Anthropic's Messages reference: id, type, role, model, content, stop_reason,
stop_sequence, usage. Blocks come in the order the model produced them: thinking (with its
signature), text, then tool_use.
"""

from __future__ import annotations

import base64
import hashlib
import string
from typing import Any

import orjson

from mockserver import ids
from mockserver.errors import ApiError, Kind
from mockserver.responder import CallOut, Choice, Completion
from mockserver.usage import Usage

Json = dict[str, Any]
ALNUM = string.ascii_letters + string.digits

# The chat finish reasons → Anthropic's stop reasons (Messages reference, "stop_reason").
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def message_id(model: str) -> str:
    """`msg_` and 24 letters and digits, the form of Anthropic's ids (DeepSeek's own on this
    surface were never captured)."""
    return "msg_" + ids.pick(ALNUM, 24)


def signature(thinking: str) -> str:
    """A thinking block's signature. Opaque to clients, which only pass it back; derived from
    the text, so a streamed answer carries the same one as the same answer in one piece."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def stop_reason(choice: Choice) -> str:
    if choice.stop_sequence is not None:
        return "stop_sequence"
    return STOP_REASONS.get(choice.finish_reason, "end_turn")


def tool_input(call: CallOut) -> Json:
    """A call's arguments as the object Anthropic's `input` is; text that is not a JSON object
    (a canned reply may give any) is kept under `arguments` rather than lost."""
    try:
        value = orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        return {"arguments": call.arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def blocks(choice: Choice) -> list[Json]:
    out: list[Json] = []
    if choice.reasoning is not None:
        out.append(
            {
                "type": "thinking",
                "thinking": choice.reasoning,
                "signature": signature(choice.reasoning),
            }
        )
    if choice.content or not (out or choice.tool_calls):
        out.append({"type": "text", "text": choice.content or ""})
    out += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input(call)}
        for call in choice.tool_calls
    ]
    return out


def usage_json(usage: Usage) -> Json:
    """Anthropic's split: `input_tokens` are the prompt tokens not read from the cache, so
    input + cache reads = DeepSeek's prompt_tokens. DeepSeek's cache is automatic: nothing is
    ever written on request, so cache_creation_input_tokens is 0."""
    return {
        "input_tokens": usage.cache_miss_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cache_hit_tokens,
        "output_tokens": usage.completion_tokens,
    }


def render(c: Completion) -> Json:
    choice = c.choices[0]
    return {
        "id": c.id,
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": blocks(choice),
        "stop_reason": stop_reason(choice),
        "stop_sequence": choice.stop_sequence,
        "usage": usage_json(c.usage),
    }


# Anthropic's error types by status (Messages reference, "Errors"); 529 is overloaded_error.
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
MESSAGES: dict[Kind, str] = {
    "invalid_request": "Invalid request",
    "invalid_parameters": "Invalid request",
    "missing_key": "Authentication Fails (auth header format should be Bearer sk-...)",
    "invalid_key": "Authentication Fails (no such user)",
    "forbidden": "Permission denied",
    "insufficient_balance": "Insufficient Balance",
    "not_found": "Not Found",
    "method_not_allowed": "Method Not Allowed",
    "too_large": "Request body is too large",
    "rate_limit": "Rate Limit Reached",
    "server_error": "Internal server error",
    "bad_gateway": "Bad Gateway",
    "overloaded": "Overloaded",
    "timeout": "Gateway Timeout",
}
OVERLOADED = 529


def error_json(error: ApiError) -> Json:
    kind = TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    message = error.message or (
        "Overloaded" if error.status == OVERLOADED else MESSAGES[error.kind]
    )
    return {"type": "error", "error": {"type": kind, "message": message}}


IN_STREAM_ERROR = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
}
