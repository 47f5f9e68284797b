"""Request bytes → a validated `ChatRequest`, or an `ApiError` with the provider's wording.

The checks follow `schemas/chat-request.schema.json` (tests hold the two together). What an
era adds or words differently (the models it serves, its roles, ranges and texts) comes from
the era (`mockserver.catalog`); the conversation rules of an era are in `mockserver.rules`.
Deserialisation failures read like the serde errors DeepSeek's server returns.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from mockserver import rules, tokens
from mockserver.catalog import Era, ModelSpec
from mockserver.errors import ApiError
from mockserver.nesting import MAX_BODY_DEPTH, deeper_than, may_be_deeper_than

Json = dict[str, Any]

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
PREFIX = "Failed to deserialize the JSON body into the target type: "


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What differs between dialects in what they accept."""

    max_stop: int = 16
    max_n: int = 1  # DeepSeek documents no `n`; AceData allows up to 128
    max_tools: int = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """The validated request, reduced to what the pipeline needs, plus the raw body."""

    model: str
    spec: ModelSpec
    messages: list[Json]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    n: int = 1
    json_mode: bool = False
    tools: list[Json] = field(default_factory=list)
    tool_choice: str | Json | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    thinking: bool = False
    effort: str | None = None  # reasoning_effort as sent (None: the model's default)
    prompt_ids: tuple[int, ...] = ()
    raw: Json = field(default_factory=dict)
    era: Era
    beta: bool = False  # sent to the /beta base URL
    fim: bool = False  # a FIM completion (`prompt` and `suffix`), not a chat

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return tokens._text(message.get("content"))
        return ""

    @property
    def prefix(self) -> str | None:
        """The assistant prefix of a Chat Prefix Completion request, if this is one."""
        last = self.messages[-1]
        if last.get("role") == "assistant" and last.get("prefix") is True:
            return tokens._text(last.get("content"))
        return None

    @property
    def output_limit(self) -> int:
        return self.max_tokens if self.max_tokens is not None else self.spec.default_output


