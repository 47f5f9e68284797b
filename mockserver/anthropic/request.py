"""An Anthropic Messages request → the shared `ChatRequest`, or an `ApiError`.

The body is checked in Anthropic's terms (its paths, `messages.1.content.0.type`), then
restated as the chat request the rest of the pipeline knows: `system` becomes a system
message, `tool_result` blocks tool messages, `thinking` blocks `reasoning_content`, `tool_use`
blocks tool calls. The era's models, ranges, conversation rules and prompt count then apply
exactly as they do to chat completions (`validation.parse_chat`), with this surface's texts.
"""

from __future__ import annotations

from typing import Any

import orjson

from mockserver.anthropic.surface import Surface, surface
from mockserver.catalog import Era
from mockserver.errors import ApiError
from mockserver.validation import ChatRequest, Json, Limits, parse_chat

ROLES = ("user", "assistant")
USER_BLOCKS = ("text", "image", "document", "search_result", "tool_result")
ASSISTANT_BLOCKS = ("text", "thinking", "redacted_thinking", "tool_use")
# Anthropic's efforts → DeepSeek's reasoning_effort (DeepSeek maps the ones it lacks itself).
EFFORTS = ("low", "medium", "high", "xhigh", "max")
TOOL_CHOICES = ("auto", "any", "tool", "none")


def _invalid(path: str, problem: str) -> ApiError:
    return ApiError("invalid_request", f"{path}: {problem}" if path else problem)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _expect(value: Any, kind: type | tuple[type, ...], path: str, what: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise _invalid(path, f"Input should be {what}, got {_kind(value)}")


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _text_of(blocks: Any, path: str) -> str:
    """A string, or a list of text blocks (system prompts, tool results)."""
    if blocks is None:
        return ""
    if isinstance(blocks, str):
        return blocks
    _expect(blocks, list, path, "a string or a list of text blocks")
    parts = []
    for i, block in enumerate(blocks):
        where = f"{path}.{i}"
        _expect(block, dict, where, "a content block")
        if block.get("type") == "text":
            _expect(block.get("text"), str, f"{where}.text", "a string")
            parts.append(block["text"])
        elif block.get("type") not in ("image", "document", "search_result"):
            raise _invalid(f"{where}.type", f"unknown content block type {block.get('type')!r}")
    return "".join(parts)


def _refuse_block(here: Surface, index: int, position: int, kind: str) -> ApiError:
    text = here.texts["unsupported_block"].text(index=index, block=position, type=kind)
    return ApiError("invalid_request", text)


def _user(message: Json, index: int, here: Surface) -> list[Json]:
    """One Anthropic user turn → tool messages (its tool results, first) and a user message."""
    content = message["content"]
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[Json] = []
    parts: list[Json] = []
    for position, block in enumerate(content):
        where = f"messages.{index}.content.{position}"
        kind = block.get("type")
        if kind not in USER_BLOCKS:
            raise _invalid(f"{where}.type", f"Input should be one of {', '.join(USER_BLOCKS)}")
        if kind == "text":
            _expect(block.get("text"), str, f"{where}.text", "a string")
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "tool_result":
            _expect(block.get("tool_use_id"), str, f"{where}.tool_use_id", "a string")
            text = _text_of(block.get("content"), f"{where}.content")
            tools.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
        elif kind in here.blocks:
            parts.append({"type": kind, "source": block.get("source")})  # the model decides
        else:
            raise _refuse_block(here, index, position, kind)
    out = list(tools)
    if parts or not tools:
        out.append({"role": "user", "content": parts})
    return out


def _assistant(message: Json, index: int, here: Surface) -> Json:
    content = message["content"]
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[Json] = []
    for position, block in enumerate(content):
        where = f"messages.{index}.content.{position}"
        kind = block.get("type")
        if kind not in ASSISTANT_BLOCKS:
            raise _invalid(f"{where}.type", f"Input should be one of {', '.join(ASSISTANT_BLOCKS)}")
        if kind == "text":
            _expect(block.get("text"), str, f"{where}.text", "a string")
            text.append(block["text"])
        elif kind == "thinking":
            _expect(block.get("thinking"), str, f"{where}.thinking", "a string")
            reasoning.append(block["thinking"])
        elif kind == "tool_use":
            _expect(block.get("id"), str, f"{where}.id", "a string")
            _expect(block.get("name"), str, f"{where}.name", "a string")
            _expect(block.get("input"), dict, f"{where}.input", "an object")
            arguments = orjson.dumps(block["input"]).decode()
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": arguments},
                }
            )
        else:
            raise _refuse_block(here, index, position, kind)
    out: Json = {"role": "assistant", "content": "".join(text)}
    if reasoning:
        out["reasoning_content"] = "".join(reasoning)
    if calls:
        out["tool_calls"] = calls
    return out


