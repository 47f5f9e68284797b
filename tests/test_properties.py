"""Property tests: requests generated from schemas/chat-request.schema.json itself.

A request the schema accepts gets a schema-valid completion whose invariants hold, unless one
of the documented cross-field rules (which a JSON Schema cannot express) refuses it, and then
it is a 400/422 in the dialect's envelope. Never anything else.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from hypothesis_jsonschema import from_schema

from mockserver import tokens
from mockserver.catalog import Era, era_moment
from mockserver.dialects import DIALECTS
from mockserver.schemas import assert_valid, load
from mockserver.server import MockServer
from tests.conftest import LATE_2025

Json = dict[str, Any]
AUTH = {"Authorization": "Bearer sk-test"}
# The fields every dialect honours; generating from the whole superset would spend most
# examples on fields the mock only passes through.
FIELDS = (
    "model", "messages", "temperature", "top_p", "frequency_penalty", "presence_penalty",
    "max_tokens", "stop", "response_format", "logprobs", "top_logprobs", "n", "seed", "user",
)  # fmt: skip


def era_of(dialect: str) -> Era:
    """The era the session server (`server`) answers in."""
    catalogs = [d.catalog for d in DIALECTS.values()]
    return DIALECTS[dialect].catalog.at(era_moment(LATE_2025, catalogs))


def request_schema(dialect: str) -> Json:
    """The request schema, narrowed to this dialect's models and limits."""
    schema = copy.deepcopy(load("chat-request.schema.json"))
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k in FIELDS}
    limits = DIALECTS[dialect].limits
    schema["properties"]["model"] = {"enum": sorted(era_of(dialect).models)}
    schema["properties"]["n"] = {"type": "integer", "minimum": 1, "maximum": min(limits.max_n, 3)}
    schema["properties"]["max_tokens"] = {"type": "integer", "minimum": 1, "maximum": 8192}
    stop = schema["properties"]["stop"]
    stop["anyOf"] = [
        {"type": "string", "maxLength": 8},
        {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": limits.max_stop},
    ]
    stop.pop("oneOf", None)
    stop.pop("type", None)
    schema["properties"]["messages"]["maxItems"] = 4
    return schema


def refused_on_purpose(body: Json, dialect: str) -> bool:
    """The cross-field rules of the live API that the schema leaves to the server."""
    era = era_of(dialect)
    spec = era.models[body["model"]]
    messages = body["messages"]
    prefixed = [i for i, m in enumerate(messages) if m.get("prefix") is True]
    parts = [p for m in messages if isinstance(m.get("content"), list) for p in m["content"]]
    return bool(
        (spec.thinking and (body.get("logprobs") or body.get("top_logprobs") is not None))
        or any(i != len(messages) - 1 or messages[i]["role"] != "assistant" for i in prefixed)
        or (prefixed and "prefix_beta_only" in era.checks)  # sent to /chat/completions
        or any(m["role"] not in era.roles for m in messages)
        or (
            # the passback rule: in thinking mode a tool result needs the reasoning before it
            "reasoning_passback" in era.checks
            and spec.thinking
            and messages[-1]["role"] == "tool"
            and not any(
                m.get("reasoning_content") is not None
                for m in [m for m in messages if m["role"] == "assistant"][-1:]
            )
            and any(m["role"] == "assistant" for m in messages)
        )
        or ("image_input" in era.checks and any(p.get("type") != "text" for p in parts))
        or (
            "json_schema_unavailable" in era.checks
            and (body.get("response_format") or {}).get("type") == "json_schema"
        )
    )


def check(server: MockServer, dialect: str, body: Json) -> None:
    response = httpx.post(
        server.url_for(dialect) + "/chat/completions", json=body, headers=AUTH, timeout=30
    )
    if refused_on_purpose(body, dialect):
        # 400, or 422 where the era's text is a 422 (V3.2's json_schema refusal)
        assert response.status_code in (400, 422), response.text
        assert_valid(f"{dialect}/error.schema.json", response.json())
        return
    assert response.status_code == 200, response.text
    completion = response.json()
    assert_valid(f"{dialect}/chat-completion.schema.json", completion)
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    if "prompt_cache_hit_tokens" in usage:
        assert (
            usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"]
            == usage["prompt_tokens"]
        )
    choices = completion["choices"]
    assert [c["index"] for c in choices] == list(range(body.get("n") or 1))
    for choice in choices:
        content = choice["message"]["content"] or ""
        if body.get("max_tokens") is not None:
            assert tokens.count(content) <= body["max_tokens"]
        stops = [body["stop"]] if isinstance(body.get("stop"), str) else body.get("stop") or []
        assert not any(s and s in content for s in stops)


SETTINGS = settings(
    max_examples=25,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


# Built once: turning a schema into a strategy is the slow part, drawing from it is not.
def _tagged(dialect: str) -> st.SearchStrategy[tuple[str, Json]]:
    return st.tuples(st.just(dialect), from_schema(request_schema(dialect)))


REQUESTS = st.one_of(*(_tagged(name) for name in sorted(DIALECTS)))


@SETTINGS
@given(case=REQUESTS)
def test_any_schema_valid_request_gets_a_conforming_answer(
    server: MockServer, case: tuple[str, Json]
) -> None:
    dialect, body = case
    assume(tokens.count(tokens.render_prompt(body["messages"], template="v3.2")) < 2000)
    assert_valid("chat-request.schema.json", body)
    check(server, dialect, body)
