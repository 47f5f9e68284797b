"""OpenAPI 3.1 documents of what the server answers, built at run time from `schemas/`.

One document per mounted dialect (`/openapi.json` under the dialect's own root) and one for the
admin API (`/__mock/openapi.json`). Bodies are the wire schemas themselves, copied into
`components/schemas` with their `$ref`s rewritten to point there, so the document cannot drift
from what the server checks its own output against. Every status an endpoint can answer is
listed (the documented errors included, since fault rules can ask for any of them), with the
headers each dialect sends, bearer auth, and the stream as server-sent events.
"""

from __future__ import annotations

import copy
import functools
import posixpath
from collections.abc import Awaitable, Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockserver.anthropic.surface import model_schema
from mockserver.catalog import Era
from mockserver.dialects import Dialect
from mockserver.journal import ADMIN_PREFIX
from mockserver.schemas import load, names

if TYPE_CHECKING:
    from mockserver.context import Mock

Json = dict[str, Any]
COMPONENTS = "#/components/schemas/"

# What each dialect can answer on its chat path besides 200: its documented errors (README,
# "Documented errors"), 413 for a body over --max-body-bytes, and 400 for a bad body.
# DeepSeek's 422 for `thinking` that is not an object is answered in every dialect.
CHAT_ERRORS: dict[str, tuple[int, ...]] = {
    "deepseek": (400, 401, 402, 413, 422, 429, 500, 503),
    "aimlapi": (400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504),
    "acedata": (400, 401, 403, 404, 413, 422, 429, 500, 504),
    # DeepSeek's account and limits in Anthropic's envelope, and the statuses its error types
    # name (a fault may ask for any): 529 is overloaded_error.
    "anthropic": (400, 401, 402, 403, 404, 413, 422, 429, 500, 503, 504, 529),
}
# Errors a dialect may send as text/plain instead of its JSON envelope (the `plain` fault, and
# AI/ML's plain 400 for a body it cannot read).
PLAIN_ERRORS: dict[str, tuple[int, ...]] = {
    "deepseek": (401, 422),
    "aimlapi": (400,),
    "acedata": (),
    "anthropic": (),  # always its JSON envelope: that is what the SDK parses
}
DESCRIPTIONS = {
    400: "Bad request: malformed JSON, a wrong type, an out-of-range value, an unknown model",
    401: "Missing or wrong key",
    402: "Insufficient balance",
    403: "Forbidden (AI/ML: out of credits)",
    404: "Not found",
    413: "Request body over the server's --max-body-bytes",
    422: "Invalid parameters",
    429: "Rate limit reached (or too many requests in flight)",
    500: "Server error (only when a fault asks for it)",
    502: "Bad gateway (only when a fault asks for it)",
    503: "Server overloaded (only when a fault asks for it)",
    504: "Timeout (only when a fault asks for it)",
    529: "Overloaded, Anthropic's status for it (only when a fault asks for it)",
}
RETRY_HEADERS = {
    "retry-after": {
        "description": "Seconds to wait, when the fault rule gives `retry_after`",
        "schema": {"type": "string"},
    },
    "retry-after-ms": {
        "description": "Milliseconds to wait, when the fault rule gives `retry_after_ms`",
        "schema": {"type": "string"},
    },
}


def _version() -> str:
    # Asked for only when a document is served: importing `importlib.metadata` (email, zipfile,
    # csv, ...) was ~8 ms of every start-up.
    import importlib.metadata

    try:
        return importlib.metadata.version("deepseek-mock")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "0"


def _key(name: str) -> str:
    """`deepseek/chat-completion.schema.json` → `deepseek.chat-completion`."""
    return name.removesuffix(".schema.json").replace("/", ".")


def _ref(name: str, fragment: str = "") -> Json:
    return {"$ref": COMPONENTS + _key(name) + fragment.removeprefix("#")}


def _rewritten(node: Any, name: str) -> Any:
    """`node` (part of the schema file `name`) with every `$ref` pointing into components."""
    if isinstance(node, list):
        return [_rewritten(item, name) for item in node]
    if not isinstance(node, dict):
        return node
    out: Json = {}
    for key, value in node.items():
        if key in ("$schema", "$id"):
            continue
        if key == "$ref" and isinstance(value, str):
            target, _, fragment = value.partition("#")
            if target:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            out[key] = _ref(target or name, fragment)["$ref"]
        else:
            out[key] = _rewritten(value, name)
    return out


