"""The ASGI app: routes come from the dialects, every error leaves through one door.

request → dialect (route) → auth, body, validation → rule → responder → encoder → delivery
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from mockserver import admin, openapi, templates, textgen, ui
from mockserver.anthropic import ANTHROPIC
from mockserver.catalog import Catalog, Era, era_moment, packaged, read_catalog
from mockserver.context import Mock
from mockserver.delivery import (
    ConnectionDropped,
    Delivery,
    batched,
    deliver,
    hold_headers,
    unpaced,
)
from mockserver.dialects import ACEDATA, AIMLAPI, DEEPSEEK, DIALECTS, Dialect
from mockserver.direct import DirectRoutes, Handler
from mockserver.errors import ApiError
from mockserver.faults import (
    broken_body,
    broken_frames,
    check_single_frame,
    error_words,
    fault_words,
    header_fault,
)
from mockserver.fim import parse_fim
from mockserver.inbound import (
    authenticate,
    client_left,
    header_delivery,
    read_body,
    request_headers,
)
from mockserver.journal import JournalMiddleware
from mockserver.namespace_path import NamespacePath
from mockserver.resources import data_dir
from mockserver.responder import Completion, Responder
from mockserver.scenario import ErrorReply, Reply, Rule, load_rules
from mockserver.settings import Settings
from mockserver.state import (
    JournalBook,
    Space,
    open_store,
)
from mockserver.streaming import KEEP_ALIVE, Part, expand
from mockserver.templates import Template
from mockserver.validation import ChatRequest, parse_body
from mockserver.wire import BodyStream, WholeBody

if TYPE_CHECKING:
    from mockserver.replay import Tapes

log = logging.getLogger("mockserver")
Endpoint = Callable[[Request], Awaitable[Response | BodyStream | WholeBody]]


# Other wire formats a provider serves beside its chat completions, on the same server.
SURFACES: Mapping[str, tuple[Dialect, ...]] = {"deepseek": (ANTHROPIC,)}


def mounts_for(settings: Settings) -> tuple[tuple[str, Dialect], ...]:
    if settings.dialect is not None:
        if settings.dialect not in DIALECTS:
            raise ValueError(
                f"unknown dialect {settings.dialect!r}; "
                f"choose one of: {', '.join(sorted(DIALECTS))}"
            )
        mounts: tuple[tuple[str, Dialect], ...] = (("", DIALECTS[settings.dialect]),)
    else:
        prefix = "/" + settings.aimlapi_prefix.strip("/")
        mounts = (("", DEEPSEEK), ("", ACEDATA), (prefix, AIMLAPI))
    return mounts + tuple(
        (prefix, surface)
        for prefix, dialect in mounts
        for surface in SURFACES.get(dialect.name, ())
    )


def catalogs_for(settings: Settings) -> dict[str, Catalog]:
    """The packaged catalogue of each dialect, or the one a --catalog file gives instead."""
    catalogs = {name: packaged(name) for name in DIALECTS}
    for path in settings.catalogs:
        catalog, _ = read_catalog(path)
        catalogs[catalog.dialect] = catalog
    return catalogs


def startup_rules(settings: Settings) -> list[Rule]:
    """Rules given in code or by --fault, then the user's fixtures (first match wins), then
    the captures' own replies."""
    rules = [*settings.rules, *(rule for path in settings.fixtures for rule in load_rules(path))]
    if settings.captured_replies:
        served = {dialect.name for _, dialect in mounts_for(settings)}
        captured = load_rules(data_dir("fixtures") / "replies", validate=False)
        rules += [rule for rule in captured if rule.match.dialect in served]
    return rules


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    startup = tuple(startup_rules(settings))
    catalogs = catalogs_for(settings)
    store = open_store(settings, startup)
    mock = Mock(
        settings=settings,
        store=store,
        responder=Responder(seed=settings.seed),
        mounts=mounts_for(settings),
        catalogs=catalogs,
        moment=era_moment(settings.era, catalogs.values()),
        startup=startup,
        tapes=_tapes(settings),
    )
    routes: list[BaseRoute] = []
    completions: dict[str, Endpoint] = {}  # answered in front of the router (DirectRoutes)
    for prefix, dialect in mock.mounts:
        chat, fim, models, balance = (
            make(mock, dialect)
            for make in (chat_endpoint, fim_endpoint, models_endpoint, balance_endpoint)
        )
        routes += [Route(prefix + path, chat, methods=["POST"]) for path in dialect.chat_paths]
        routes += [Route(prefix + path, fim, methods=["POST"]) for path in dialect.fim_paths]
        for paths, endpoint in ((dialect.chat_paths, chat), (dialect.fim_paths, fim)):
            for path in paths:
                completions.setdefault(prefix + path, endpoint)  # the first route wins, as there
        routes += [Route(prefix + path, models, methods=["GET"]) for path in dialect.models_paths]
        routes += [Route(prefix + path, balance, methods=["GET"]) for path in dialect.balance_paths]
    routes += openapi.routes(mock)
    routes.append(admin.mount(mock, ui.routes(mock)))
    handlers: dict[Any, Handler] = {
        ApiError: render_error,
        HTTPException: render_error,
        ClientDisconnect: client_left,
        Exception: render_error,
    }
    # A shared store out of reach is an expected 503, answered where the request is: left to
    # the server-error handler, it would be answered and then raised again (a traceback per
    # request, the client's connection closed, the journal without the 503).
    for kind in mock.store.unavailable:
        handlers.setdefault(kind, render_error)
    middleware = [
        Middleware(NamespacePath),
        Middleware(
            JournalMiddleware,
            journal_for=lambda scope: journal_of(mock, scope),
            unavailable=mock.store.unavailable,
        ),
    ]
    if mock.tapes is not None:
        from mockserver.replay import TapeMiddleware

        middleware.append(Middleware(TapeMiddleware, mock=mock))
    middleware.append(Middleware(DirectRoutes, endpoints=completions, handlers=handlers))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=handlers,
    )
    app.state.mock = mock
    return app


