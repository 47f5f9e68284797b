"""The record of what crossed the wire: every exchange, including rejected, failed and cut-off
ones, written before the response is finished. Secrets never enter it."""

from __future__ import annotations

import asyncio
import base64
import builtins
import codecs
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.nesting import MAX_BODY_DEPTH, deeper_than, may_be_deeper_than

if TYPE_CHECKING:
    from mockserver.state import JournalBook

log = logging.getLogger("mockserver")
SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"}
)
SECRET_PARAMS = frozenset({"api_key", "key", "token", "access_token"})
# What one entry keeps, and what the whole journal may hold: a client that sends megabytes of
# headers or body cannot grow the server's memory through its record.
BODY_KEEP = 64 * 1024  # request body bytes kept per entry, and response body bytes
FRAMES_HEAD = 512  # stream frames kept from the start of a stream...
FRAMES_TAIL = 64  # ...and from its end, where it was cut: the frames between are counted only
HEADER_VALUE_KEEP = 4 * 1024  # characters kept of one header value, then a marker
HEADERS_KEEP = 32 * 1024  # characters of header names and values kept per entry
JOURNAL_BYTES = 32 * 1024 * 1024  # all entries together; the oldest go first
ENTRY_OVERHEAD = 512  # an entry's own fields, roughly
FRAME_COST = 128  # one kept frame, roughly
# Open exchanges that keep their response as it is written (its body and frames, up to ~100 KiB
# each): past this many at once, an exchange is journaled without them, so 10,000 open streams
# cost the journal what 256 do. An answer copied from its template is kept as indexes into
# it, which costs next to nothing: those are kept, however many, and not counted.
CAPTURING_MAX = 256
ADMIN_PREFIX = "/__mock/"
REDACTED_SETS = 64  # header sets kept redacted; past it, the memory starts again
# What a stream frame was. Told apart by its first bytes, so a frame costs a find and a few
# prefix tests, never a parse.
DATA, KEEP_ALIVE, DONE, ERROR, PARTIAL = "data", "keep-alive", "[DONE]", "error", "partial"
FRAME_KINDS = (DATA, KEEP_ALIVE, DONE, ERROR, PARTIAL)  # partial: the stream ended mid-frame
_KIND_BYTES = 16  # enough of a frame's start to tell its kind


def fingerprint(secret: str) -> str:
    """At most the last four characters, so two keys can be told apart and none recovered."""
    secret = secret.strip()
    if secret.lower().startswith("bearer "):
        secret = secret[7:].strip()
    return "…" + secret[-4:] if len(secret) >= 12 else "…"


def cut(value: str, keep: int) -> str:
    """`value` whole, or its first `keep` characters and a marker saying how much was left."""
    return value if len(value) <= keep else f"{value[:keep]}…[{len(value) - keep} more bytes]"


def redact_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[dict[str, str], bool]:
    """The headers as kept (secrets fingerprinted, long values cut, at most HEADERS_KEEP in
    all), and whether anything was cut."""
    headers = headers if isinstance(headers, list | tuple) else list(headers)
    # The usual case, every request: nothing to cut, so one pass in C and the secrets after.
    # (A fingerprint may be a few characters longer than an empty secret: hence the margin.)
    if sum(map(len, itertools.chain.from_iterable(headers))) + 64 <= HEADERS_KEEP and all(
        len(value) <= HEADER_VALUE_KEEP for _, value in headers
    ):
        kept = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers}
        for name in SECRET_HEADERS.intersection(kept):
            kept[name] = fingerprint(kept[name])
        return kept, False
    out: dict[str, str] = {}
    room = HEADERS_KEEP
    dropped = 0
    cut_any = False
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if room <= 0:
            dropped += 1
            continue
        value = raw_value.decode("latin-1")
        if name in SECRET_HEADERS:
            value = fingerprint(value)
        elif len(value) > HEADER_VALUE_KEEP:
            value = cut(value, HEADER_VALUE_KEEP)
            cut_any = True
        out[name] = value
        room -= len(name) + len(value)
    if dropped:
        out["…"] = f"[{dropped} more headers]"
    return out, cut_any or dropped > 0