@cache
def _components() -> Json:
    return {_key(name): _rewritten(load(name), name) for name in names()}


# Request fields the mock takes and does not check (it uses none of them), as a live endpoint
# passes through what a given model ignores. Described as such, so that a wrong type there is
# not promised to be a 400.
PASSED_THROUGH = (
    "reasoning_effort", "parallel_tool_calls", "seed", "user", "user_id", "logit_bias",
    "service_tier", "store", "metadata", "prediction", "echo", "min_p", "top_k", "top_a",
    "repetition_penalty",
)  # fmt: skip


def _request_schema(dialect: Dialect, era: Era) -> Json:
    """chat-request.schema.json, narrowed to what this dialect accepts in `era`; the Messages
    request has a file of its own, narrowed to the model names the era maps."""
    if dialect.name == "anthropic":
        messages: Json = copy.deepcopy(_components()["anthropic.request"])
        messages["properties"]["model"] = model_schema(era)
        return messages
    schema: Json = copy.deepcopy(_components()["chat-request"])
    for name in PASSED_THROUGH:
        described = schema["properties"][name].get("description", "")
        schema["properties"][name] = {
            "description": f"{described} Passed through: the mock does not check it.".strip()
        }
    limits = dialect.limits
    schema["properties"]["model"] = {"type": "string", "enum": sorted(era.models)}
    schema["properties"]["n"] = {"type": ["integer", "null"], "minimum": 1, "maximum": limits.max_n}
    stop = schema["properties"]["stop"]
    stop["anyOf"] = [
        {"type": "null"},
        {"type": "string"},
        {"type": "array", "maxItems": limits.max_stop, "items": {"type": "string"}},
    ]
    return schema


def _error(dialect: Dialect, status: int, headers: Json) -> Json:
    content: Json = {"application/json": {"schema": _ref(dialect.schema("error"))}}
    if status in PLAIN_ERRORS[dialect.name]:
        content["text/plain"] = {"schema": {"type": "string"}}
    if status in (429, 503):
        headers = headers | RETRY_HEADERS
    return {"description": DESCRIPTIONS[status], "headers": headers, "content": content}


def _headers(dialect: Dialect, *, success: bool, stream: bool = False) -> Json:
    """The headers a dialect sends; required only where every response carries them.
    `success`: a completion, which may carry its cost (an error or a listing does not)."""
    if dialect.name in ("deepseek", "anthropic"):  # one backend, one trace header
        return {
            "x-ds-trace-id": {
                "description": "A trace id, 32 hex digits, on every response",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            }
        }
    if dialect.name == "aimlapi":
        headers: Json = {
            "x-inference-id": {
                "description": "A UUID for the exchange, on every response",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            },
            "x-client-request-id": {
                "description": "The request's X-Client-Request-Id, echoed when it is valid",
                "schema": {"type": "string"},
            },
        }
        if success and not stream:
            for name, what in (("credits-used", "Credits"), ("usd-spent", "Dollars")):
                headers[f"x-aimlapi-{name}"] = {
                    "description": f"{what} the completion cost (non-streamed answers)",
                    "schema": {"type": "string"},
                }
        return headers
    return {}


def _errors(dialect: Dialect, statuses: Iterable[int]) -> Json:
    return {
        str(status): _error(dialect, status, _headers(dialect, success=False))
        for status in statuses
    }


def _sse_event(dialect: Dialect) -> Json:
    chunk = _ref(dialect.schema("chat-completion-chunk"))
    if dialect.name == "anthropic":
        return {
            "description": "One server-sent event: `event: <its type>` and `data: <its JSON>`, "
            "from message_start to message_stop (or an error event).",
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"type": "string"},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": chunk,
                },
            },
        }
    return {
        "description": "One server-sent event: `data: <chunk JSON>`, and `data: [DONE]` last. "
        "`: keep-alive` comment lines may come between events.",
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "anyOf": [
                    {"const": "[DONE]"},
                    {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": chunk,
                    },
                ]
            }
        },
    }