def _tapes(settings: Settings) -> Tapes | None:
    """The cassettes, when the server has a folder of them; replay and recording (and httpx,
    which records and forwards) are imported only then."""
    if settings.cassettes is None:
        return None
    from mockserver.replay import tapes_for

    return tapes_for(settings, mounts_for(settings))


@dataclass(frozen=True, slots=True)
class Shape:
    """How one kind of answer is written: the body, the stream's chunks and their schemas."""

    render: Callable[[Completion], dict[str, Any]]
    chunks: Callable[[Completion, bool], Iterator[Part]]
    body_schema: str
    chunk_schema: str


def chat_shape(dialect: Dialect) -> Shape:
    return Shape(
        dialect.render,
        dialect.chunks,
        dialect.schema("chat-completion"),
        dialect.schema("chat-completion-chunk"),
    )


def fim_shape(dialect: Dialect) -> Shape:
    if dialect.fim_render is None or dialect.fim_chunks is None:
        raise ValueError(f"{dialect.title} has no FIM completion")
    return Shape(
        dialect.fim_render,
        dialect.fim_chunks,
        dialect.schema("completion"),
        dialect.schema("completion-chunk"),
    )


Parse = Callable[[Any, Dialect, Era, str], ChatRequest]


def _parse_chat(body: Any, dialect: Dialect, era: Era, path: str) -> ChatRequest:
    return dialect.parse(body, dialect.limits, era, beta=dialect.is_beta(path))


def _parse_fim(body: Any, dialect: Dialect, era: Era, path: str) -> ChatRequest:
    return parse_fim(body, dialect.limits, era)


