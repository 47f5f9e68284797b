"""The conversation rules an era may apply to a request that is well formed.

Each rule is a plain function of the request; whether it applies, and what it says, is the era's
data (`checks` in fixtures/catalog/<dialect>.json), so a rule that belongs to one era is never a
branch on a date here. The semantics follow the live probes the catalogue cites.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from mockserver.errors import ApiError

if TYPE_CHECKING:  # validation calls these rules, so it is imported for its types only
    from mockserver.validation import ChatRequest

Json = dict[str, Any]
Rule = Callable[["ChatRequest"], ApiError | None]

# Parts that carry something other than text; a model without that input refuses them.
PART_INPUTS = {"image_url": "image", "image": "image", "file": "file", "input_file": "file"}


def image_input(chat: ChatRequest) -> ApiError | None:
    for index, message in enumerate(chat.messages):
        content = message.get("content")
        for part in content if isinstance(content, list) else ():
            kind = part.get("type")
            if kind != "text" and kind not in PART_INPUTS:
                # A type no model takes: refused as unknown where the era words that apart
                # (V3.2's one text already reads so), never as an image a vision model takes.
                unknown = chat.era.refusal("unknown_part", index=index, type=kind)
                if unknown is not None:
                    return unknown
            needed = PART_INPUTS.get(kind, "text" if kind == "text" else "other")
            if needed not in chat.spec.inputs:
                return chat.era.refusal("image_input", index=index, type=kind)
    return None


def forced_tool_choice_in_thinking(chat: ChatRequest) -> ApiError | None:
    forced = chat.tool_choice == "required" or isinstance(chat.tool_choice, dict)
    return chat.era.refusal("forced_tool_choice_in_thinking") if forced and chat.thinking else None


def reasoning_passback(chat: ChatRequest) -> ApiError | None:
    """As probed: in thinking mode, when the last message is a tool result, the nearest
    assistant message before it must carry a `reasoning_content` field (an empty string will
    do). Outside a tool loop, past reasoning is ignored, as DeepSeek documents."""
    if not chat.thinking or chat.messages[-1].get("role") != "tool":
        return None
    for index in range(len(chat.messages) - 1, -1, -1):
        message = chat.messages[index]
        if message.get("role") == "assistant":
            if "reasoning_content" in message and message["reasoning_content"] is not None:
                return None
            return chat.era.refusal("reasoning_passback", index=index)
    return None


def _call_ids(message: Json) -> list[str]:
    calls = message.get("tool_calls")
    return [call["id"] for call in calls] if isinstance(calls, list) else []


def tool_chains(chat: ChatRequest) -> ApiError | None:
    """Every tool message answers a call of the assistant message right before the run of tool
    messages it is in, and every call is answered before the conversation goes on."""
    messages = chat.messages
    index = 0
    while index < len(messages):
        message = messages[index]
        role = message.get("role")
        if role == "tool":
            return chat.era.refusal("tool_message_orphan")
        ids = _call_ids(message) if role == "assistant" else []
        index += 1
        if not ids:
            continue
        answered: list[str] = []
        while index < len(messages) and messages[index].get("role") == "tool":
            answered.append(str(messages[index].get("tool_call_id")))
            index += 1
        if len(answered) < len(ids):
            return chat.era.refusal("tool_calls_insufficient")
        missing = [call_id for call_id in ids if call_id not in answered]
        if missing:
            return chat.era.refusal("tool_calls_unanswered", ids=", ".join(missing))
    return None


def prefix_beta_only(chat: ChatRequest) -> ApiError | None:
    if chat.beta or chat.messages[-1].get("prefix") is not True:
        return None
    return chat.era.refusal("prefix_beta_only")


def strict_tools(chat: ChatRequest) -> ApiError | None:
    """Strict function calling is a beta feature, and its schemas must be the subset DeepSeek
    documents: every object closed and fully required, no length or size keywords."""
    for tool in chat.tools:
        function = tool["function"]
        if function.get("strict") is not True:
            continue
        if not chat.beta:
            return chat.era.refusal("strict_beta_only")
        problem = strict_schema_problem(function.get("parameters") or {"type": "object"})
        if problem:
            return chat.era.refusal("strict_schema", name=function["name"], problem=problem)
    return None


# Keywords DeepSeek's strict mode does not support (its function-calling guide lists the rest).
UNSUPPORTED = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
FORMATS = frozenset({"email", "hostname", "ipv4", "ipv6", "uuid"})


def strict_schema_problem(schema: Any, path: str = "parameters", depth: int = 0) -> str | None:
    if depth > 32:
        return f"{path} is nested too deeply"
    if not isinstance(schema, dict):
        return f"{path} is not a schema object"
    for keyword in UNSUPPORTED:
        if keyword in schema:
            return f"{path} uses `{keyword}`, which strict mode does not support"
    if "format" in schema and schema["format"] not in FORMATS:
        return f"{path} uses the unsupported format `{schema['format']}`"
    children: Iterable[tuple[str, Any]] = ()
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            return f"{path}: an object with no properties is not allowed"
        if schema.get("additionalProperties") is not False:
            return f"{path}: additionalProperties must be false"
        required = schema.get("required")
        if not isinstance(required, list) or set(required) != set(properties):
            return f"{path}: every property must be required"
        children = ((f"{path}.properties.{k}", v) for k, v in properties.items())
    elif schema.get("type") == "array" and "items" in schema:
        children = ((f"{path}.items", schema["items"]),)
    for key in ("anyOf", "$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, list):
            children = [*children, *((f"{path}.{key}[{i}]", s) for i, s in enumerate(found))]
        elif isinstance(found, dict):
            children = [*children, *((f"{path}.{key}.{k}", s) for k, s in found.items())]
    for where, child in children:
        problem = strict_schema_problem(child, where, depth + 1)
        if problem:
            return problem
    return None


# In the order a live server would trip over them: the body's shape, then the conversation.
RULES: tuple[Rule, ...] = (
    image_input,
    prefix_beta_only,
    strict_tools,
    forced_tool_choice_in_thinking,
    tool_chains,
    reasoning_passback,
)


def check(chat: ChatRequest) -> None:
    for rule in RULES:
        error = rule(chat)
        if error is not None:
            raise error
