"""Streamed chat completions, read as raw SSE bytes: framing, chunks, finish, usage placement."""

from __future__ import annotations

import pytest

from contract_tests.invariants import (
    check_chunks_conform,
    check_finish_reasons,
    check_framing,
    check_same_identity,
    check_stream,
    check_usage_placement,
    joined_messages,
    simple_request,
)
from contract_tests.wire import ApiClient, Sse

# The mock honours this header; a live endpoint ignores an unknown header.
KEEP_ALIVES = {"X-Mock-Delivery": "keep_alives=2"}


@pytest.fixture(scope="session")
def plain_stream(api: ApiClient) -> Sse:
    """One stream without stream_options per target, shared by the checks below."""
    return api.stream(simple_request(api.target.model))


@pytest.fixture(scope="session")
def usage_stream(api: ApiClient) -> Sse:
    return api.stream(simple_request(api.target.model, stream_options={"include_usage": True}))


def test_stream_is_served_as_text_event_stream(plain_stream: Sse) -> None:
    reply = plain_stream.reply
    assert reply.status == 200, f"expected 200, got {reply.status}: {reply.body[:300]!r}"
    assert reply.content_type.startswith("text/event-stream"), (
        f"content-type {reply.content_type!r}"
    )


def test_done_comes_last_and_exactly_once(plain_stream: Sse) -> None:
    check_framing(plain_stream)


def test_every_chunk_before_done_is_schema_valid(api: ApiClient, plain_stream: Sse) -> None:
    check_chunks_conform(api, plain_stream)


def test_chunks_share_id_created_and_model(plain_stream: Sse) -> None:
    check_same_identity(plain_stream.chunks(), plain_stream.reply)


def test_exactly_one_finish_reason(api: ApiClient, plain_stream: Sse) -> None:
    check_finish_reasons(api, plain_stream.chunks())


@pytest.mark.parametrize("include_usage", [False, True], ids=["default", "include_usage"])
def test_usage_sits_where_the_dialect_documents_it(
    api: ApiClient, plain_stream: Sse, usage_stream: Sse, include_usage: bool
) -> None:
    stream = usage_stream if include_usage else plain_stream
    check_usage_placement(api, stream.chunks(), include_usage)


def test_deltas_join_into_a_non_empty_message(plain_stream: Sse) -> None:
    messages = joined_messages(plain_stream.chunks())
    assert messages.get(0), f"the deltas of choice 0 join to {messages.get(0)!r}"


def test_keep_alive_comments_are_tolerated(api: ApiClient) -> None:
    request = simple_request(api.target.model)
    stream = api.stream(request, headers=KEEP_ALIVES)
    check_stream(api, stream, request)
    if api.target.name == "mock":
        # The only place the suite asks who answers: a live endpoint ignores the header.
        assert stream.comments == [": keep-alive"] * 2, stream.comments