def _chat(dialect: Dialect) -> Json:
    name = dialect.name
    what = "a message" if name == "anthropic" else "a chat completion"
    return {
        "operationId": f"{name}_chat_completions",
        "summary": f"Create {what} ({dialect.title})",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": COMPONENTS + f"{name}.request"}}},
        },
        "responses": {
            "200": {
                "description": "The answer (JSON), or with `stream: true` a stream of events",
                "headers": _headers(dialect, success=True),
                "content": {
                    "application/json": {"schema": _ref(dialect.schema("chat-completion"))},
                    "text/event-stream": {"schema": _sse_event(dialect)},
                },
            },
            **_errors(dialect, CHAT_ERRORS[name]),
        },
    }


def _fim_request(era: Era) -> Json:
    """FIM's request (no file under schemas/ describes it): the fields fim.py checks, as
    DeepSeek's create-completion reference lists them."""
    number = {"type": ["number", "null"]}
    return {
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {
            "model": {"type": "string", "enum": sorted(m for m, s in era.models.items() if s.fim)},
            "prompt": {"type": ["string", "null"], "description": "null counts as empty"},
            "suffix": {"type": ["string", "null"]},
            "max_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": 4096},
            "logprobs": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
            "echo": {"type": ["boolean", "null"]},
            "stream": {"type": ["boolean", "null"]},
            "stream_options": {"type": ["object", "null"]},
            "stop": {
                "anyOf": [
                    {"type": "null"},
                    {"type": "string"},
                    {"type": "array", "maxItems": 16, "items": {"type": "string"}},
                ]
            },
            "temperature": number | {"minimum": 0, "maximum": 2},
            "top_p": number | {"minimum": 0, "maximum": 1},
            "frequency_penalty": number | {"minimum": -2, "maximum": 2},
            "presence_penalty": number | {"minimum": -2, "maximum": 2},
        },
    }


def _fim(dialect: Dialect) -> Json:
    name = dialect.name
    chunk = _ref(f"{name}/completion-chunk.schema.json")
    event = _sse_event(dialect) | {"properties": {"data": {"anyOf": [
        {"const": "[DONE]"},
        {"type": "string", "contentMediaType": "application/json", "contentSchema": chunk},
    ]}}}  # fmt: skip
    return {
        "summary": f"Create a FIM (fill in the middle) completion ({dialect.title}, beta)",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": COMPONENTS + f"{name}.fim-request"}}
            },
        },
        "responses": {
            "200": {
                "description": "A completion (JSON), or with `stream: true` a stream of chunks",
                "headers": _headers(dialect, success=True),
                "content": {
                    "application/json": {"schema": _ref(f"{name}/completion.schema.json")},
                    "text/event-stream": {"schema": event},
                },
            },
            **_errors(dialect, CHAT_ERRORS[name]),
        },
    }


def _get(dialect: Dialect, what: str, *, needs_key: bool) -> Json:
    schema_name = f"{dialect.name}/{what}.schema.json"
    schema = _ref(schema_name) if schema_name in names() else {"type": "object"}
    operation: Json = {
        "operationId": f"{dialect.name}_{what}",
        "summary": f"{'List the models' if what == 'models' else 'The balance'} ({dialect.title})",
        "responses": {
            "200": {
                "description": "The answer",
                "headers": _headers(dialect, success=False),
                "content": {"application/json": {"schema": schema}},
            },
            **(_errors(dialect, (401,)) if needs_key else {}),
        },
    }
    if not needs_key:
        operation["security"] = []
    return operation


def dialect_document(prefix: str, dialect: Dialect, era: Era) -> Json:
    """The OpenAPI document of one dialect as mounted at `prefix` on this server, for the era
    the server behaves as of (its models; `X-Mock-Era` can pick another per request)."""
    paths: Json = {}
    for path in dialect.chat_paths:
        paths[prefix + path] = {"post": _chat(dialect) | {"operationId": _op_id(dialect, path)}}
    for path in dialect.fim_paths:
        paths[prefix + path] = {"post": _fim(dialect) | {"operationId": _op_id(dialect, path)}}
    for what, group, needs_key in (
        ("models", dialect.models_paths, dialect.models_need_key),
        ("balance", dialect.balance_paths, True),
    ):
        for path in group:
            get = _get(dialect, what, needs_key=needs_key) | {"operationId": _op_id(dialect, path)}
            paths[prefix + path] = {"get": get}
    components = _components() | {f"{dialect.name}.request": _request_schema(dialect, era)}
    if dialect.fim_paths:
        components[f"{dialect.name}.fim-request"] = _fim_request(era)
    schemes: Json = {"bearer": {"type": "http", "scheme": "bearer"}}
    if dialect.name == "anthropic":
        # What the anthropic SDK sends. Bearer is taken too and wins when both come, which
        # two alternatives in `security` could not say (either would have to be enough alone).
        schemes = {
            "api_key": {
                "type": "apiKey",
                "in": "header",
                "name": "x-api-key",
                "description": "Or `Authorization: Bearer <key>`, which wins when both come",
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{dialect.title} (deepseek-mock)",
            "version": _version(),
            "description": f"What deepseek-mock answers in the {dialect.title} dialect. "
            "Any non-empty key is accepted unless the server was started with --api-key.",
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": schemes},
        "security": [{name: []} for name in schemes],
    }


def _op_id(dialect: Dialect, path: str) -> str:
    return dialect.name + path.replace("/", "_").replace("-", "_")


def _admin_error(description: str) -> Json:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("deepseek/error.schema.json")}},
    }


