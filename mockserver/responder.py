"""A validated request and a (possibly partial) canned reply → a finished completion.

The completion is provider-neutral: dialects decide field names, key order and extras when
they render it, as JSON or as a stream of chunks.
"""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mockserver import ids, textgen, tokens
from mockserver.scenario import Reply, ToolCall
from mockserver.usage import PromptCache, Usage, cache_domain
from mockserver.validation import ChatRequest

ALNUM = string.ascii_letters + string.digits
_UNUSED = random.Random(0)  # handed to code paths a fully canned reply never takes


@dataclass(frozen=True, slots=True)
class CallOut:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    index: int
    content: str | None
    reasoning: str | None = None
    tool_calls: tuple[CallOut, ...] = ()
    finish_reason: str = "stop"
    logprobs: list[dict[str, Any]] | None = None
    stop_sequence: str | None = None  # the `stop` string that ended the text, when one did


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    id: str
    created: int
    model: str
    choices: tuple[Choice, ...]
    usage: Usage
    fingerprint: str | None = None  # system_fingerprint, for the dialects that send one
    extras: dict[str, Any] = field(default_factory=dict)


def tool_call_id(index: int = 0) -> str:
    """`call_00_`, `call_01_`, … (the call's place in the message) + 24 letters and digits,
    the 2026 DeepSeek form."""
    return f"call_{index:02d}_" + ids.pick(ALNUM, 24)


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, str | None]:
    """The text before the first stop string in it, and that string (None: no cut)."""
    if not stop:
        return text, None
    cuts = [(i, s) for s in stop if s and (i := text.find(s)) >= 0]
    if not cuts:
        return text, None
    at, found = min(cuts, key=lambda cut: cut[0])
    return text[:at], found


def _logprobs(text: str, rng: random.Random, top: int) -> list[dict[str, Any]]:
    items = []
    for token_id in tokens.encode(text):
        raw = tokens.token_bytes(token_id)
        token = raw.decode("utf-8", errors="replace")
        logprob = round(-rng.uniform(0.0, 1.5), 6)
        alternatives = [{"token": token, "logprob": logprob, "bytes": list(raw)}]
        alternatives += [
            {
                "token": f"{token}{k}",
                "logprob": round(logprob - rng.uniform(0.5, 5.0), 6),
                "bytes": None,
            }
            for k in range(1, top)
        ]
        items.append(
            {
                "token": token,
                "logprob": logprob,
                "bytes": list(raw),
                "top_logprobs": alternatives[:top],
            }
        )
    return items


class Responder:
    """Builds completions with an injected seed, clock, id factory and prompt cache."""

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        cache: PromptCache | None = None,
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.cache = cache if cache is not None else PromptCache()

    def complete(
        self,
        chat: ChatRequest,
        reply: Reply,
        *,
        completion_id: str,
        model: str,
        cached_tokens: Callable[[], int] | None = None,
    ) -> Completion:
        """`cached_tokens()` says how much of the prompt the request's prompt cache holds
        (by default the responder's own cache is asked)."""
        if cached_tokens is None:
            cache = self.cache

            def cached_tokens() -> int:
                return cache.hit(chat.prompt_ids, domain=cache_domain(chat))

        choices = tuple(self._choice(chat, reply, index) for index in range(chat.n))
        completion_tokens = reasoning_tokens = 0
        for choice in choices:
            reasoning = tokens.count(choice.reasoning or "")
            reasoning_tokens += reasoning
            completion_tokens += reasoning + tokens.count(choice.content or "")
            completion_tokens += sum(tokens.count(c.name + c.arguments) for c in choice.tool_calls)
        usage = Usage(
            prompt_tokens=len(chat.prompt_ids),
            completion_tokens=completion_tokens,
            cache_hit_tokens=cached_tokens(),
            reasoning_tokens=reasoning_tokens if chat.thinking else None,
        ).overridden(reply.usage)
        return Completion(
            id=completion_id,
            created=int(self.clock()),
            model=model,
            choices=choices,
            usage=usage,
            fingerprint=chat.era.fingerprint,
        )

    def _choice(self, chat: ChatRequest, reply: Reply, index: int) -> Choice:
        canned = (
            reply.content is not None
            and (reply.reasoning_content is not None or not chat.thinking)
            and (reply.tool_calls is not None or not chat.tools)
            and not chat.logprobs
        )
        # A fully canned reply draws nothing: seeding a generator costs more than the rest.
        rng = _UNUSED if canned else textgen.rng_for(self.seed, chat.raw, index)
        budget = chat.output_limit
        truncated = False

        reasoning = None
        if chat.thinking:
            full = reply.reasoning_content
            if full is None:
                full = textgen.reasoning_text(rng)
            reasoning, used = tokens.truncate(full, budget)
            truncated = reasoning != full
            budget -= used

        calls = self._tool_calls(chat, reply, rng)
        if calls:
            content = reply.content or ""
        elif reply.content is not None:
            content = reply.content
        elif chat.prefix is not None:
            content = textgen.continuation(rng, chat.prefix, chat.last_user_text)
        elif chat.fim:
            content = textgen.fill(rng, str(chat.raw.get("prompt") or ""))
        elif chat.json_mode:
            content = textgen.json_text(rng, chat.last_user_text)
        else:
            content = textgen.reply_text(rng, chat.last_user_text)

        content, stopped_by = _cut_at_stop(content, chat.stop)
        if not truncated:
            limited, used = tokens.truncate(content, max(budget, 0))
            truncated = limited != content
            content = limited
        else:
            content = ""

        if reply.finish_reason is not None:
            # As the provider answers it: one it does not document is mapped (its catalogue).
            finish = chat.era.finish_reasons.get(reply.finish_reason, reply.finish_reason)
        elif truncated:
            finish = "length"
        elif calls:
            finish = "tool_calls"
        else:
            finish = "stop"
        logprobs = _logprobs(content, rng, chat.top_logprobs) if chat.logprobs else None
        return Choice(
            index=index,
            content=content,
            reasoning=reasoning,
            tool_calls=calls,
            finish_reason=finish,
            logprobs=logprobs,
            stop_sequence=stopped_by if finish == "stop" and not truncated else None,
        )

    def _tool_calls(
        self, chat: ChatRequest, reply: Reply, rng: random.Random
    ) -> tuple[CallOut, ...]:
        if reply.tool_calls is not None:
            return tuple(
                CallOut(tool_call_id(k), c.name, c.arguments)
                for k, c in enumerate(reply.tool_calls)
            )
        if reply.content is not None or not chat.tools or chat.tool_choice == "none":
            return ()
        answered = chat.messages[-1].get("role") == "tool"
        if answered and chat.tool_choice != "required" and not isinstance(chat.tool_choice, dict):
            return ()  # the tool's result is in: answer in words
        # Imported here: it brings jsonschema, which no other request needs (memory, start-up).
        from mockserver import arguments

        arguments.check_tools(chat.tools)
        if isinstance(chat.tool_choice, dict):
            name = chat.tool_choice["function"]["name"]
            tool = next(t for t in chat.tools if t["function"]["name"] == name)
        else:
            tool = rng.choice(chat.tools)
        function = tool["function"]
        call = ToolCall(name=function["name"], arguments=arguments.arguments_for(function, rng))
        return (CallOut(tool_call_id(), call.name, call.arguments),)