def completion_endpoint(mock: Mock, dialect: Dialect, parse: Parse, shape: Shape) -> Endpoint:
    settings = mock.settings

    async def completions(request: Request) -> Response | BodyStream | WholeBody:
        # What the journal reads back (`request.state` is this dict, behind a wrapper per use).
        state = request.scope.setdefault("state", {})
        state["dialect"] = dialect.name
        path: str = request.scope["path"]  # the route's own: request.url builds a whole URL
        authenticate(request, dialect, settings.api_keys)
        headers = request_headers(request.scope)
        era = mock.era(dialect, headers)
        raw = await read_body(request, settings.max_body_bytes)
        chat = mock.validated.get(raw, path, dialect.name, era)
        again = chat is not None  # this body was read before: its answer may be too
        if chat is None:
            chat = await parsed(raw, lambda: parse(parse_body(raw), dialect, era, path))
            mock.validated.put(raw, path, dialect.name, era, chat)
        state["stream"] = chat.stream
        fault = header_fault(headers)
        space = mock.space_in(request.scope)
        # The account admits the request before any rule sees it: a request refused with 429
        # or 402 must not use up a rule's `times` (nor draw its probability).
        space.balance.check()
        release = space.limiter.acquire(era.concurrency_message)
        try:
            if fault is not None:
                rule, cached = fault, space.cached_tokens(chat)
            else:
                rule, cached = await space.decide(chat, headers, dialect.name)
            state["rule"] = rule.name
            if isinstance(rule.reply, ErrorReply):
                state["fault"] = error_words(rule.reply)
                raise error_from(rule.reply)
            how = settings.delivery.merged(rule.delivery).merged(header_delivery(headers))
            state["fault"] = fault_words(how)
            response = answer(
                mock, space, dialect, chat, rule.reply, how, cached, headers, shape, again, state
            )
        except BaseException:
            release()
            raise
        if isinstance(response, BodyStream):
            response.finished = release  # in flight until the last byte
        else:
            release()
        return response

    return completions


def chat_endpoint(mock: Mock, dialect: Dialect) -> Endpoint:
    return completion_endpoint(mock, dialect, _parse_chat, chat_shape(dialect))


def fim_endpoint(mock: Mock, dialect: Dialect) -> Endpoint:
    if not dialect.fim_paths:
        return chat_endpoint(mock, dialect)  # never routed: the dialect has no FIM paths
    return completion_endpoint(mock, dialect, _parse_fim, fim_shape(dialect))


# Above this size, parsing and counting the prompt (5-15 ms of tokenizer work per 16 KiB of new
# text) runs in a worker thread; the tokenizer releases the GIL, so a multi-megabyte prompt
# (seconds of work) no longer holds every other client.
OFFLOAD_BYTES = 16 * 1024


async def parsed(body: bytes, read: Callable[[], ChatRequest]) -> ChatRequest:
    """`read()` (parse and count `body`), in a worker thread when the body is big."""
    if len(body) <= OFFLOAD_BYTES:
        return read()
    return await anyio.to_thread.run_sync(read)