def utf8(data: bytes, *, cut: bool) -> str:
    """`data` as text, bad bytes replaced. `cut`: the bytes are the start of longer ones, so
    a character split at their end is left out rather than shown as a replacement."""
    if not cut:
        return data.decode("utf-8", errors="replace")
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=False)


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, fingerprint(v) if k.lower() in SECRET_PARAMS else v) for k, v in pairs])


@dataclass(slots=True, kw_only=True)
class Entry:
    method: str
    path: str
    query: str = ""
    dialect: str | None = None
    rule: str | None = None
    status: int | None = None  # None: no response started (the client left first)
    stream: bool = False
    complete: bool = False  # the last byte went out (False: reset, stalled or disconnected)
    bytes: int = 0
    started: float = 0.0
    ttfb_ms: float | None = None
    elapsed_ms: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: builtins.bytes = b""  # at most BODY_KEEP bytes of it
    body_bytes: int = 0  # how many the client sent
    truncated: bool = False  # a header or the body was cut before it was kept
    seq: int = 0  # given by the journal when it records the entry
    # The response side. Plain JSON values only: what `to_json` writes can be read back.
    fault: str | None = None  # the delivery fault asked of the answer, in --fault words
    response_headers: dict[str, str] = field(default_factory=dict)
    # Its first BODY_KEEP bytes as UTF-8: bad bytes replaced, a character cut at the end left out.
    response_body: str = ""
    # A stream's frames as they left: (ms from the request's start, bytes, kind), the first
    # FRAMES_HEAD and the last FRAMES_TAIL; kind is one of FRAME_KINDS.
    frames: list[tuple[float, int, str]] = field(default_factory=list)
    frames_dropped: int = 0  # frames between the head and the tail, not kept
    response_kept: bool = True  # False: more than CAPTURING_MAX exchanges were open at once
    # The response's writes, not yet read into `response_body` and `frames` (`settle`): the
    # journal's readers settle what they hand out, so nothing outside this module sees one.
    capture: Capture | None = field(default=None, repr=False, compare=False)
    # The response's headers as they left, not yet redacted into `response_headers`: they
    # carry a fresh trace id every time, so no two sets are alike to redact once for all.
    raw_response_headers: list[tuple[builtins.bytes, builtins.bytes]] | None = field(
        default=None, repr=False, compare=False
    )

    def settle(self) -> None:
        """Read a kept response into `response_body`, `frames` and `frames_dropped`, and
        its headers into `response_headers`."""
        capture = self.capture
        if capture is not None:
            self.response_body, self.frames, self.frames_dropped = capture.read()
            self.capture = None
        raw = self.raw_response_headers
        if raw is not None:
            self.response_headers = redact_headers(raw)[0]
            self.raw_response_headers = None

    @property
    def json(self) -> Any:
        """The request body as JSON, or None when it was not JSON."""
        try:
            value = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None
        # Deeper than a request may be, it could not be written back out: show it as text.
        too_deep = may_be_deeper_than(self.body, MAX_BODY_DEPTH) and deeper_than(
            value, MAX_BODY_DEPTH
        )
        return None if too_deep else value

    def to_json(self) -> dict[str, Any]:
        self.settle()
        data = asdict(self)
        del data["capture"], data["raw_response_headers"]
        body = data.pop("body")
        data["request"] = {
            "headers": data.pop("headers"),
            "json": self.json,
            "body_bytes": data.pop("body_bytes"),
            "truncated": data.pop("truncated") or len(body) < self.body_bytes,
        }
        if data["request"]["json"] is None and body:
            data["request"]["text"] = utf8(body[:1024], cut=len(body) > 1024)
        data["response"] = {
            "headers": data.pop("response_headers"),
            "body": data.pop("response_body"),
            "truncated": self.bytes > BODY_KEEP or not self.response_kept,
            "kept": data.pop("response_kept"),
            "frames": data.pop("frames"),
            "frames_dropped": data.pop("frames_dropped"),
        }
        return data


