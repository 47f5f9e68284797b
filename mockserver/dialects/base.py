"""What every dialect is made of, and the pieces they share."""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from mockserver import faults, streaming
from mockserver.catalog import Catalog, Era, packaged
from mockserver.errors import ApiError
from mockserver.responder import Choice, Completion
from mockserver.usage import Usage
from mockserver.validation import ChatRequest, Limits, parse_chat

Json = dict[str, Any]
ALNUM = string.ascii_letters + string.digits


# orjson itself, not a function around it: it runs once per streamed event.
compact: Callable[[Any], bytes] = orjson.dumps


def spaced(value: Any) -> bytes:
    """Python-style `", "` / `": "` separators, non-ASCII as is: AceData's wire form."""
    return json.dumps(value, ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class ErrorBody:
    status: int
    body: bytes
    media_type: str = "application/json"


# eq=False: a dialect is one object per provider, compared and hashed by identity, so caches
# may be keyed on it although some of its fields are dicts.
@dataclass(frozen=True, kw_only=True, eq=False)
class Dialect:
    name: str
    title: str
    limits: Limits
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
    new_stream_id: Callable[[str], str] | None = None  # when streams use another id style
    render: Callable[[Completion], Json]
    # (completion, include_usage) → the stream's chunks, runs of alike ones as one part
    chunks: Callable[[Completion, bool], Iterator[streaming.Part]]
    error: Callable[[ApiError, str], ErrorBody]  # (error, path)
    # (completion, or None for an error or a listing; stream; request headers) → response headers
    headers: Callable[[Completion | None, bool, Mapping[str, str]], dict[str, str]] = field(
        default=lambda completion, stream, request: {}
    )
    models_body: Callable[[Era], Json] = field(default=lambda era: {"object": "list", "data": []})
    fim_paths: tuple[str, ...] = ()  # FIM (text completion), where the provider has it
    fim_render: Callable[[Completion], Json] | None = None
    fim_chunks: Callable[[Completion, bool], Iterator[streaming.Part]] | None = None
    beta_prefix: str | None = None  # the path prefix of the provider's beta base URL
    balance_body: Callable[[bool], Json] = field(default=lambda available: {})
    # The wire format: how a request body is read, how a stream's payloads are framed, and
    # the frame / body a fault's in-band error is. Chat completions unless a dialect says.
    parse: Callable[..., ChatRequest] = parse_chat  # (body, limits, era, *, beta)
    frame: Callable[[Iterable[streaming.Part], Callable[[Any], bytes]], Iterator[bytes]] = (
        streaming.sse
    )
    stream_error: Callable[[Callable[[Any], bytes]], bytes] = faults.error_event
    in_band_error: Json = field(default_factory=lambda: faults.IN_BAND_ERROR)
    catalog_name: str = ""  # whose catalogue and eras it answers in, when not its own
    schema_names: Mapping[str, str] = field(default_factory=dict)  # kind → its file's name

    def schema(self, kind: str) -> str:
        """`kind` is chat-completion, chat-completion-chunk, error, models or balance."""
        return f"{self.name}/{self.schema_names.get(kind, kind)}.schema.json"

    def completion_id(self, model: str, stream: bool) -> str:
        make = self.new_stream_id if stream and self.new_stream_id else self.new_id
        return make(model)

    @property
    def catalog(self) -> Catalog:
        """The packaged catalogue; a server may be given another (`--catalog`)."""
        return packaged(self.catalog_name or self.name)

    @property
    def default_model(self) -> str:
        return self.catalog.default_model

    def is_beta(self, path: str) -> bool:
        return self.beta_prefix is not None and self.beta_prefix in path


def message_json(choice: Choice, *, role_first: bool, call_index: bool) -> Json:
    """The assistant message: content, then reasoning and tool calls when there are any."""
    message: Json = (
        {"role": "assistant", "content": choice.content}
        if role_first
        else {"content": choice.content, "role": "assistant"}
    )
    if choice.reasoning is not None:
        message["reasoning_content"] = choice.reasoning
    if choice.tool_calls:
        message["tool_calls"] = tool_calls_json(choice, with_index=call_index)
    return message


def completion_head(c: Completion) -> Json:
    """The fields every non-streamed completion opens with, in the captures' order."""
    return {"id": c.id, "object": "chat.completion", "created": c.created, "model": c.model}


def logprobs_json(choice: Choice) -> Json | None:
    return {"content": choice.logprobs} if choice.logprobs is not None else None


def chunk_head(c: Completion, **extra: Any) -> Json:
    """What every chunk of a stream repeats: the same id, created and model."""
    head: Json = {
        "id": c.id,
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
    }
    return head | extra


def usage_core(usage: Usage) -> Json:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def tool_calls_json(choice: Choice, *, with_index: bool) -> list[Json]:
    return [
        ({"index": k} if with_index else {})
        | {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for k, c in enumerate(choice.tool_calls)
    ]