def answer(
    mock: Mock,
    space: Space,
    dialect: Dialect,
    chat: ChatRequest,
    reply: Reply,
    how: Delivery,
    cached_tokens: Callable[[], int],
    request_headers: Mapping[str, str],
    shape: Shape,
    again: bool = False,
    notes: dict[str, Any] | None = None,
) -> BodyStream | WholeBody:
    """The reply to a request that passed every check, delivered `how` (the server's, the
    rule's and the request's delivery, merged): rendered, encoded, delivered.
    `cached_tokens()` gives the prompt-cache hit of the request's namespace; `again`: the
    request is one read before (the same `ChatRequest`), so its answer may be kept; `notes`:
    the exchange's state, which the journal reads."""
    settings = mock.settings
    if not chat.stream:
        check_single_frame(how)
    head_delay, how = hold_headers(how)
    model = chat.spec.response_model(chat.thinking)
    completion_id = dialect.completion_id(model, chat.stream)
    # Delivered whole, an answer is the same bytes every time but for its id and creation
    # time: from its second sighting on it is copied from a template (mockserver/templates.py).
    # A request read for the first time is a new object: nothing can be kept for it yet, and
    # a body that never repeats (a new prompt each time) costs the templates nothing.
    keepable = again and how.is_plain and not head_delay
    at: tuple[Hashable, ...] = ()
    owners = (chat, reply, shape)
    if keepable:
        hit = cached_tokens()  # asked once: asking is what records the prompt in the cache

        def cached_tokens() -> int:
            return hit

        at = templates.key(*owners, extra=(hit, model))
        template = mock.templates.find(at, owners)
        if template is not None:
            return from_template(
                mock, space, dialect, chat, template, completion_id, request_headers, notes
            )
    completion = mock.responder.complete(
        chat, reply, completion_id=completion_id, model=model, cached_tokens=cached_tokens
    )
    if chat.fim and chat.raw.get("echo") is True:
        completion = echoed(completion, str(chat.raw.get("prompt", "")))
    space.balance.spend(completion.usage.total_tokens)
    headers = dialect.headers(completion, chat.stream, request_headers)
    if keepable and mock.templates.wanted(at) and not has_tool_calls(completion):
        # Tool calls are left out: their ids are drawn afresh for every answer.
        write = functools.partial(written, dialect, shape, chat)
        # With self_check the real answer is checked; a copy of it differs in nothing else.
        try:
            real = written(dialect, shape, chat, completion, check=settings.self_check)
        except AssertionError:
            # It breaks the contract: never kept, and answered as below, where a stream is
            # cut at the chunk that breaks it, after its 200, as every time before.
            mock.templates.refuse(at)
        else:
            mock.templates.build(at, owners, completion, real, write)
            if chat.stream:
                return respond(mock, chat, unpaced(real), headers)
            return WholeBody(real[0], headers=headers)
    # Pacing jitter is seeded as well; most requests have none, so no generator for them.
    rng = textgen.rng_for(settings.seed, chat.raw, -1) if how.gap_sigma else None
    if chat.stream:
        chunks = shape.chunks(completion, chat.include_usage)
        if settings.self_check:
            chunks = _checked(shape.chunk_schema, chunks)
        frames = broken_frames(
            dialect.frame(chunks, dialect.dumps), how, dialect.stream_error(dialect.dumps)
        )
        return respond(
            mock, chat, deliver(frames, how, keep_alive=KEEP_ALIVE, rng=rng), headers, head_delay
        )
    rendered = shape.render(completion)
    if settings.self_check:
        _self_check(shape.body_schema, rendered)
    body = broken_body(dialect.dumps(rendered), how, dialect.dumps, dialect.in_band_error)
    if how.body is not None:
        body = how.body.encode()
    if how.is_plain and not head_delay:
        return WholeBody(body, headers=headers)
    return respond(mock, chat, deliver([body], how, keep_alive=b"\n", rng=rng), headers, head_delay)


def written(
    dialect: Dialect,
    shape: Shape,
    chat: ChatRequest,
    completion: Completion,
    *,
    check: bool = False,
) -> list[bytes]:
    """An answer's writes when nothing times or breaks it: its JSON body, or its stream's
    frames joined as delivery joins them; `check`: each against its schema first."""
    if chat.stream:
        chunks = shape.chunks(completion, chat.include_usage)
        if check:
            chunks = _checked(shape.chunk_schema, chunks)
        return list(batched(dialect.frame(chunks, dialect.dumps)))
    rendered = shape.render(completion)
    if check:
        _self_check(shape.body_schema, rendered)
    return [dialect.dumps(rendered)]


def has_tool_calls(completion: Completion) -> bool:
    return any(choice.tool_calls for choice in completion.choices)


def from_template(
    mock: Mock,
    space: Space,
    dialect: Dialect,
    chat: ChatRequest,
    template: Template,
    completion_id: str,
    request_headers: Mapping[str, str],
    notes: dict[str, Any] | None = None,
) -> BodyStream | WholeBody:
    """An answer copied from its template: the same bytes, this request's id and time, and
    the same accounting (the balance, the headers) as a rendered one. The copy goes in
    `notes`: the journal keeps it rather than the bytes (journal.Reproducible)."""
    space.balance.spend(template.completion.usage.total_tokens)
    headers = dialect.headers(template.completion, chat.stream, request_headers)
    writes = template.render(completion_id, int(mock.responder.clock()))
    if notes is not None:
        notes["copy"] = writes
    if chat.stream:
        return respond(mock, chat, unpaced(writes), headers)
    return WholeBody(next(writes), headers=headers)


def respond(
    mock: Mock,
    chat: ChatRequest,
    body: AsyncIterator[bytes],
    headers: dict[str, str],
    head_delay: float = 0.0,
) -> BodyStream:
    """A body written as delivery makes it: an event stream, or JSON that is timed or cut."""
    if chat.stream:
        media_type = "text/event-stream; charset=utf-8"
        headers = headers | {"cache-control": "no-cache"}
    else:
        media_type = "application/json"
    return BodyStream(
        body, media_type=media_type, headers=headers, tracker=mock.bodies, head_delay=head_delay
    )


