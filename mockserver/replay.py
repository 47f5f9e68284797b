"""Replay: a request that matches a recording gets its status, headers and frames, at the
recorded offsets scaled by the replay speed; faults still apply on top of the frames.

Record modes, as vcrpy names them:
  none          replay only; a request with no recording gets a 404 that names the closest one
  once          a cassette that exists is replayed (as `none`); one that does not is recorded
  new_episodes  replay what matches, forward and record what does not
  all           forward and record everything, replacing the cassette
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from mockserver import cassette as tape_format
from mockserver.cassette import (
    DEFAULT_IGNORE,
    DEFAULT_REDACTION,
    MODES,
    Cassette,
    Interaction,
    Json,
    Miss,
    Redaction,
    differences,
    match_key,
    request_record,
)
from mockserver.delivery import PLAIN, ConnectionDropped, Delivery, split_awkwardly
from mockserver.dialects import DIALECTS, Dialect
from mockserver.errors import ApiError
from mockserver.faults import IN_BAND_ERROR, error_event, error_words, fault_words, header_fault
from mockserver.inbound import header_delivery
from mockserver.recorder import (
    Forwarder,
    forward_or_502,
    read_all,
    recording_for,
    send_error,
)
from mockserver.scenario import ErrorReply
from mockserver.settings import Settings
from mockserver.wire import BodyStream

if TYPE_CHECKING:
    from mockserver.context import Mock

log = logging.getLogger("mockserver")

CASSETTE_HEADER = "x-mock-cassette"
MISS_HEADER = "x-mock-cassette-miss"
DONE = b"data: [DONE]\n\n"
RECORDED_METHODS = frozenset({"GET", "POST"})  # what the providers' APIs answer; the rest is 405
COUNTED = frozenset({"data", "body", "partial"})  # keep-alives and blank lines do not count


def recorder_name() -> str:
    try:
        return f"deepseek-mock {importlib.metadata.version('deepseek-mock')}"
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a bare checkout
        return "deepseek-mock"


@dataclass
class Tape:
    """One cassette in use: its recordings, which were replayed, and whether it records."""

    cassette: Cassette
    records: bool  # new exchanges are forwarded and written here
    replayed: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.replayed = [False] * len(self.cassette.interactions)


class Tapes:
    """The cassettes of one server, opened as requests name them; safe across threads (the
    server's loop writes, a test's thread reads the misses)."""

    def __init__(
        self,
        directory: Path,
        *,
        mode: str = "none",
        default: str = "default",
        ignore: Iterable[str] = DEFAULT_IGNORE,
        redaction: Redaction = DEFAULT_REDACTION,
        upstream: str = "",
        dialect: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"record mode {mode!r}: choose one of {', '.join(MODES)}")
        self.directory = directory
        self.mode = mode
        self.default = default
        self.ignore = tuple(ignore)
        self.redaction = redaction
        self.upstream = upstream
        self.dialect = dialect
        self.misses: list[Miss] = []
        self._tapes: dict[str, Tape] = {}
        self._lock = threading.Lock()

    def tape(self, name: str | None = None) -> Tape:
        name = name or self.default
        with self._lock:
            if name not in self._tapes:
                path = tape_format.cassette_path(self.directory, name)
                if self.mode == "all":
                    found = Cassette(path=path, name=name, existed=path.exists())
                else:
                    found = tape_format.load(path, name)
                records = self.mode == "all" or (self.mode == "once" and not found.existed)
                records = records or self.mode == "new_episodes"
                self._tapes[name] = Tape(found, records)
            return self._tapes[name]

    def replays_only(self, tape: Tape) -> bool:
        """`none`, and `once` with a cassette that existed: never the network."""
        return not tape.records

    def forwards_everything(self, tape: Tape) -> bool:
        return self.mode == "all" or (self.mode == "once" and tape.records)

    def find(self, tape: Tape, request: Json) -> tuple[int, Interaction] | Miss:
        """The first recording of this request not yet replayed, else a `Miss` that says why."""
        key = match_key(request, self.ignore)
        with self._lock:
            recordings = tape.cassette.interactions
            same = [i for i, r in enumerate(recordings) if match_key(r.request, self.ignore) == key]
            for i in same:
                if not tape.replayed[i]:
                    tape.replayed[i] = True
                    return i, recordings[i]
            if same:
                miss = Miss(
                    tape.cassette.name,
                    str(request["method"]),
                    str(request["path"]),
                    same[-1],
                    tuple(f"#{i}" for i in same),
                    exhausted=True,
                )
            else:
                miss = self._closest(tape, key, request)
            self.misses.append(miss)
            return miss

    def _closest(self, tape: Tape, key: Json, request: Json) -> Miss:
        best: tuple[int, int, list[str]] | None = None
        for i, recorded in enumerate(tape.cassette.interactions):
            diff = differences(match_key(recorded.request, self.ignore), key, limit=50)
            score = len(diff) + (100 if recorded.request.get("path") != key["path"] else 0)
            if best is None or score < best[0]:
                best = (score, i, diff)
        return Miss(
            tape.cassette.name,
            str(request["method"]),
            str(request["path"]),
            None if best is None else best[1],
            tuple(best[2][:12]) if best else (),
            missing_file=None if tape.cassette.existed else str(tape.cassette.path),
        )

    def add(self, tape: Tape, interaction: Interaction) -> None:
        if interaction.request.get("method") not in RECORDED_METHODS:
            log.info("not recorded: %s (only GET and POST are)", interaction.request.get("method"))
            return
        with self._lock:
            cassette = tape.cassette
            cassette.interactions.append(interaction)
            tape.replayed.append(True)  # recorded just now: it has had its answer
            cassette.upstream = self.upstream
            cassette.dialect = cassette.dialect or self.dialect
            cassette.recorded_at = cassette.recorded_at or tape_format.now()
            cassette.save(recorder_name())

    def forget(self, miss: Miss) -> None:
        """A miss that was recorded after all is not one."""
        with self._lock:
            if miss in self.misses:
                self.misses.remove(miss)

    def release(self, tape: Tape, index: int) -> None:
        with self._lock:
            tape.replayed[index] = False

    def reset(self) -> None:
        """Replay starts again from each cassette's first recording; misses are forgotten."""
        with self._lock:
            for tape in self._tapes.values():
                tape.replayed = [False] * len(tape.cassette.interactions)
            self.misses.clear()

    def take_misses(self) -> list[Miss]:
        with self._lock:
            misses, self.misses = self.misses, []
            return misses


