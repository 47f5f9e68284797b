"""The models each provider serves, with the limits their errors quote."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    id: str
    context: int  # the "maximum context length" quoted in the 400 for long prompts
    max_output: int  # the upper end of "the valid range of max_tokens is [1, N]"
    default_output: int  # max_tokens when the request leaves it out
    thinking: bool = False  # answers with reasoning_content first
    answers_as: str | None = None  # the name the response carries, when it is not the request's
    owned_by: str = "deepseek"


def _specs(*specs: ModelSpec) -> dict[str, ModelSpec]:
    return {spec.id: spec for spec in specs}


# DeepSeek's own API. The V3.2 names are the ones the captures use; the V4 names replaced
# them in 2026. Limits: Models & Pricing page (V3.2) and the V4 400 error text.
DEEPSEEK_MODELS = _specs(
    ModelSpec(id="deepseek-chat", context=131072, max_output=8192, default_output=4096),
    ModelSpec(
        id="deepseek-reasoner",
        context=131072,
        max_output=65536,
        default_output=32768,
        thinking=True,
    ),
    ModelSpec(
        id="deepseek-v4-flash",
        context=1048576,
        max_output=393216,
        default_output=32768,
        thinking=True,
    ),
    ModelSpec(
        id="deepseek-v4-pro",
        context=1048576,
        max_output=393216,
        default_output=32768,
        thinking=True,
    ),
)

# AI/ML API: three aliases of one model; the response names the canonical id.
_AIML_CANONICAL = "deepseek/deepseek-chat-v3-0324"
AIMLAPI_MODELS = _specs(
    *(
        ModelSpec(
            id=alias,
            context=131072,
            max_output=131072,
            default_output=4096,
            answers_as=_AIML_CANONICAL,
        )
        for alias in ("deepseek-chat", "deepseek/deepseek-chat", _AIML_CANONICAL)
    )
)

# AceData Cloud: its OpenAPI enum plus the guide's v4-pro; the response echoes the request.
ACEDATA_MODELS = _specs(
    ModelSpec(
        id="deepseek-r1", context=131072, max_output=65536, default_output=32768, thinking=True
    ),
    ModelSpec(
        id="deepseek-r1-0528", context=131072, max_output=65536, default_output=32768, thinking=True
    ),
    ModelSpec(id="deepseek-v3", context=131072, max_output=8192, default_output=4096),
    ModelSpec(id="deepseek-v3-250324", context=131072, max_output=8192, default_output=4096),
    ModelSpec(id="deepseek-v3.2-exp", context=131072, max_output=8192, default_output=4096),
    ModelSpec(
        id="deepseek-v4-flash",
        context=1048576,
        max_output=393216,
        default_output=32768,
        thinking=True,
    ),
    ModelSpec(
        id="deepseek-v4-pro",
        context=1048576,
        max_output=393216,
        default_output=32768,
        thinking=True,
    ),
)
