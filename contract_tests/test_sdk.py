"""The OpenAI SDK, as an application would use it, on the target's own base URL.

Wire facts are checked from raw bytes elsewhere; this checks that the SDK finds the paths
under `base_url` and turns the answers into its objects.
"""

from __future__ import annotations

import httpx2
import openai

from contract_tests.invariants import simple_request
from contract_tests.wire import ApiClient


def sdk_client(api: ApiClient) -> openai.OpenAI:
    def count(request: httpx2.Request) -> None:
        api.budget.spend(f"SDK {request.method} {request.url.path}")

    target = api.target
    http = httpx2.Client(
        trust_env=not target.loopback,
        event_hooks={"request": [count]},
        timeout=api.http.timeout.read or 60.0,
    )
    # No retries: each call is one request, so the budget counts what was asked for.
    return openai.OpenAI(
        api_key=target.api_key, base_url=target.sdk_base_url, max_retries=0, http_client=http
    )


def extra_fields(request: dict[str, object]) -> dict[str, object]:
    """What the SDK's typed parameters do not carry (DeepSeek's `thinking`)."""
    return {key: value for key, value in request.items() if key == "thinking"}


def test_sdk_reads_a_completion(api: ApiClient) -> None:
    request = simple_request(api.target.model)
    with sdk_client(api) as client:
        completion = client.chat.completions.create(
            model=request["model"],
            messages=request["messages"],
            max_tokens=request["max_tokens"],
            extra_body=extra_fields(request),
        )
    assert completion.choices, "the SDK saw no choices"
    message = completion.choices[0].message
    assert message.content, f"the SDK saw an empty message: {message!r}"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_sdk_reads_a_stream_to_its_end(api: ApiClient) -> None:
    request = simple_request(api.target.model)
    pieces: list[str] = []
    finishes: list[str] = []
    with sdk_client(api) as client:
        stream = client.chat.completions.create(
            model=request["model"],
            messages=request["messages"],
            max_tokens=request["max_tokens"],
            stream=True,
            extra_body=extra_fields(request),
        )
        for chunk in stream:
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
                if choice.finish_reason is not None:
                    finishes.append(choice.finish_reason)
    assert "".join(pieces), "the SDK's deltas join to an empty message"
    assert len(finishes) == 1, f"the SDK saw finish reasons {finishes}"