async def replay_body(
    interaction: Interaction,
    *,
    started: float,
    speed: float,
    how: Delivery,
    error_frame: bytes,
) -> AsyncIterator[bytes]:
    """The recorded frames at their offsets (divided by `speed`; 0: at once), with the
    delivery faults applied: frames count from 0, keep-alives and blank lines excluded."""
    n = 0
    last = b""
    for event in interaction.events:
        if speed:
            wait = started + event.t_ms / 1000 / speed - anyio.current_time()
            if wait > 0:
                await anyio.sleep(wait)
        raw = event.raw
        if event.kind in COUNTED:
            if how.cut_after is not None and n >= how.cut_after:
                if how.reset:
                    raise ConnectionDropped(f"connection reset after {n} frames, as asked")
                return
            if how.stall_after is not None and n >= how.stall_after:
                await anyio.sleep_forever()
            if n == how.error_at:
                yield error_frame
                return
            if n == how.malformed_at:
                raw = raw[: max(len(raw) // 2, 7)] + (b"\n\n" if interaction.stream else b"")
            n += 1
        if how.split_writes:
            for piece in split_awkwardly(raw):
                yield piece
                await anyio.sleep(0)
        else:
            yield raw
        last = raw
    if how.duplicate_done and last == DONE:
        yield last
    if not interaction.complete:
        raise ConnectionDropped("the recorded connection broke here")


def _delivery(mock: Mock, scope: Scope, body: bytes, headers: Headers) -> Delivery | ApiError:
    """The faults asked for this request (X-Mock-Fault, the scenario's rules, X-Mock-Delivery,
    the server's); an ApiError when a rule answers with an error instead. The journal gets
    them in --fault words, as for an answer the mock makes."""
    from mockserver.app import error_from
    from mockserver.validation import parse_body, parse_chat

    dialect = mock.dialect_for(scope["path"])
    try:
        rule = header_fault(headers)
        if rule is None:
            try:
                era = mock.era(dialect, headers)
                chat = parse_chat(
                    parse_body(body), dialect.limits, era, beta=dialect.is_beta(scope["path"])
                )
            except ApiError:
                chat = None  # not a chat request the mock understands: only header faults
            if chat is not None:
                rule = mock.space(headers).scenario.decide(chat, headers, dialect.name)
        if rule is not None and isinstance(rule.reply, ErrorReply):
            scope["state"]["fault"] = error_words(rule.reply)
            return error_from(rule.reply)
        how = mock.settings.delivery.merged(rule.delivery if rule else PLAIN)
        how = how.merged(header_delivery(headers))
        scope["state"]["fault"] = fault_words(how)
        return how
    except ApiError as exc:
        return exc


class TapeMiddleware:
    """In front of the mock's routes when the server has cassettes: every request (but the
    admin API's) is replayed, forwarded and recorded, or answered as a miss."""

    def __init__(self, app: ASGIApp, mock: Mock) -> None:
        self.app = app
        self.mock = mock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tapes = self.mock.tapes
        if tapes is None or scope["type"] != "http" or scope["path"].startswith("/__mock/"):
            await self.app(scope, receive, send)
            return
        started = anyio.current_time()
        settings = self.mock.settings
        dialect = self.mock.dialect_for(scope["path"])
        state = scope.setdefault("state", {})
        state["dialect"] = dialect.name
        body = await read_all(receive, settings.max_body_bytes)
        if body is None:
            limit = f"Request body is too large: the limit is {settings.max_body_bytes} bytes"
            await send_error(send, dialect, ApiError("too_large", limit), scope["path"])
            return
        headers = Headers(scope=scope)
        try:
            tape = tapes.tape(headers.get(CASSETTE_HEADER))
        except ValueError as exc:
            await send_error(send, dialect, ApiError("invalid_request", str(exc)), scope["path"])
            return
        request = request_record(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            headers.items(),
            body,
            tapes.redaction,
        )
        asked = request.get("json")
        state["stream"] = isinstance(asked, dict) and asked.get("stream") is True
        if tapes.forwards_everything(tape):
            await self._record(tape, scope, body, receive, send)
            return
        found = tapes.find(tape, request)
        if isinstance(found, Miss):
            if not tapes.replays_only(tape):  # new_episodes: what is new is recorded
                tapes.forget(found)
                await self._record(tape, scope, body, receive, send)
                return
            state["rule"] = "cassette miss"
            log.info("cassette miss: %s", found.message())
            error = ApiError("not_found", found.message(), code="no_recording")
            error.headers[MISS_HEADER] = "1"
            await send_error(send, dialect, error, scope["path"])
            return
        index, interaction = found
        state["rule"] = f"cassette {tape.cassette.name} #{index}"
        how = _delivery(self.mock, scope, body, headers)
        if isinstance(how, ApiError):
            tapes.release(tape, index)  # a rule answered instead: the recording is still due
            state["rule"] = "fault on a replay"
            await send_error(send, dialect, how, scope["path"])
            return
        error_frame = (
            error_event(dialect.dumps) if interaction.stream else dialect.dumps(IN_BAND_ERROR)
        )
        recorded = dict(interaction.headers)
        media_type = recorded.pop("content-type", "application/octet-stream")
        speed = settings.replay_speed
        response = BodyStream(
            replay_body(
                interaction, started=started, speed=speed, how=how, error_frame=error_frame
            ),
            status=interaction.status,
            media_type=media_type,
            headers=recorded,
            tracker=self.mock.bodies,
            head_delay=max(interaction.head_ms / 1000 / speed - (anyio.current_time() - started), 0)
            if speed
            else 0.0,
        )
        await response(scope, receive, send)

    async def _record(
        self, tape: Tape, scope: Scope, body: bytes, receive: Receive, send: Send
    ) -> None:
        tapes = self.mock.tapes
        assert tapes is not None
        scope["state"]["rule"] = f"recorded to {tape.cassette.name}"
        forwarder = Forwarder(tapes.upstream, key=_key_for(self.mock, scope["path"]))
        recording = recording_for(scope, body, lambda i: tapes.add(tape, i), tapes.redaction)
        dialect = self.mock.dialect_for(scope["path"])
        await forward_or_502(forwarder, dialect, scope, body, receive, send, [recording])


def _key_for(mock: Mock, path: str) -> str | None:
    from mockserver.recorder import upstream_key

    return upstream_key(mock.dialect_for(path))


def tapes_for(settings: Settings, mounts: tuple[tuple[str, Dialect], ...]) -> Tapes | None:
    """The server's cassettes, when it has a folder of them; the upstream defaults to the
    provider's own URL (of the one dialect served, else DeepSeek's)."""
    if settings.cassettes is None:
        return None
    if not 0 <= settings.replay_speed <= 1000:
        raise ValueError("replay_speed must be from 0 (as fast as possible) to 1000")
    dialect = mounts[0][1] if len(mounts) == 1 else DIALECTS["deepseek"]
    return Tapes(
        settings.cassettes,
        mode=settings.record_mode,
        default=settings.cassette,
        ignore=settings.match_ignore,
        upstream=settings.upstream or dialect.live_base_url,
        dialect=settings.dialect,
    )
