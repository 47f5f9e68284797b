"""The endpoints beside chat: the model list and the account balance, where a dialect has them."""

from __future__ import annotations

import pytest

from contract_tests.invariants import expect_status
from contract_tests.wire import ApiClient
from mockserver.schemas import names


def has_schema(api: ApiClient, kind: str) -> bool:
    return api.target.dialect.schema(kind) in names()


@pytest.mark.applies_to.with_args(lambda dialect: dialect.models_paths)
def test_model_list_conforms_and_names_the_model_in_use(api: ApiClient) -> None:
    dialect = api.target.dialect
    reply = api.send("GET", dialect.models_paths[0])
    expect_status(reply, 200, "model list")
    body = reply.object()
    if has_schema(api, "models"):
        api.conforms("models", body, "the model list")
    entries = body.get("data") or []
    listed = {e.get("id") for e in entries} | {a for e in entries for a in e.get("aliases") or []}
    assert api.target.model in listed, (
        f"{api.target.model!r}, the model the suite chats with, is not in the model list "
        f"({len(listed)} ids and aliases)"
    )


@pytest.mark.applies_to.with_args(lambda dialect: dialect.balance_paths)
def test_balance_conforms(api: ApiClient) -> None:
    dialect = api.target.dialect
    reply = api.send("GET", dialect.balance_paths[0])
    expect_status(reply, 200, "balance")
    body = reply.object()
    if has_schema(api, "balance"):
        api.conforms("balance", body, "the balance")
    else:
        assert body, "the balance endpoint answered an empty object"
