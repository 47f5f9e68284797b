"""The models each provider serves, with the limits their errors quote."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    id: str
    context: int  # the "maximum context length" quoted in the 400 for long prompts
    max_output: int  # the upper end of "the valid range of max_tokens is [1, N]"
    default_output: int  # max_tokens when the request leaves it out
    thinking: bool = False  # answers with reasoning_content first
    answers_as: str | None = None  # the name the response carries, when it is not the request's
    owned_by: str = "deepseek"


# Limits: DeepSeek's Models & Pricing page (V3.2 era) and the V4 400 error text.
V3_CHAT = ModelSpec(id="deepseek-chat", context=131072, max_output=8192, default_output=4096)
V3_THINKING = replace(
    V3_CHAT, id="deepseek-reasoner", max_output=65536, default_output=32768, thinking=True
)
V4 = ModelSpec(
    id="deepseek-v4-flash", context=1048576, max_output=393216, default_output=32768, thinking=True
)


def _specs(*specs: ModelSpec) -> dict[str, ModelSpec]:
    return {spec.id: spec for spec in specs}


def _named(spec: ModelSpec, *names: str) -> list[ModelSpec]:
    return [replace(spec, id=name) for name in names]


# DeepSeek's own API: the V3.2 names the captures use, and the V4 names that replaced them.
DEEPSEEK_MODELS = _specs(V3_CHAT, V3_THINKING, *_named(V4, "deepseek-v4-flash", "deepseek-v4-pro"))

# AI/ML API: three aliases of one model; the response names the canonical id.
_AIML_CANONICAL = "deepseek/deepseek-chat-v3-0324"
AIMLAPI_MODELS = _specs(
    *_named(
        replace(V3_CHAT, max_output=131072, answers_as=_AIML_CANONICAL),
        "deepseek-chat",
        "deepseek/deepseek-chat",
        _AIML_CANONICAL,
    )
)

# AceData Cloud: its OpenAPI enum plus the guide's v4-pro; the response echoes the request.
ACEDATA_MODELS = _specs(
    *_named(V3_THINKING, "deepseek-r1", "deepseek-r1-0528"),
    *_named(V3_CHAT, "deepseek-v3", "deepseek-v3-250324", "deepseek-v3.2-exp"),
    *_named(V4, "deepseek-v4-flash", "deepseek-v4-pro"),
)