class Batch(NamedTuple):
    """What `Journal.read` returns."""

    cursor: int  # pass it to the next read
    cleared: bool  # the journal was emptied after the cursor the read was given
    entries: list[Entry]  # recorded after that cursor (after the clear, if cleared), oldest first


ENTRY_FIELDS = frozenset(f.name for f in fields(Entry)) - {"capture", "raw_response_headers"}


class Journal:
    """Bounded (oldest dropped first), thread-safe, and waitable so tests never sleep."""

    def __init__(self, size: int = 1000, max_bytes: int = JOURNAL_BYTES) -> None:
        self._entries: deque[Entry] = deque()
        self._costs: deque[int] = deque()  # each kept entry's entry_cost, in the same order
        self._size = size
        self._max_bytes = max_bytes
        self.bytes = 0  # what the kept entries hold, roughly
        self._changed = threading.Condition()
        # The cursor: records and clears since the journal was made. A record's number is its
        # entry's `seq`, so numbers are never reused, even across a clear.
        self._cursor = 0
        self._recorded = 0  # since the last clear: what wait_for counts, kept or dropped
        self._cleared_at = 0  # the cursor of the last clear

    async def arecord(self, entry: Entry) -> None:
        """`record`, for the request path (a shared store waits for Redis without blocking)."""
        self.record(entry)

    def record(self, entry: Entry) -> None:
        """Keep `entry`, numbered in the order of recording (numbers are never reused)."""
        with self._changed:
            self._cursor += 1
            entry.seq = self._cursor
            cost = entry_cost(entry)
            self._entries.append(entry)
            self._costs.append(cost)
            self.bytes += cost
            while len(self._entries) > 1 and (
                len(self._entries) > self._size or self.bytes > self._max_bytes
            ):
                self._entries.popleft()
                self.bytes -= self._costs.popleft()
            self._recorded += 1
            self._changed.notify_all()

    def entries(self) -> list[Entry]:
        with self._changed:
            return settled(self._entries)

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
            self._costs.clear()
            self.bytes = 0
            self._recorded = 0
            self._cursor += 1
            self._cleared_at = self._cursor
            self._changed.notify_all()

    def read(self, after: int, timeout: float) -> Batch:
        """What was recorded after cursor `after`, waiting up to `timeout` seconds for it: how
        a live reader follows the journal (start from 0, pass back the cursor it gets).

        The cursor counts the journal's events, each record and each clear, from 0 when the
        journal is made; a clear moves it on too, so it never repeats or goes back. A clear
        reaches the reader as `cleared=True`: drop what it has, then add `entries` (those
        recorded since the clear). Nothing new within `timeout`: `(after, False, [])`. An
        `after` beyond the cursor (one from an earlier server) reads as a clear, at once.
        Entries the journal dropped for room before they were read are skipped.

        The shared store implements the same contract (`RedisJournal.read`).
        """
        with self._changed:
            if after > self._cursor:
                return Batch(self._cursor, True, settled(self._entries))
            if not self._changed.wait_for(lambda: self._cursor > after, timeout):
                return Batch(after, False, [])
            new: list[Entry] = []
            for entry in reversed(self._entries):
                if entry.seq <= after:
                    break
                new.append(entry)
            new.reverse()
            return Batch(self._cursor, self._cleared_at > after, settled(new))

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Entry]:
        """Block until at least `count` exchanges have been recorded since the last clear, and
        return the entries kept (the newest `size` of them, when more were recorded than the
        journal keeps); AssertionError after `timeout`."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._recorded >= count, timeout):
                raise waited_in_vain(self._recorded, count, timeout)
            return settled(self._entries)


def waited_in_vain(recorded: int, count: int, timeout: float) -> AssertionError:
    """What `wait_for` raises, in every store."""
    exchanges = "exchange" if recorded == 1 else "exchanges"
    return AssertionError(
        f"journal has recorded {recorded} {exchanges}, expected {count} within {timeout:g} s"
    )


def settled(entries: Iterable[Entry]) -> list[Entry]:
    """`entries` as a list, each read in (`Entry.settle`) first."""
    out = list(entries)
    for entry in out:
        entry.settle()
    return out


def dump_entry(entry: Entry) -> bytes:
    """An entry as JSON, whole (the body as base64), for a store outside this process."""
    entry.settle()
    data = {name: getattr(entry, name) for name in ENTRY_FIELDS}
    data["body"] = base64.b64encode(entry.body).decode()
    return orjson.dumps(data)


def load_entry(raw: builtins.bytes) -> Entry:
    """The inverse of `dump_entry`."""
    return entry_from_data(orjson.loads(raw))


def entry_from_data(data: dict[str, Any]) -> Entry:
    """An entry from `dump_entry`'s JSON, parsed; fields this version does not know are left
    out."""
    data = {name: data[name] for name in ENTRY_FIELDS if name in data}
    data["body"] = base64.b64decode(data.get("body", ""))
    data["frames"] = [tuple(frame) for frame in data.get("frames", ())]
    return Entry(**data)


def entry_cost(entry: Entry) -> int:
    # Twice per request (kept, then dropped): sums in C, not a generator per header.
    headers = sum(map(len, entry.headers)) + sum(map(len, entry.headers.values()))
    answer = sum(map(len, entry.response_headers)) + sum(map(len, entry.response_headers.values()))
    if entry.raw_response_headers is not None:
        answer += sum(map(len, itertools.chain.from_iterable(entry.raw_response_headers)))
    answer += len(entry.response_body) + FRAME_COST * len(entry.frames)
    if entry.capture is not None:
        answer += entry.capture.cost
    return ENTRY_OVERHEAD + len(entry.body) + len(entry.query) + headers + answer


def frame_kind(chunk: bytes, start: int = 0) -> str:
    """The kind of the frame that begins at `chunk[start]` (without copying it)."""
    if chunk.startswith(b"data: ", start):
        if chunk.startswith(b"[DONE]", start + 6):
            return DONE
        return ERROR if chunk.startswith(b'{"error"', start + 6) else DATA
    if chunk.startswith((b":", b"event: ping"), start):  # an SSE comment, or Anthropic's ping
        return KEEP_ALIVE
    return ERROR if chunk.startswith(b"event: error", start) else DATA


class FrameLog:
    """A stream's frames as they are written, split at their blank lines (a frame may come in
    several writes, a write may hold many frames), at the least cost on the hot path: the
    first `limit` frames one by one (a memchr find, a few byte tests and an append each); after
    those, only a count made in C and the last few writes kept whole, which become the tail's
    frames when the log is read. Nothing is formatted until then."""

    __slots__ = (
        "_late",
        "_late_kept",
        "_late_nl",
        "_late_popped",
        "_late_total",
        "_limit",
        "_open_at",
        "_open_nl",
        "_open_size",
        "_open_start",
        "dropped",
        "head",
    )

    def __init__(self, limit: int = FRAMES_HEAD) -> None:
        self.head: list[tuple[float, int, str]] = []
        self._limit = limit
        self.dropped = 0  # frames between the head and the tail (known once read)
        # A frame begun in one write and not yet ended: its first bytes (to tell its kind),
        # whether its last byte is a newline (a blank line split between writes), its size
        # so far, and when its first byte left.
        self._open_start = b""
        self._open_nl = False
        self._open_size = 0
        self._open_at = 0.0
        # Once the head is full: the last writes (each with the frames that end in it), enough
        # for FRAMES_TAIL frames and two more, and how many frames ended after the head.
        self._late: deque[tuple[float, bytes, int]] = deque()
        self._late_kept = 0
        self._late_total = 0
        self._late_nl = False
        self._late_popped = False

    def write(self, chunk: bytes, at_ms: float, ends: int | None = None) -> None:
        """`ends`: how many frames end in `chunk` (the blank lines in it), when the caller
        knows."""
        head = self.head
        if len(head) >= self._limit:
            self._write_late(chunk, at_ms, ends)
            return
        start = pos = 0
        size = len(chunk)
        if self._open_size:
            if self._open_nl and chunk.startswith(b"\n"):
                start = 1
            elif (found := chunk.find(b"\n\n")) != -1:
                start = found + 2
            else:
                self._grow(chunk, 0)
                return
            kind = frame_kind(self._open_start + chunk[:_KIND_BYTES])
            head.append((self._open_at, self._open_size + start, kind))
            self._open_size = 0
            pos = start
        find, limit = chunk.find, self._limit
        # A newline is found with memchr, far faster than a two-byte search; most frames are
        # one line, so this is one find per frame.
        while len(head) < limit and (found := find(b"\n", pos)) != -1:
            pos = found + 1
            if pos == size or chunk[pos] != 10:
                continue  # a line of a frame, not its end (or the write ends inside it)
            pos += 1
            # The usual frame, `data: {"id"...`, told by three bytes; anything else is looked
            # at more closely.
            if pos - start > 16 and chunk[start] == 100 and chunk[start + 6] == 123:
                kind = DATA if chunk[start + 8] != 101 else frame_kind(chunk, start)
            else:
                kind = frame_kind(chunk, start)
            head.append((at_ms, pos - start, kind))
            start = pos
        if start == size:
            return
        if len(head) >= limit:
            self._write_late(chunk[start:], at_ms)
            return
        self._open_start = b""
        self._open_at = at_ms
        self._grow(chunk, start)

    def _grow(self, chunk: bytes, start: int) -> None:
        self._open_size += len(chunk) - start
        if len(self._open_start) < _KIND_BYTES:
            self._open_start += chunk[start : start + _KIND_BYTES - len(self._open_start)]
        self._open_nl = chunk.endswith(b"\n")

    def _write_late(self, chunk: bytes, at_ms: float, ends: int | None = None) -> None:
        ended = chunk.count(b"\n\n") if ends is None else ends
        if self._late_nl and chunk.startswith(b"\n"):
            ended += 1  # the blank line was split between the writes
        self._late_nl = chunk.endswith(b"\n")
        self._late_total += ended
        self._late.append((at_ms, chunk, ended))
        self._late_kept += ended
        # Two to spare: the first kept write may end a frame whose start is gone, and may
        # begin one.
        while self._late_kept - self._late[0][2] > FRAMES_TAIL + 1:
            self._late_kept -= self._late.popleft()[2]
            self._late_popped = True

    def frames(self) -> list[tuple[float, int, str]]:
        """Every kept frame, oldest first (and `dropped` set); a frame still open at the end
        is `partial`."""
        frames = list(self.head)
        last = self
        if self._late:
            last = FrameLog(limit=len(self._late) + self._late_kept + 1)
            for at_ms, chunk, _ in self._late:
                last.write(chunk, at_ms)
            # The first kept write may begin inside a frame whose start is gone.
            tail = last.head[1:] if self._late_popped else last.head
            tail = tail[-FRAMES_TAIL:]
            self.dropped = self._late_total - len(tail)
            frames += tail
        if last._open_size:
            frames.append((last._open_at, last._open_size, PARTIAL))
        return frames


# A response's writes kept as they are, up to this many bytes; past it, they are read as they
# come (a long stream, a big body): what one open exchange holds stays bounded either way.
LAZY_BYTES = 128 * 1024


class Reproducible(Protocol):
    """Where a response's writes come from, when each can be made again byte for byte (an
    answer copied from its template): the endpoint leaves it in the scope's state as "copy"."""

    def index_of(self, chunk: bytes) -> int | None:
        """Which of its writes `chunk` is, or None when it is not one of them."""

    def again(self, index: int) -> bytes:
        """That write once more."""

    def ends_in(self, index: int) -> int:
        """How many frames end in that write (the blank lines in it), without searching it."""


