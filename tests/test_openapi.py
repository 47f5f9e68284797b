"""The OpenAPI documents the server serves: built from schemas/, one per mounted dialect and one
for the admin API. `make schemathesis` drives Schemathesis with them; these tests pin what they
must say."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockserver import admin
from mockserver.anthropic import ANTHROPIC
from mockserver.dialects import DIALECTS
from mockserver.schemas import assert_valid
from mockserver.server import MockServer
from mockserver.settings import Settings

Json = dict[str, Any]
DOCUMENTS = {
    "deepseek": "/openapi.json",
    "acedata": "/deepseek/openapi.json",
    "aimlapi": "/aimlapi/openapi.json",
}
AUTH = {"Authorization": "Bearer sk-test"}
HI = [{"role": "user", "content": "hi"}]


def fetch(server: MockServer, path: str) -> Json:
    response = httpx.get(server.url + path)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    document: Json = response.json()
    assert document["openapi"] == "3.1.0"
    return document


def validator_for(document: Json, pointer: str) -> Draft202012Validator:
    """A validator for the schema at `pointer` inside the document, its $refs resolved there."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:openapi", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": "urn:openapi#" + pointer}, registry=registry)


@pytest.mark.parametrize("dialect", sorted(DOCUMENTS))
def test_each_dialect_serves_its_surface(mock: MockServer, dialect: str) -> None:
    document = fetch(mock, DOCUMENTS[dialect])
    prefix = "/aimlapi" if dialect == "aimlapi" else ""
    spec = DIALECTS[dialect]
    served = {
        prefix + p
        for p in (*spec.chat_paths, *spec.fim_paths, *spec.models_paths, *spec.balance_paths)
    }
    assert set(document["paths"]) == served
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    chat = document["paths"][prefix + spec.chat_paths[0]]["post"]
    ok = chat["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/event-stream"}
    assert {"400", "401", "413", "429", "500"} <= set(chat["responses"])
    if dialect == "deepseek":
        assert ok["headers"]["x-ds-trace-id"]["required"] is True
        assert "retry-after" in chat["responses"]["503"]["headers"]
        assert "text/plain" in chat["responses"]["401"]["content"]


def test_the_documents_describe_real_answers(mock: MockServer) -> None:
    """A completion, a stream event and an error, each validated by the schema the document
    gives for it: the document and the wire agree."""
    document = fetch(mock, "/openapi.json")
    base = "/paths/~1chat~1completions/post/responses"
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
    request = validator_for(
        document, "/paths/~1chat~1completions/post/requestBody/content/application~1json/schema"
    )
    assert not list(request.iter_errors(body))
    assert list(request.iter_errors(body | {"model": "gpt-4"})), "the model list is the dialect's"
    answer = httpx.post(mock.url + "/chat/completions", json=body, headers=AUTH)
    assert not list(
        validator_for(document, base + "/200/content/application~1json/schema").iter_errors(
            answer.json()
        )
    )
    stream = httpx.post(mock.url + "/chat/completions", json=body | {"stream": True}, headers=AUTH)
    events = [{"data": line[6:]} for line in stream.text.splitlines() if line.startswith("data: ")]
    event = validator_for(document, base + "/200/content/text~1event-stream/schema")
    assert events[-1] == {"data": "[DONE]"} and all(event.is_valid(e) for e in events)
    refused = httpx.post(mock.url + "/chat/completions", json=body)
    assert refused.status_code == 401
    assert not list(
        validator_for(document, base + "/401/content/application~1json/schema").iter_errors(
            refused.json()
        )
    )


def test_the_anthropic_surface_has_its_document(mock_now: MockServer) -> None:
    """The Messages surface: its own request file narrowed to the era's names, `x-api-key`,
    named events, and Anthropic's envelope for every status, each checked on real answers."""
    document = fetch(mock_now, "/anthropic/openapi.json")
    assert set(document["paths"]) == set(ANTHROPIC.chat_paths)
    assert document["security"] == [{"api_key": []}]
    assert document["components"]["securitySchemes"]["api_key"]["name"] == "x-api-key"
    post = document["paths"]["/anthropic/v1/messages"]["post"]
    assert {"400", "401", "402", "429", "529"} <= set(post["responses"])
    pointer = "/paths/~1anthropic~1v1~1messages/post"
    request = validator_for(document, pointer + "/requestBody/content/application~1json/schema")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 20, "messages": HI}
    assert request.is_valid(body) and request.is_valid(body | {"model": "deepseek-v4-pro"})
    # The newest era maps claude* names only: another name is its unknown-model 400.
    assert not request.is_valid(body | {"model": "gpt-4"})
    key = {"x-api-key": "sk-test"}
    url = mock_now.url + "/anthropic/v1/messages"
    base = pointer + "/responses"
    answer = httpx.post(url, json=body, headers=key)
    assert answer.status_code == 200
    assert validator_for(document, base + "/200/content/application~1json/schema").is_valid(
        answer.json()
    )
    stream = httpx.post(url, json=body | {"stream": True}, headers=key)
    lines = stream.text.splitlines()
    events = [
        {"event": name[7:], "data": data[6:]}
        for name, data in itertools.pairwise(lines)
        if name.startswith("event: ") and data.startswith("data: ")
    ]
    event = validator_for(document, base + "/200/content/text~1event-stream/schema")
    assert events[0]["event"] == "message_start" and events[-1]["event"] == "message_stop"
    assert all(event.is_valid(e) for e in events)
    data = validator_for(document, "/components/schemas/anthropic.stream-event")
    assert all(data.is_valid(json.loads(e["data"])) for e in events)
    refused = httpx.post(url, json=body | {"model": "gpt-4"}, headers=key)
    assert refused.status_code == 400
    assert validator_for(document, base + "/400/content/application~1json/schema").is_valid(
        refused.json()
    )


def test_one_dialect_alone_serves_its_document_at_the_root() -> None:
    with MockServer(Settings(port=0, dialect="aimlapi")) as server:
        document = fetch(server, "/openapi.json")
        assert "/v1/chat/completions" in document["paths"]
        assert document["paths"]["/v1/models"]["get"]["security"] == []


def test_the_admin_api_has_its_own_document(mock: MockServer) -> None:
    document = fetch(mock, "/__mock/openapi.json")
    described = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    # What the index (GET /__mock/) lists is what the document describes.
    assert described == {(method, path) for method, path, _ in admin.ENDPOINTS}
    scenario = document["paths"]["/__mock/scenario"]
    assert set(scenario) == {"get", "put", "post", "delete"}
    schema = validator_for(document, "/components/schemas/scenario")
    rules = {"rules": [{"name": "down", "error": {"status": 503}}]}
    assert schema.is_valid(rules)
    assert httpx.put(mock.url + "/__mock/scenario", json=rules).status_code == 200
    assert_valid("scenario.schema.json", rules)
