"""Errors that are safe to provoke on a live account: status and envelope per dialect.

402 (no balance), 429 (rate limit) and 5xx cannot be provoked on demand without cost or harm;
their envelopes are pinned by the captures in fixtures/captures and the schemas instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from contract_tests.invariants import simple_request
from contract_tests.target import WRONG_KEY
from contract_tests.wire import ApiClient, Reply
from mockserver.drift import StatusNote
from mockserver.schemas import problems


@dataclass(frozen=True, slots=True)
class ErrorCase:
    name: str
    statuses: tuple[int, ...]  # the documented status first, then other documented ones
    send: Callable[[ApiClient], Reply]


def _wrong_key(api: ApiClient) -> Reply:
    return api.chat(simple_request(api.target.model), wrong_key=WRONG_KEY)


def _unknown_model(api: ApiClient) -> Reply:
    return api.chat(simple_request("deepseek-contract-no-such-model"))


def _temperature(api: ApiClient) -> Reply:
    return api.chat(simple_request(api.target.model, temperature=2.5))


def _malformed(api: ApiClient) -> Reply:
    truncated = json.dumps(simple_request(api.target.model)).encode()[:-9]
    return api.send("POST", api.chat_path, content=truncated)


# DeepSeek answers invalid parameters with 400 or 422 depending on the era (api_facts §1.10).
CASES = [
    ErrorCase("wrong key", (401,), _wrong_key),
    ErrorCase("unknown model", (400, 422), _unknown_model),
    ErrorCase("temperature out of range", (400, 422), _temperature),
    ErrorCase("malformed JSON body", (400, 422), _malformed),
]


def envelope_problems(api: ApiClient, reply: Reply) -> list[str]:
    try:
        body = json.loads(reply.body)
    except ValueError:
        return [f"not JSON ({reply.content_type or 'no content-type'}): {reply.body[:120]!r}"]
    found = problems(api.target.dialect.schema("error"), body)
    # The AI/ML envelope repeats the status; when present it must agree with the HTTP status.
    code = body.get("statusCode") if isinstance(body, dict) else None
    if code is not None and str(code) != str(reply.status):
        found.append(f"$.statusCode: {code!r} but the HTTP status is {reply.status}")
    return found


@pytest.mark.parametrize("case", CASES, ids=[case.name.replace(" ", "-") for case in CASES])
def test_error_has_the_documented_status_and_envelope(api: ApiClient, case: ErrorCase) -> None:
    reply = case.send(api)
    found = envelope_problems(api, reply)
    note = StatusNote(
        api.target.id, case.name, list(case.statuses), reply.status, reply.content_type, found
    )
    api.drift.status(note)
    if not found:
        api.drift.observe(api.target.id, api.target.dialect.schema("error"), reply.json())
    assert reply.status in case.statuses, (
        f"{case.name}: expected HTTP {' or '.join(map(str, case.statuses))}, got {reply.status}: "
        f"{reply.body[:300]!r}"
    )
    assert not found, (
        f"{case.name}: the {reply.status} body is not in the "
        f"{api.target.dialect.title} error envelope:\n  " + "\n  ".join(found)
    )