class Capture:
    """A response's writes as they left. Most entries are never read, so the request path only
    keeps each write (one copy, or only its index when `copy` can make it again), and the body
    text and the frames are made when the entry is read; a response bigger than LAZY_BYTES is
    read as it goes, as it always was."""

    __slots__ = ("_body", "_copy", "_log", "_size", "stream", "writes")

    def __init__(self, stream: bool, copy: Reproducible | None = None) -> None:
        self.stream = stream  # whether its frames are kept (a stream answered with 200)
        self.writes: list[tuple[float, bytes | int]] = []  # int: the copy's write of that index
        self._copy = copy
        self._size = 0
        self._body = bytearray()  # once read as it goes: its first BODY_KEEP bytes
        self._log: FrameLog | None = None

    def add(self, chunk: bytes, at_ms: float) -> None:
        copy = self._copy
        index = None if copy is None else copy.index_of(chunk)
        if self._log is None and self._size + len(chunk) <= LAZY_BYTES:
            # Else a copy of its exact size: orjson's output holds a buffer of 8 KiB or more,
            # which a thousand kept answers would otherwise pin.
            self.writes.append((at_ms, bytes(memoryview(chunk)) if index is None else index))
            self._size += len(chunk)
            return
        if self._log is None:
            self._log = FrameLog()
            for before, earlier in self._written():
                self._take(earlier, before)
            self.writes = []
        self._take(chunk, at_ms, None if index is None or copy is None else copy.ends_in(index))

    def _written(self) -> Iterator[tuple[float, bytes]]:
        copy = self._copy
        for at_ms, write in self.writes:
            if isinstance(write, int):
                assert copy is not None  # an index is only ever kept for a copy
                yield at_ms, copy.again(write)
            else:
                yield at_ms, write

    def _take(self, chunk: bytes, at_ms: float, ends: int | None = None) -> None:
        body = self._body
        if len(body) < BODY_KEEP:
            body.extend(chunk[: BODY_KEEP - len(body)])
        if self.stream and chunk and self._log is not None:
            self._log.write(chunk, at_ms, ends)

    @property
    def cost(self) -> int:
        """What reading it in will keep, roughly (a frame per ~250 bytes of a stream)."""
        kept = min(self._size, BODY_KEEP) if self._log is None else len(self._body)
        return kept + (FRAME_COST * self._size // 250 if self.stream else 0)

    def read(self) -> tuple[str, list[tuple[float, int, str]], int]:
        """The body's first BODY_KEEP bytes as text, the frames, and how many were dropped."""
        log = self._log
        if log is None:
            writes = list(self._written())
            body = b"".join(chunk for _, chunk in writes)[:BODY_KEEP]
            log = FrameLog()
            if self.stream:
                for at_ms, chunk in writes:
                    if chunk:
                        log.write(chunk, at_ms)
        else:
            body = bytes(self._body)
        frames = log.frames() if self.stream else []
        return utf8(body, cut=len(body) >= BODY_KEEP), frames, log.dropped


class JournalMiddleware:
    """Wraps receive/send, so what is recorded is what really crossed the wire."""

    def __init__(
        self,
        app: ASGIApp,
        journal: JournalBook | None = None,
        *,
        journal_for: Callable[[Scope], JournalBook] | None = None,
        unavailable: tuple[type[BaseException], ...] = (),
    ) -> None:
        """One journal for every exchange, or `journal_for(scope)`: the journal of the
        request's namespace. `unavailable`: the errors of a shared store that cannot be
        reached, which cost the exchange its entry (said in the log) and nothing else."""
        self.app = app
        self.unavailable = unavailable
        if journal_for is None:
            if journal is None:
                raise TypeError("JournalMiddleware needs a journal or journal_for")
            only = journal

            def journal_for(scope: Scope) -> JournalBook:
                return only

        self.journal_for = journal_for
        self.capturing = 0  # open exchanges keeping their response (one event loop: no lock)
        # A client sends the same headers request after request: each set redacted once.
        self._redacted: dict[tuple[tuple[bytes, bytes], ...], tuple[dict[str, str], bool]] = {}

    def redacted(self, raw: list[tuple[bytes, bytes]]) -> tuple[dict[str, str], bool]:
        """`redact_headers(raw)`, from the last few sets seen (a copy: entries never share)."""
        key = tuple(raw)
        found = self._redacted.get(key)
        if found is None:
            if len(self._redacted) >= REDACTED_SETS:
                self._redacted.clear()
            found = self._redacted[key] = redact_headers(raw)
        return dict(found[0]), found[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The admin API is how tests read the journal: recording it would only add noise.
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.time()
        clock = time.perf_counter()
        headers, truncated = self.redacted(scope["headers"])
        raw = scope.get("query_string")
        journal = self.journal_for(scope)
        entry = Entry(
            method=scope["method"],
            path=scope["path"],
            query=cut(redact_query(raw.decode("latin-1")), HEADER_VALUE_KEEP) if raw else "",
            headers=headers,
            started=started,
            truncated=truncated,
        )
        body: bytes | bytearray = b""
        kept: Capture | None = None  # the response, once it has started (and is kept)
        counted = False  # kept, and counted against CAPTURING_MAX
        recorded = False

        async def finish() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            self.capturing -= counted
            state = scope.get("state") or {}
            entry.dialect = state.get("dialect")
            entry.rule = state.get("rule")
            entry.fault = state.get("fault")
            entry.stream = bool(state.get("stream", False))
            entry.body = body if isinstance(body, bytes) else bytes(body)
            entry.capture = kept
            entry.elapsed_ms = (time.perf_counter() - clock) * 1000
            try:
                await journal.arecord(entry)
            except self.unavailable as exc:
                # The answer is the client's all the same: a stream still gets its last
                # bytes, which are sent after this.
                log.warning(
                    "journal: %s %s (status %s) not recorded: the shared state is unreachable: %s",
                    entry.method,
                    entry.path,
                    entry.status,
                    exc,
                )

        async def receiving() -> Message:
            nonlocal body
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                entry.body_bytes += len(chunk)
                if len(body) < BODY_KEEP:
                    piece = chunk[: BODY_KEEP - len(body)]
                    if not body and type(piece) is bytes:
                        # The usual case, a body in one message: kept as it came (the
                        # endpoint holds the same object), not copied.
                        body = piece
                    else:
                        if type(body) is bytes:
                            body = bytearray(body)
                        body += piece
            return message

        async def sending(message: Message) -> None:
            nonlocal kept, counted
            if message["type"] == "http.response.start":
                entry.status = message["status"]
                entry.ttfb_ms = (time.perf_counter() - clock) * 1000
                entry.raw_response_headers = list(message.get("headers", ()))
                state = scope.get("state") or {}
                copy: Reproducible | None = state.get("copy")
                # A copy's capture holds indexes, not bytes: it costs nothing to keep while
                # open, so only the others count against the cap.
                counted = copy is None and self.capturing < CAPTURING_MAX
                entry.response_kept = copy is not None or counted
                self.capturing += counted
                if entry.response_kept:
                    stream = bool(entry.status == 200 and state.get("stream"))
                    kept = Capture(stream=stream, copy=copy)
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                entry.bytes += len(chunk)
                if kept is not None:
                    kept.add(chunk, (time.perf_counter() - clock) * 1000)
                if not message.get("more_body", False):
                    # Recorded before the last byte leaves: a client that has its answer can
                    # read the journal at once.
                    entry.complete = True
                    await finish()
            try:
                await send(message)
            except BaseException:
                entry.complete = False  # the client was gone before the last byte
                raise

        try:
            await self.app(scope, receiving, sending)
        finally:
            if not recorded:
                # Shielded: a handler cancelled (its client gone, a shutdown) still leaves its
                # exchange in the journal.
                await asyncio.shield(finish())