def echoed(completion: Completion, prompt: str) -> Completion:
    """FIM's `echo`: the prompt comes back in front of the text; it is not counted again."""
    choices = tuple(
        dataclasses.replace(choice, content=prompt + (choice.content or ""))
        for choice in completion.choices
    )
    return dataclasses.replace(completion, choices=choices)


def models_endpoint(mock: Mock, dialect: Dialect) -> Endpoint:
    async def list_models(request: Request) -> Response:
        request.state.dialect = dialect.name
        if dialect.models_need_key:
            authenticate(request, dialect, mock.settings.api_keys)
        body = dialect.models_body(mock.era(dialect, request.headers))
        return listing(dialect, request, body)

    return list_models


def balance_endpoint(mock: Mock, dialect: Dialect) -> Endpoint:
    async def balance(request: Request) -> Response:
        request.state.dialect = dialect.name
        authenticate(request, dialect, mock.settings.api_keys)
        body = dialect.balance_body(mock.space(request.headers).balance.available)
        return listing(dialect, request, body)

    return balance


def listing(dialect: Dialect, request: Request, body: Any) -> Response:
    """A GET answer (the models, the balance) with the headers the provider puts on every
    response: DeepSeek's trace id, AI/ML API's inference id."""
    headers = dialect.headers(None, False, request_headers(request.scope))
    return Response(dialect.dumps(body), headers=headers, media_type="application/json")


def journal_of(mock: Mock, scope: Scope) -> JournalBook:
    """The journal of the namespace a request names; a name the endpoint will refuse is
    recorded in the default namespace, so its 400 is not lost."""
    try:
        return mock.space_in(scope).journal
    except ApiError:
        return mock.store.space().journal


def error_from(reply: ErrorReply) -> ApiError:
    headers = {}
    if reply.retry_after is not None:
        headers["retry-after"] = f"{reply.retry_after:g}"
    if reply.retry_after_ms is not None:
        headers["retry-after-ms"] = f"{reply.retry_after_ms:g}"
    return ApiError.for_status(
        reply.status, reply.message, code=reply.code, plain=reply.plain, headers=headers
    )


def _self_check(schema: str, *instances: object) -> None:
    from mockserver.schemas import assert_valid

    for instance in instances:
        assert_valid(schema, instance)


def _checked(schema: str, parts: Iterable[Part]) -> Iterator[dict[str, Any]]:
    """Each chunk checked as it is made: a stream that breaks the contract is cut there."""
    for chunk in expand(parts):
        _self_check(schema, chunk)
        yield chunk


async def render_error(request: Request, exc: Exception) -> Response:
    """Every error, expected or not, in the dialect's own envelope."""
    mock: Mock = request.app.state.mock
    unexpected = False
    if isinstance(exc, ApiError):
        error = exc
    elif isinstance(exc, HTTPException):  # the router's 404 and 405 (with its Allow header)
        error = ApiError.for_status(exc.status_code, headers=dict(exc.headers or {}))
    elif isinstance(exc, ConnectionDropped):
        error = ApiError("server_error")  # asked for: the response has started, nothing is sent
    elif isinstance(exc, mock.store.unavailable):
        # Not the mock's bug but its store's absence: say so, and keep the log to one line.
        error = ApiError(
            "overloaded",
            f"the shared state ({mock.store.describe()}) is unreachable: {exc}",
        )
    else:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        error = ApiError("server_error")
        unexpected = True
    name = getattr(request.state, "dialect", None)
    dialect = mock.named(name) if name else mock.dialect_for(request.url.path)
    rendered = dialect.error(error, request.url.path)
    # uvicorn's access line has the status; this one says why, for whoever reads the log.
    log.info(
        "%d for %s %s: %s",
        rendered.status,
        request.method,
        request.url.path,
        error.message or error.kind,
    )
    headers = error.headers | dialect.headers(None, False, request.headers)
    if unexpected:
        # uvicorn drops the connection after an unexpected error: say so, or a pooled client
        # sends its next request on a socket that is about to close.
        headers["connection"] = "close"
    return Response(
        rendered.body, status_code=rendered.status, media_type=rendered.media_type, headers=headers
    )
