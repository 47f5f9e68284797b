"""Raw HTTP for the contract suite: replies as bytes, streams as the SSE events on the wire.

The OpenAI SDK hides frames (keep-alive comments, `[DONE]`, a missing terminator), so the wire
checks read bytes with httpx and split them here, following the SSE rules the SDK's decoder
uses: lines end in CR, LF or CRLF; a blank line ends an event; `:` starts a comment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from contract_tests.target import Budget, Target
from mockserver.drift import Drift
from mockserver.schemas import problems

Json = dict[str, Any]
MAX_BODY_BYTES = 4 * 1024 * 1024  # far above any answer the suite asks for; bounds every read
DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class Reply:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes
    sent_at: float  # wall clock, for checking `created`
    received_at: float

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            excerpt = self.body[:200].decode("utf-8", "replace")
            raise AssertionError(
                f"{self.method} {self.path} answered {self.status} with a body that is not "
                f"JSON ({self.content_type or 'no content-type'}): {excerpt!r}"
            ) from None

    def object(self) -> Json:
        value = self.json()
        assert isinstance(value, dict), f"{self.path}: expected a JSON object, got {value!r:.200}"
        return value


@dataclass
class Sse:
    """One response read as server-sent events."""

    reply: Reply
    events: list[str] = field(default_factory=list)  # the data of each dispatched event
    comments: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)  # names of non-data fields (event:, id:)
    unterminated: str | None = None  # data left without the blank line that dispatches it

    @property
    def done_count(self) -> int:
        return sum(1 for data in self.events if data == DONE)

    def chunks(self) -> list[Json]:
        """The JSON of every event before the first `[DONE]` (all of them if there is none)."""
        out: list[Json] = []
        for n, data in enumerate(self.events):
            if data == DONE:
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                raise AssertionError(
                    f"event {n} is neither JSON nor [DONE]: {data[:200]!r}"
                ) from None
            assert isinstance(chunk, dict), f"event {n} is JSON but not an object: {data[:200]!r}"
            out.append(chunk)
        return out


def parse_sse(reply: Reply) -> Sse:
    stream = Sse(reply)
    text = reply.body.decode("utf-8", "replace")
    data: list[str] = []
    pending = False
    # splitlines() also splits on form feeds and Unicode separators, which SSE does not.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line break ends the last line; it is not an extra blank line
    for line in lines:
        if line == "":
            if pending:
                stream.events.append("\n".join(data))
            data, pending = [], False
            continue
        if line.startswith(":"):
            stream.comments.append(line)
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
            pending = True
        else:
            stream.fields.append(name)
    if pending:
        stream.unterminated = "\n".join(data)
    return stream


class ApiClient:
    """Sends the suite's requests to one target: counted by the budget, bounded in size."""

    def __init__(self, target: Target, budget: Budget, drift: Drift, *, timeout: float) -> None:
        self.target = target
        self.budget = budget
        self.drift = drift
        self.http = httpx.Client(
            base_url=target.base_url,
            # Set once here, so the key is never a local of a frame a traceback might show.
            headers={"Accept": "application/json", "Authorization": f"Bearer {target.api_key}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            # Proxy variables must not reroute the loopback mock; live runs may need them.
            trust_env=not target.loopback,
        )
        drift.targets[target.id] = target.base_url

    def __repr__(self) -> str:
        return f"ApiClient({self.target!r})"

    def close(self) -> None:
        self.http.close()

    @property
    def chat_path(self) -> str:
        return self.target.dialect.chat_paths[0]

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Json | None = None,
        content: bytes | None = None,
        wrong_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """`wrong_key` replaces the target's key for this request (to provoke a 401)."""
        self.budget.spend(f"{method} {path}")
        sent_at = time.time()
        all_headers = dict(headers or {})
        if wrong_key is not None:
            all_headers["Authorization"] = f"Bearer {wrong_key}"
        if body is not None:
            content = json.dumps(body).encode()
        if content is not None:
            all_headers.setdefault("Content-Type", "application/json")
        with self.http.stream(method, path, content=content, headers=all_headers) as response:
            received = bytearray()
            for piece in response.iter_bytes():
                received += piece
                assert len(received) <= MAX_BODY_BYTES, (
                    f"{method} {path}: more than {MAX_BODY_BYTES} bytes; stopped reading"
                )
            return Reply(
                method=method,
                path=path,
                status=response.status_code,
                content_type=response.headers.get("content-type", ""),
                body=bytes(received),
                sent_at=sent_at,
                received_at=time.time(),
            )

    def chat(self, body: Json, **kw: Any) -> Reply:
        return self.send("POST", self.chat_path, body=body, **kw)

    def stream(self, body: Json, **kw: Any) -> Sse:
        return parse_sse(self.chat(body | {"stream": True}, **kw))

    def conforms(self, kind: str, instance: object, where: str) -> None:
        """Note drift for `instance`, then fail unless the dialect's `kind` schema accepts it."""
        __tracebackhide__ = True
        name = self.target.dialect.schema(kind)
        self.drift.observe(self.target.id, name, instance)
        found = problems(name, instance)
        if found:
            raise AssertionError(f"{where} breaks {name}:\n  " + "\n  ".join(found[:12]))