def parse_body(data: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no invalid UTF-8, no lone surrogates, bounded nesting."""
    if not data.strip():
        raise ApiError("invalid_request", PREFIX + "EOF while parsing a value at line 1 column 0")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            "invalid_request", f"Failed to parse the request body as JSON: {exc.msg}"
        ) from None
    # orjson reads 1024 levels but writes only 254: refuse what the server could not write back.
    if may_be_deeper_than(data, MAX_BODY_DEPTH) and deeper_than(body, MAX_BODY_DEPTH):
        raise ApiError(
            "invalid_request", "Failed to parse the request body as JSON: depth limit exceeded"
        )
    return body


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value[:40]}"'
    if isinstance(value, list):
        return "sequence"
    return "map"


def _bad(path: str, value: Any, expected: str) -> ApiError:
    return ApiError(
        "invalid_request", f"{PREFIX}{path}: invalid type: {_type_name(value)}, expected {expected}"
    )


def _range_error(key: str, text: str) -> ApiError:
    return ApiError("invalid_request", text, param=key)


def _range_text(key: str, low: float, high: float) -> str:
    low_s, high_s = (f"{v:g}" for v in (low, high))
    return f"Invalid {key} value, the valid range of {key} is [{low_s}, {high_s}]"


def _number(
    body: Json, key: str, low: float, high: float, *, exclusive_low: bool = False, text: str = ""
) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(key, value, "f32")
    if not low <= value <= high or (exclusive_low and value == low):
        raise _range_error(key, text or _range_text(key, low, high))


def _integer(body: Json, key: str, low: int, high: int, *, text: str = "") -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, value, "u32")
    if not low <= value <= high:
        raise _range_error(key, text or _range_text(key, low, high))
    return value


def _boolean(body: Json, key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(key, value, "a boolean")
    return value


def _content(path: str, message: Json, *, nullable: bool) -> None:
    if "content" not in message:
        if nullable:
            return
        raise ApiError("invalid_request", f"{PREFIX}{path}: missing field `content`")
    content = message["content"]
    if content is None and nullable:
        return
    if isinstance(content, str):
        return
    if isinstance(content, list) and content:
        for i, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _bad(f"{path}.content[{i}]", part, "a content part object")
            if part["type"] == "text" and "text" not in part:
                missing = f"{PREFIX}{path}.content[{i}]: missing field `text`"
                raise ApiError("invalid_request", missing)
            if part["type"] == "text" and not isinstance(part["text"], str):
                raise _bad(f"{path}.content[{i}].text", part["text"], "a string")
        return
    raise _bad(f"{path}.content", content, "a string")


def _messages(value: Any, roles: tuple[str, ...]) -> list[Json]:
    if not isinstance(value, list):
        raise _bad("messages", value, "a sequence")
    if not value:
        raise ApiError("invalid_request", "Empty input messages", param="messages")
    for i, message in enumerate(value):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _bad(path, message, "internally tagged enum Message")
        role = message.get("role")
        if "role" not in message:
            raise ApiError("invalid_request", f"{PREFIX}{path}: missing field `role`")
        if role not in roles:
            shown = role if isinstance(role, str) else _type_name(role)
            expected = ", ".join(f"`{r}`" for r in roles)
            raise ApiError(
                "invalid_request",
                f"{PREFIX}{path}.role: unknown variant `{shown}`, expected one of {expected}",
            )
        _content(path, message, nullable=role == "assistant")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise ApiError("invalid_request", f"{PREFIX}{path}: missing field `tool_call_id`")
        if (
            "name" in message
            and message["name"] is not None
            and not isinstance(message["name"], str)
        ):
            raise _bad(f"{path}.name", message["name"], "a string")
        calls = message.get("tool_calls")
        if calls is not None and (
            role != "assistant"
            or not isinstance(calls, list)
            or not all(isinstance(c, dict) and isinstance(c.get("id"), str) for c in calls)
        ):
            raise _bad(f"{path}.tool_calls", calls, "a sequence of tool calls with ids")
        if "prefix" in message and message["prefix"] is not None:
            if not isinstance(message["prefix"], bool):
                raise _bad(f"{path}.prefix", message["prefix"], "a boolean")
            if message["prefix"] and (role != "assistant" or i != len(value) - 1):
                raise ApiError(
                    "invalid_request",
                    "The prefix field can only be set on the last message, "
                    "which must be an assistant message",
                    param="messages",
                )
    return value


def _tools(value: Any, limit: int) -> list[Json]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad("tools", value, "a sequence")
    if len(value) > limit:
        raise ApiError(
            "invalid_request",
            f"Too many tools: at most {limit} functions are supported",
            param="tools",
        )
    for i, tool in enumerate(value):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise ApiError(
                "invalid_request", f"{PREFIX}tools[{i}]: unknown variant, expected `function`"
            )
        function = tool.get("function")
        if not isinstance(function, dict):
            raise ApiError("invalid_request", f"{PREFIX}tools[{i}]: missing field `function`")
        name = function.get("name")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            raise ApiError(
                "invalid_request",
                f"Invalid 'tools[{i}].function.name': must match ^[a-zA-Z0-9_-]{{1,64}}$",
                param=f"tools[{i}].function.name",
            )
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise _bad(f"tools[{i}].function.parameters", parameters, "a JSON Schema object")
        strict = function.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _bad(f"tools[{i}].function.strict", strict, "a boolean")
    return value


TOOL_CHOICE_MODES = ("none", "auto", "required")


def _tool_choice(value: Any, tools: list[Json]) -> str | Json | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in TOOL_CHOICE_MODES:
            raise ApiError(
                "invalid_request",
                f"{PREFIX}tool_choice: unknown variant `{value}`, "
                "expected one of `none`, `auto`, `required`",
            )
        return value
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(value, dict) or value.get("type") != "function" or not isinstance(name, str):
        raise _bad("tool_choice", value, "`none`, `auto`, `required` or a named function")
    if name not in {t["function"]["name"] for t in tools}:
        raise ApiError(
            "invalid_request",
            f"tool_choice names a function that is not in tools: {name}",
            param="tool_choice",
        )
    return value


def _stop(value: Any, limit: int, era: Era) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _bad("stop", value, "a string or a sequence of strings")
    if len(value) > limit:
        raise era.refusal("stop_count", limit=limit, count=len(value)) or ApiError(
            "invalid_request",
            f"Invalid stop value, at most {limit} stop sequences are allowed",
            param="stop",
        )
    return tuple(value)


def _thinking(body: Json, spec: ModelSpec) -> bool:
    value = body.get("thinking")
    if value is None:
        return spec.thinking
    if not isinstance(value, dict) or value.get("type") not in ("enabled", "disabled"):
        # DeepSeek answers a boolean here with 422 Invalid Parameters.
        raise ApiError(
            "invalid_parameters",
            f"{PREFIX}thinking: invalid type: {_type_name(value)}, "
            'expected struct Thinking with type "enabled" or "disabled"',
        )
    return bool(value["type"] == "enabled")


# What DeepSeek's deserializer accepts for reasoning_effort; its docs map minimal → low,
# medium → high and xhigh → max, and `none` turns thinking off.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def _effort(body: Json, era: Era) -> str | None:
    value = body.get("reasoning_effort")
    if value is None or era.refusal("reasoning_effort_variant") is None:
        return None  # an era before reasoning_effort ignores the field
    if not isinstance(value, str):
        raise era.refusal("reasoning_effort_type", value=value) or _bad(
            "reasoning_effort", value, "a string"
        )
    if value not in EFFORTS:
        raise era.refusal("reasoning_effort_variant", value=value) or _bad(
            "reasoning_effort", value, "a known effort"
        )
    return value


def _top_logprobs(body: Json, era: Era, logprobs: bool) -> int:
    value = body.get("top_logprobs")
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise era.refusal("top_logprobs_negative", value=value) or _range_error(
            "top_logprobs", _range_text("top_logprobs", 0, 20)
        )
    range_check = era.check("top_logprobs_range")
    top = _integer(body, "top_logprobs", 0, 20, text=range_check.text() if range_check else "")
    if not logprobs and (needs := era.refusal("top_logprobs_needs_logprobs")):
        raise needs
    return top or 0


def _json_mode(body: Json, era: Era, messages: list[Json]) -> bool:
    response_format = body.get("response_format")
    if response_format is None:
        return False
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise _bad("response_format", response_format, "`text` or `json_object`")
    if kind == "json_schema" and (unavailable := era.refusal("json_schema_unavailable")):
        raise unavailable
    needs_word = era.refusal("json_object_needs_word") if kind == "json_object" else None
    if needs_word and not any("json" in tokens._text(m.get("content")).lower() for m in messages):
        raise needs_word
    return kind in ("json_object", "json_schema")


def request_object(body: Any, struct: str, required: tuple[str, ...]) -> tuple[Json, str]:
    """The body as an object with its required fields, and its `model` name."""
    if not isinstance(body, dict):
        raise ApiError(
            "invalid_request", f"{PREFIX}invalid type: {_type_name(body)}, expected struct {struct}"
        )
    for key in required:
        if key not in body:
            raise ApiError("invalid_request", f"{PREFIX}missing field `{key}`")
    model = body["model"]
    if not isinstance(model, str):
        raise _bad("model", model, "a string")
    return body, model


def served(era: Era, model: str) -> ModelSpec:
    """The model as the era serves it, or the era's unknown-model error."""
    spec = era.models.get(model)
    if spec is None:
        raise era.refusal("unknown_model", model=model) or ApiError(
            "invalid_request", "Model Not Exist", param="model"
        )
    return spec


def parse_chat(body: Any, limits: Limits, era: Era, *, beta: bool = False) -> ChatRequest:
    """`era` gives the models and the rules in force; `beta` says the request came to the
    /beta base URL, which some features need."""
    body, model = request_object(body, "ChatCompletionRequest", ("messages", "model"))
    messages = _messages(body["messages"], era.roles)
    spec = served(era, model)

    _number(body, "temperature", 0, 2)
    top_p = era.check("top_p_range")
    _number(
        body,
        "top_p",
        0,
        1,
        exclusive_low=era.top_p_exclusive_low,
        text=top_p.text() if top_p else "",
    )
    _number(body, "frequency_penalty", -2, 2)
    _number(body, "presence_penalty", -2, 2)
    max_tokens = _integer(body, "max_tokens", 1, spec.max_output)
    if era.max_completion_tokens == "ignore":
        _integer(body, "max_completion_tokens", 0, 2**32 - 1)  # read, then ignored as live does
        completion_cap = None
    else:
        completion_cap = _integer(body, "max_completion_tokens", 1, spec.max_output)
    n = _integer(body, "n", 1, max(limits.max_n, 1)) or 1
    stream = _boolean(body, "stream")
    logprobs = _boolean(body, "logprobs")
    top_logprobs = _top_logprobs(body, era, logprobs)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _bad("stream_options", options, "struct StreamOptions")
    usage = options.get("include_usage") if options else None
    if usage is not None and not isinstance(usage, bool):
        raise _bad("stream_options.include_usage", usage, "a boolean")
    include_usage = usage is True

    json_mode = _json_mode(body, era, messages)
    tools = _tools(body.get("tools"), limits.max_tools)
    tool_choice = _tool_choice(body.get("tool_choice"), tools)
    if tool_choice is not None and tool_choice != "none" and not tools:
        raise ApiError(
            "invalid_request", "tool_choice is set but no tools are given", param="tool_choice"
        )
    stop = _stop(body.get("stop"), limits.max_stop, era)
    effort = _effort(body, era)
    thinking = _thinking(body, spec) and effort != "none"
    asks_logprobs = logprobs or body.get("top_logprobs") is not None
    if thinking and asks_logprobs and (refused := era.refusal("logprobs_in_thinking", model=model)):
        raise refused
    # Counted before the era's rules see the request, so it is built once, whole (a copy with
    # its ids cost more than the rules); a rule's refusal still comes before the context check.
    tools_text = orjson.dumps(tools).decode() if tools else ""
    prompt_ids = tokens.prompt_ids(messages, tools_text, template=spec.template, thinking=thinking)
    chat = ChatRequest(
        model=model,
        spec=spec,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens if max_tokens is not None else completion_cap,
        stop=stop,
        n=n,
        json_mode=json_mode,
        tools=tools,
        tool_choice=tool_choice,
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        thinking=thinking,
        effort=effort,
        prompt_ids=prompt_ids,
        raw=body,
        era=era,
        beta=beta,
    )
    rules.check(chat)

    requested = len(prompt_ids) + chat.output_limit
    if requested > spec.context:
        raise ApiError(
            "invalid_request",
            f"This model's maximum context length is {spec.context} tokens. However, you requested "
            f"{requested} tokens ({len(prompt_ids)} in the messages, "
            f"{requested - len(prompt_ids)} in the completion). "
            "Please reduce the length of the messages or completion.",
            param="messages",
        )
    return chat
