"""Generated requests: every valid request a client might send gets an answer that keeps the
invariants. Requests come from a reduced copy of `schemas/chat-request.schema.json`: the
target's models, simple sampling fields and a small max_tokens, so a live run stays cheap.
CONTRACT_EXAMPLES sets how many requests each test sends (15 against the mock, 3 live).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis_jsonschema import from_schema

from contract_tests.invariants import check_completion, check_stream
from contract_tests.target import Target
from contract_tests.wire import ApiClient, Json
from mockserver.schemas import load

SAMPLING = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
MAX_TOKENS = 16  # enough for a non-empty answer, small enough to cost nothing live
MAX_N = 3
# Every dialect's documented top_p range includes [0.1, 1] (AI/ML starts at 0.01).
TOP_P_FLOOR = 0.1
PRINTABLE = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,40}$"


def request_schema(target: Target) -> Json:
    """The request schema cut down to what every dialect accepts for `target`'s models."""
    full = load("chat-request.schema.json")
    properties: dict[str, Any] = {}
    for name in SAMPLING:
        field = copy.deepcopy(full["properties"][name])
        # The AI/ML spec types these as plain numbers: null is not safe to send everywhere.
        field["type"] = "number"
        properties[name] = field
    properties["top_p"]["minimum"] = TOP_P_FLOOR
    properties["model"] = {"enum": list(target.models)}
    properties["max_tokens"] = {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS}
    properties["messages"] = {
        "type": "array",
        "minItems": 1,
        "maxItems": 1,
        "items": {
            "type": "object",
            "required": ["role", "content"],
            "additionalProperties": False,
            "properties": {
                "role": {"const": "user"},
                # Printable text: control characters add nothing but risk on a live account.
                "content": {"type": "string", "pattern": PRINTABLE},
            },
        },
    }
    if target.dialect.limits.max_n > 1:
        properties["n"] = {"type": "integer", "minimum": 1, "maximum": MAX_N}
    return {
        "type": "object",
        "required": ["model", "messages", "max_tokens"],
        "additionalProperties": False,
        "properties": properties,
    }


@st.composite
def chat_requests(draw: st.DrawFn, schema: Json, *, stream: bool) -> Json:
    body = draw(from_schema(schema))
    assert isinstance(body, dict)  # the schema's top level is an object
    if draw(st.booleans()):
        body["messages"] = [{"role": "system", "content": "Answer briefly."}, *body["messages"]]
    if stream:
        # No provider documents how several choices interleave in a stream: one choice only.
        body.pop("n", None)
        body["stream"] = True
        if draw(st.booleans()):
            body["stream_options"] = {"include_usage": True}
    return body


def budgeted(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,  # network round trips, not computation
        database=None,
        # Shrinking would send more requests than the budget allows on a live run.
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def test_generated_requests_get_completions_that_keep_the_invariants(
    api: ApiClient, examples: int
) -> None:
    @budgeted(examples)
    @given(body=chat_requests(request_schema(api.target), stream=False))
    def check(body: Json) -> None:
        check_completion(api, api.chat(body), body)

    check()


def test_generated_stream_requests_get_streams_that_keep_the_invariants(
    api: ApiClient, examples: int
) -> None:
    @budgeted(examples)
    @given(body=chat_requests(request_schema(api.target), stream=True))
    def check(body: Json) -> None:
        check_stream(api, api.stream(body), body)

    check()
