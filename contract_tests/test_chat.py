"""Non-streamed chat completions: shape, identity, usage arithmetic, finish reasons, `n`."""

from __future__ import annotations

import os

import pytest

from contract_tests.invariants import (
    check_completion,
    check_created,
    check_id,
    check_usage,
    expect_status,
    predicted_prompt_tokens,
    reasoning_used,
    simple_request,
)
from contract_tests.wire import ApiClient, Json, Reply
from mockserver.drift import TokenNote, documented_values

COUNTING = "Count from 1 to 50, separated by commas."


@pytest.fixture(scope="session")
def completion(api: ApiClient) -> tuple[Reply, Json]:
    """One plain completion per target, shared by the checks below (one live request)."""
    reply = api.chat(simple_request(api.target.model))
    expect_status(reply, 200, "chat completion")
    return reply, reply.object()


def test_completion_is_json_that_the_schema_accepts(
    api: ApiClient, completion: tuple[Reply, Json]
) -> None:
    reply, body = completion
    assert "json" in reply.content_type, f"content-type {reply.content_type!r} is not JSON"
    api.conforms("chat-completion", body, "the completion")


def test_object_id_and_created_are_well_formed(completion: tuple[Reply, Json]) -> None:
    reply, body = completion
    assert body.get("object") == "chat.completion", f"object is {body.get('object')!r}"
    check_id(body.get("id"), "the completion")
    check_created(body.get("created"), reply, "the completion")


def test_usage_adds_up(completion: tuple[Reply, Json]) -> None:
    """total = prompt + completion, and hit + miss = prompt where the cache split is sent."""
    check_usage(completion[1].get("usage"), "the completion's usage")


def test_prompt_tokens_are_what_the_tokenizer_and_template_predict(
    api: ApiClient, completion: tuple[Reply, Json]
) -> None:
    """DeepSeek's own tokenizer over the template of the model's generation (the catalogue's
    family) predicts prompt_tokens. A live difference is drift, in the report; the mock must
    match. The AI/ML API reports figures of its own (its seed capture), so there it is only
    reported."""
    request = simple_request(api.target.model)
    reported = (completion[1].get("usage") or {}).get("prompt_tokens")
    assert isinstance(reported, int), f"prompt_tokens is {reported!r}"
    predicted = predicted_prompt_tokens(api.target.dialect.name, request, os.environ)
    api.drift.tokens(
        TokenNote(api.target.id, "simple request", request["model"], predicted, reported)
    )
    if api.target.name == "mock" or api.target.dialect.name != "aimlapi":
        assert reported == predicted, (
            f"prompt_tokens {reported}, but DeepSeek's tokenizer and the "
            f"{api.target.model} template predict {predicted}"
        )


def test_finish_reason_is_documented(api: ApiClient, completion: tuple[Reply, Json]) -> None:
    documented = documented_values(
        api.target.dialect.schema("chat-completion"), "choices", "[]", "finish_reason"
    )
    reasons = [choice.get("finish_reason") for choice in completion[1].get("choices") or []]
    assert reasons, "the completion has no choices"
    for reason in reasons:
        assert reason in documented, f"finish_reason {reason!r} is not one of {sorted(documented)}"


def test_max_tokens_cuts_the_answer_with_finish_reason_length(api: ApiClient) -> None:
    request = simple_request(
        api.target.model, max_tokens=1, messages=[{"role": "user", "content": COUNTING}]
    )
    body = check_completion(api, api.chat(request), request)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length", (
        f"a 1-token limit on a long answer must end with length, got {choice['finish_reason']!r}"
    )
    if not reasoning_used(choice["message"], body["usage"]):
        assert body["usage"]["completion_tokens"] <= 1


@pytest.mark.applies_to.with_args(
    lambda dialect: dialect.limits.max_n >= 2
)  # only AceData documents n
def test_n_choices_are_indexed_from_zero(api: ApiClient) -> None:
    request = simple_request(api.target.model, n=2)
    body = check_completion(api, api.chat(request), request)
    assert len(body["choices"]) == 2
