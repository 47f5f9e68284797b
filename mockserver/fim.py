"""FIM (fill in the middle): `POST /beta/completions` bytes → a `ChatRequest` the responder
answers like any other, counted with DeepSeek's FIM template.

DeepSeek documents `model`, `prompt`, `suffix`, `echo`, `max_tokens` (FIM's own limit is 4K
tokens), `stop`, `stream`, `stream_options` and the sampling fields; V4 runs FIM in
non-thinking mode only. The template (`<｜fim▁begin｜>` prompt `<｜fim▁hole｜>` suffix
`<｜fim▁end｜>` after BOS) is DeepSeek-Coder's; no live count backs it yet.
"""

from __future__ import annotations

from typing import Any

from mockserver import tokens
from mockserver.catalog import Era
from mockserver.errors import ApiError
from mockserver.validation import (
    ChatRequest,
    Limits,
    _bad,
    _boolean,
    _integer,
    _number,
    _stop,
    request_object,
    served,
)

FIM_MAX_TOKENS = 4096  # "The max tokens of FIM completion is 4K"


def _text_field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(key, value, "a string")
    return value


def parse_fim(body: Any, limits: Limits, era: Era) -> ChatRequest:
    body, model = request_object(body, "CompletionRequest", ("model", "prompt"))
    spec = served(era, model)
    if not spec.fim:
        raise era.refusal("fim_model", model=model) or ApiError(
            "invalid_request", f"{model} does not support FIM completion", param="model"
        )
    prompt = _text_field(body, "prompt")
    suffix = _text_field(body, "suffix")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "frequency_penalty", -2, 2)
    _number(body, "presence_penalty", -2, 2)
    max_tokens = _integer(body, "max_tokens", 1, FIM_MAX_TOKENS)
    _integer(body, "logprobs", 0, 20)
    stream = _boolean(body, "stream")
    _boolean(body, "echo")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _bad("stream_options", options, "struct StreamOptions")
    segments = [tokens.BOS, tokens.FIM_BEGIN, prompt, tokens.FIM_HOLE, suffix, tokens.FIM_END]
    return ChatRequest(
        model=model,
        spec=spec,
        messages=[{"role": "user", "content": prompt}],
        stream=stream,
        include_usage=bool(options and options.get("include_usage") is True),
        max_tokens=max_tokens if max_tokens is not None else FIM_MAX_TOKENS,
        stop=_stop(body.get("stop"), limits.max_stop, era),
        thinking=False,  # V4: "FIM Completion (Beta): Non-thinking mode only"
        prompt_ids=tokens.ids_of(segments),
        raw=body,
        era=era,
        beta=True,
        fim=True,
    )