ADMIN_ERRORS = {
    "401": _admin_error("The server has an admin token and the request did not carry it"),
    "403": _admin_error("Not a loopback client"),
}


def admin_document() -> Json:
    """The OpenAPI document of `/__mock/`: the journal, the rules, reset and health."""
    rules = {
        "description": "A scenario document (schemas/scenario.schema.json)",
        "required": True,
        "content": {"application/json": {"schema": _ref("scenario.schema.json")}},
    }
    names_out = {
        "description": "The rules now in force, by name",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    bad = _admin_error("Not a valid scenario document")
    done = {"description": "Done"}
    page = {
        "description": "The live page (its script and style are under /__mock/ui/)",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    json_object = {
        "description": "The answer",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "deepseek-mock admin API",
            "version": _version(),
            "description": "Loopback clients only; with --admin-token, also a bearer token.",
        },
        "paths": {
            "/__mock/": {"get": _admin_op("index", {"200": json_object})},
            "/__mock/health": {"get": _admin_op("health", {"200": json_object})},
            "/__mock/journal": {
                "get": _admin_op("journal_read", {"200": json_object}),
                "delete": _admin_op("journal_clear", {"204": done}),
            },
            "/__mock/scenario": {
                "get": _admin_op("scenario_read", {"200": json_object}),
                "put": _admin_op("scenario_replace", {"200": names_out, "400": bad}, rules),
                "post": _admin_op("scenario_add", {"200": names_out, "400": bad}, rules),
                "delete": _admin_op("scenario_clear", {"204": done}),
            },
            "/__mock/reset": {"post": _admin_op("reset", {"204": done})},
            "/__mock/namespace": {"delete": _admin_op("namespace_forget", {"204": done})},
            "/__mock/ui": {"get": _admin_op("live_page", {"200": page})},
        },
        "components": {
            "schemas": _components(),
            "securitySchemes": {"admin_token": {"type": "http", "scheme": "bearer"}},
        },
    }


def _admin_op(name: str, responses: Json, body: Json | None = None) -> Json:
    operation: Json = {"operationId": f"admin_{name}", "responses": responses | ADMIN_ERRORS}
    if body is not None:
        operation["requestBody"] = body
    return operation


ADMIN_DOCUMENT = ADMIN_PREFIX + "openapi.json"


def document_path(prefix: str, dialect: Dialect) -> str:
    """Where a mounted dialect's document is served: `openapi.json` at its root."""
    return prefix + dialect.home.rstrip("/") + "/openapi.json"


def routes(mock: Mock) -> list[Route]:
    """`GET <dialect root>/openapi.json` for each mount, and `GET /__mock/openapi.json`."""

    def serve(document: Callable[[], Json]) -> Callable[[Request], Awaitable[Response]]:
        # Built on the first request, then kept: the schemas never change under it, and a
        # server nobody asks for its documents never reads the schema files.
        built: list[bytes] = []

        async def openapi(request: Request) -> Response:
            if not built:
                built.append(orjson.dumps(document()))
            return Response(built[0], media_type="application/json")

        return openapi

    out = []
    for prefix, dialect in mock.mounts:
        era = mock.era(dialect, {})
        document = functools.partial(dialect_document, prefix, dialect, era)
        out.append(Route(document_path(prefix, dialect), serve(document)))
    out.append(Route(ADMIN_DOCUMENT, serve(admin_document)))
    return out
