"""The validating proxy: real traffic forwarded unchanged, each body and each stream event
checked against the dialect's schemas and the contract's stream invariants, after it has gone
on to the client. What does not fit is drift, in the contract suite's report format."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from starlette.types import Scope

from mockserver import schemas
from mockserver.cassette import DEFAULT_REDACTION, Framer, Redaction
from mockserver.dialects import Dialect
from mockserver.drift import Drift, Findings, StatusNote, documented_values, examine
from mockserver.invariants import (
    DONE,
    finish_problems,
    framing_problems,
    identity_problems,
    message_problems,
    placement_problems,
)
from mockserver.recorder import ForwardApp, Forwarder, Observer, recording_for
from mockserver.replay import CASSETTE_HEADER, Tapes

MAX_BODY = 4 * 1024 * 1024  # a non-streamed body is checked only up to this size
MAX_CHUNKS = 100_000  # a stream's chunks kept for the whole-stream invariants


@lru_cache(maxsize=256)
def schema_for(dialect: Dialect, path: str, stream: bool) -> str | None:
    """The schema a 2xx answer on `path` must fit (None: the contract has none for it)."""
    if any(path.endswith(p) for p in dialect.fim_paths):
        kind = "completion"
    elif any(path.endswith(p) for p in dialect.chat_paths):
        kind = "chat-completion"
    elif any(path.endswith(p) for p in dialect.models_paths):
        kind = "models"
    elif any(path.endswith(p) for p in dialect.balance_paths):
        kind = "balance"
    else:
        return None
    name = dialect.schema(f"{kind}-chunk" if stream else kind)
    return name if name in _known() else None


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(schemas.names())


def sse_data(frame: bytes) -> str | None:
    """The data of one SSE frame (lines joined by \\n), None for a comment or blank frame."""
    lines = frame.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    data = [line[5:].removeprefix(" ") for line in lines.split("\n") if line.startswith("data:")]
    return "\n".join(data) if data else None


# Free text: no schema constrains these strings beyond their type, so two bodies that differ
# only there get the same verdict. A stream's chunks mostly differ only there.
FREE_TEXT = frozenset({"content", "reasoning_content"})
MASK = "…"


def _masked(value: Any, text: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _masked(v, k in FREE_TEXT) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return MASK if text and isinstance(value, str) else value


def shape(instance: object) -> bytes:
    """What the verdict on a body depends on: the body with its free text masked."""
    return orjson.dumps(_masked(instance))


@lru_cache(maxsize=4096)
def verdict(schema: str, shaped: bytes) -> tuple[Findings, tuple[str, ...]]:
    """The drift walk and the schema's problems for a body shape, computed once per shape:
    a full check costs ~0.3 ms, which a proxy cannot spend on every frame of every stream."""
    instance = orjson.loads(shaped)
    return examine(schema, instance), tuple(schemas.problems(schema, instance)[:3])


@dataclass
class Watch:
    """An `Observer` that checks one exchange. Everything it finds goes into `drift`."""

    drift: Drift
    target: str
    dialect: Dialect
    method: str
    path: str
    request: Any
    status: int = 0
    content_type: str = ""
    stream: bool = False
    framer: Framer = field(default_factory=lambda: Framer(sse=True))
    events: list[str] = field(default_factory=list)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)

    @property
    def where(self) -> str:
        return f"{self.method} {self.path}"

    def head(self, status: int, headers: list[tuple[str, str]], t_ms: float) -> None:
        self.status = status
        self.content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        self.stream = self.content_type.startswith("text/event-stream")

    def chunk(self, data: bytes, t_ms: float) -> None:
        if not self.stream:
            if len(self.body) < MAX_BODY:
                self.body += data[: MAX_BODY - len(self.body)]
            return
        for event in self.framer.feed(data, t_ms):
            if event.kind == "data":
                self._event(sse_data(event.raw))

    def _event(self, data: str | None) -> None:
        if data is None:
            return
        self.events.append(data)
        if data == DONE:
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            self.drift.problem(self.target, self.where, f"an event is not JSON: {data[:80]!r}")
            return
        schema = schema_for(self.dialect, self.path, stream=True)
        if self.status < 300 and schema is not None and isinstance(chunk, dict):
            self._conforms(schema, chunk)
            if len(self.chunks) < MAX_CHUNKS:
                self.chunks.append(chunk)

    def _conforms(self, schema: str, instance: object) -> None:
        findings, problems = verdict(schema, shape(instance))
        self.drift.record(self.target, schema, findings)
        for problem in problems:
            self.drift.problem(self.target, schema, problem)

    def end(self, ending: str, t_ms: float) -> None:
        if ending == "client_left":
            return
        if ending == "reset":
            self.drift.problem(self.target, self.where, "the connection broke mid-body")
        if self.stream:
            self._stream_ended(t_ms)
        else:
            self._body_ended()

    def _stream_ended(self, t_ms: float) -> None:
        unterminated = None
        for event in self.framer.close(t_ms):
            unterminated = sse_data(event.raw) or event.raw.decode("utf-8", "replace")
        schema = schema_for(self.dialect, self.path, stream=True)
        if self.status >= 300 or schema is None:
            return
        request = self.request if isinstance(self.request, dict) else {}
        n = request.get("n") or 1
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        found = framing_problems(self.events, unterminated)
        ended = not found  # a stream that stopped early lacks its end: say that, once
        if self.chunks:
            found += identity_problems(self.chunks)
        if self.chunks and ended:
            documented = documented_values(schema, "choices", "[]", "finish_reason")
            found += finish_problems(self.chunks, n, documented)
            found += placement_problems(self.dialect.name, self.chunks, include_usage)
            found += message_problems(self.chunks, n)
        for problem in found:
            self.drift.problem(self.target, f"{self.where} (stream)", problem)

    def _body_ended(self) -> None:
        text = bytes(self.body).strip()
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        if self.status >= 400:
            envelope = self.dialect.schema("error")
            problems = (
                schemas.problems(envelope, body)
                if body is not None
                else [f"not JSON ({self.content_type or 'no content-type'})"]
            )
            self.drift.status(
                StatusNote(
                    self.target,
                    self.where,
                    [self.status],
                    self.status,
                    self.content_type,
                    problems,
                )
            )
            return
        schema = schema_for(self.dialect, self.path, stream=False)
        if schema is None:
            return
        if body is None:
            self.drift.problem(self.target, self.where, "the body is not JSON")
            return
        self._conforms(schema, body)


@dataclass
class Proxy:
    """What one proxy process shares: its drift and how many requests it forwarded."""

    dialect: Dialect
    upstream: str
    drift: Drift = field(default_factory=Drift)
    requests: int = 0

    def __post_init__(self) -> None:
        self.drift.targets[self.dialect.name] = self.upstream

    def report(self) -> dict[str, Any]:
        return self.drift.report(self.requests)

    def observers_for(
        self, tapes: Tapes | None, redaction: Redaction = DEFAULT_REDACTION
    ) -> Callable[[Scope, bytes], list[Observer]]:
        def observers(scope: Scope, body: bytes) -> list[Observer]:
            self.requests += 1
            try:
                request = json.loads(body) if body else None
            except ValueError:
                request = None
            found: list[Observer] = [
                Watch(
                    self.drift,
                    self.dialect.name,
                    self.dialect,
                    scope["method"],
                    scope["path"],
                    request,
                )
            ]
            if tapes is not None:
                asked = dict(scope["headers"]).get(CASSETTE_HEADER.encode(), b"")
                tape = tapes.tape(asked.decode("latin-1") or None)
                found.append(recording_for(scope, body, lambda i: tapes.add(tape, i), redaction))
            return found

        return observers


def proxy_app(proxy: Proxy, forwarder: Forwarder, tapes: Tapes | None = None) -> ForwardApp:
    return ForwardApp(
        forwarder,
        proxy.dialect,
        proxy.observers_for(tapes, tapes.redaction if tapes else DEFAULT_REDACTION),
        admin={"drift": proxy.report},
    )