def _messages(value: Any, here: Surface) -> list[Json]:
    _expect(value, list, "messages", "a list")
    if not value:
        raise _invalid("messages", "List should have at least 1 item after validation, not 0")
    out: list[Json] = []
    for index, message in enumerate(value):
        where = f"messages.{index}"
        _expect(message, dict, where, "a message object")
        if message.get("role") not in ROLES:
            raise _invalid(f"{where}.role", "Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise _invalid(f"{where}.content", "Field required")
        content = message["content"]
        _expect(content, (str, list), f"{where}.content", "a string or a list of content blocks")
        for position, block in enumerate(content if isinstance(content, list) else ()):
            _expect(block, dict, f"{where}.content.{position}", "a content block")
        if content == [] and message["role"] == "user":
            # Anthropic's wording; restated as a chat message it would read as serde's instead.
            raise _invalid(
                where,
                "all messages must have non-empty content except for the optional final "
                "assistant message",
            )
        if message["role"] == "user":
            out += _user(message, index, here)
        else:
            out.append(_assistant(message, index, here))
    return out


def _tools(value: Any) -> list[Json]:
    if value is None:
        return []
    _expect(value, list, "tools", "a list")
    tools = []
    for i, tool in enumerate(value):
        where = f"tools.{i}"
        _expect(tool, dict, where, "a tool object")
        if tool.get("type") not in (None, "custom"):
            raise _invalid(f"{where}.type", f"tools of type {tool.get('type')!r} are not supported")
        _expect(tool.get("name"), str, f"{where}.name", "a string")
        _expect(tool.get("input_schema"), dict, f"{where}.input_schema", "a JSON Schema object")
        function: Json = {"name": tool["name"], "parameters": tool["input_schema"]}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value: Any) -> str | Json | None:
    """Anthropic's choice → the chat one. `any` is answered as `auto`, as DeepSeek's Messages
    reference says ("任意工具(按自动选择处理)"); disable_parallel_tool_use is ignored."""
    if value is None:
        return None
    _expect(value, dict, "tool_choice", "an object")
    kind = value.get("type")
    if kind not in TOOL_CHOICES:
        raise _invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    if kind == "tool":
        _expect(value.get("name"), str, "tool_choice.name", "a string")
        return {"type": "function", "function": {"name": value["name"]}}
    return "auto" if kind == "any" else str(kind)


def _thinking(value: Any, here: Surface) -> Json | None:
    if value is None:
        return None
    _expect(value, dict, "thinking", "an object")
    kind = value.get("type")
    if kind not in ("enabled", "disabled", "adaptive"):
        raise _invalid("thinking.type", "Input should be 'enabled', 'disabled' or 'adaptive'")
    budget = value.get("budget_tokens")
    if budget is not None:
        _expect(budget, int, "thinking.budget_tokens", "an integer")  # then ignored, as documented
    if not here.thinking:
        return None
    return {"type": "disabled" if kind == "disabled" else "enabled"}


def _effort(value: Any, here: Surface) -> str | None:
    if value is None or not here.effort:
        return None
    _expect(value, dict, "output_config", "an object")
    effort = value.get("effort")
    if effort is None:
        return None
    if effort not in EFFORTS:
        raise _invalid("output_config.effort", f"Input should be one of {', '.join(EFFORTS)}")
    return str(effort)


def parse_messages(body: Any, limits: Limits, era: Era, *, beta: bool = False) -> ChatRequest:
    """`era` is the DeepSeek catalogue's; the surface's own settings for it are applied here."""
    here = surface(era)
    _expect(body, dict, "", "a JSON object")
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            raise _invalid(key, "Field required")
    _expect(body["model"], str, "model", "a valid string")
    _expect(body["max_tokens"], int, "max_tokens", "a valid integer")
    messages = [
        *(
            [{"role": "system", "content": text}]
            if (text := _text_of(body.get("system"), "system"))
            else []
        ),
        *_messages(body["messages"], here),
    ]
    stop = body.get("stop_sequences")
    if stop is not None:
        _expect(stop, list, "stop_sequences", "a list of strings")
        for i, item in enumerate(stop):
            _expect(item, str, f"stop_sequences.{i}", "a string")
    # Checked here, not left to the chat parser, so that the error reads in Anthropic's terms.
    for key, kind, what in (
        ("stream", bool, "a valid boolean"),
        ("temperature", (int, float), "a valid number"),
        ("top_p", (int, float), "a valid number"),
    ):
        if body.get(key) is not None:
            _expect(body[key], kind, key, what)
    metadata = body.get("metadata")
    if metadata is not None:
        _expect(metadata, dict, "metadata", "an object")
        if metadata.get("user_id") is not None:
            # It keys the prompt cache: a number or an object there is a 400, not a key.
            _expect(metadata["user_id"], str, "metadata.user_id", "a valid string")
    chat: Json = {
        "model": here.model_for(body["model"]),
        "messages": messages,
        "max_tokens": body["max_tokens"],
    }
    optional = {
        "stream": body.get("stream"),
        "stop": stop,
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "tools": _tools(body.get("tools")) or None,
        "tool_choice": _tool_choice(body.get("tool_choice")),
        "thinking": _thinking(body.get("thinking"), here),
        "reasoning_effort": _effort(body.get("output_config"), here),
        # metadata.user_id isolates the prompt cache, as DeepSeek's guide says.
        "user_id": metadata.get("user_id") if metadata else None,
    }
    chat |= {key: value for key, value in optional.items() if value is not None}
    if chat.get("tool_choice") == "none" and "tools" not in chat:
        del chat["tool_choice"]
    # The restated body is the request's `raw` too: the same question asked in either format
    # gets the same seeded words, and stop_sequences / max_tokens cut them without changing them.
    return parse_chat(chat, limits, here.era, beta=beta)
