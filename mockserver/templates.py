"""Answers rendered once and copied per request, with the request's own id and time put in.

A test suite or a load test asks the same thing again and again, and the mock answers it the
same way each time except for the completion's id and creation time. Building the answer (the
completion, then its JSON body or its stream's frames, a JSON dump per token) costs more than
everything else a request does. So an answer asked for a second time is rendered once more with
stand-ins for the id and the time, and kept; from then on a request copies its bytes and puts
its own id and time in, one C-level replace per write.

What may be kept is decided here, once, and proved on the spot: the stand-in rendering, with
the real id and time put back in, must equal the real rendering byte for byte, or nothing is
kept for that answer. A template is only offered for answers whose bytes depend on nothing but
its key (`key`): the validated request (by identity: the validated cache hands out one object
per body), the reply, the answer's shape (which dialect and kind), the prompt-cache hit and
the model. The caller keeps out what is drawn per answer (tool call ids) and what is timed or
checked per answer (delivery faults, pacing, `self_check`).
"""

from __future__ import annotations

import dataclasses
import operator
import re
import secrets
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from mockserver.caches import ByteBoundedCache
from mockserver.responder import Completion

# Stand-ins no answer contains by accident (random per process, checked on every build): an
# id as long as a UUID, and a time as many digits as today's Unix time.
ID_MARK = "mockid" + secrets.token_hex(15)
CREATED_MARK = 3_000_000_000 + secrets.randbelow(999_999_999)
_ID = ID_MARK.encode()
_CREATED = str(CREATED_MARK).encode()

# All templates together, and one alone: a 10,000-token stream is ~2.5 MB of frames.
TEMPLATE_CACHE_BYTES = 16 * 1024 * 1024
TEMPLATE_MAX_BYTES = 4 * 1024 * 1024
# Answers seen once and not (yet) kept: a body that never repeats costs one small entry.
SIGHTINGS = 4096


# One write of a template: the write as a %-format with a `%b` where each stand-in was, and
# what picks the values for them, in order, from (id, time). A write without stand-ins is
# kept as it is, with no picker.
Write = tuple[bytes, Callable[[tuple[bytes, bytes]], tuple[bytes, ...]] | None]
# Split on either stand-in, keeping it: text, stand-in, text, ... in one pass in C.
_MARKS = re.compile(b"(" + re.escape(_ID) + b"|" + re.escape(_CREATED) + b")")
_ORDER = {_ID: 0, _CREATED: 1}


def _formatted(write: bytes) -> Write:
    """`write` ready to be filled in: bytes' % formatting is one pass in C, four times
    faster than a replace per stand-in."""
    parts = _MARKS.split(write)
    if len(parts) == 1:
        return write, None
    order = tuple(map(_ORDER.__getitem__, parts[1::2]))
    pattern = b"%b".join([text.replace(b"%", b"%%") for text in parts[0::2]])
    if len(order) == 1:
        one = order[0]
        return pattern, lambda values: (values[one],)
    return pattern, operator.itemgetter(*order)


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """One answer's bytes with the stand-ins in: the JSON body, or the stream's writes (its
    frames joined the way delivery joins them)."""

    owners: tuple[object, ...]  # what the key names by identity, held so no id is reused
    completion: Completion  # with the stand-ins: what headers and the balance read
    writes: tuple[Write, ...]
    size: int
    # How many frames end in each write (its blank lines, `\n\n`): the same in every copy,
    # since an id and a time hold no newline. The journal counts a long stream's frames
    # from these instead of searching every write of every copy (~1 ns a byte).
    ends: tuple[int, ...]

    def render(self, completion_id: str, created: int) -> Copy:
        """The writes with `completion_id` and `created` put in, each made when it is asked
        for: a thousand open streams hold one write each, not their whole answers."""
        return Copy(self, (completion_id.encode(), str(created).encode()))

    def write(self, index: int, values: tuple[bytes, bytes]) -> bytes:
        pattern, pick = self.writes[index]
        return pattern if pick is None else pattern % pick(values)


class Copy:
    """One answer's writes from its template, made one at a time. Each can be made again
    (`again`), so the journal keeps the copy and the write's index, not the bytes: a load
    test's thousand journaled streams would otherwise hold ~20 MiB of frames that the
    template already holds."""

    __slots__ = ("_last", "_next", "template", "values")

    def __init__(self, template: Template, values: tuple[bytes, bytes]) -> None:
        self.template = template
        self.values = values
        self._next = 0
        self._last: bytes | None = None

    def __iter__(self) -> Copy:
        return self

    def __next__(self) -> bytes:
        index = self._next
        if index >= len(self.template.writes):
            raise StopIteration
        self._next = index + 1
        self._last = write = self.template.write(index, self.values)
        return write

    def index_of(self, chunk: bytes) -> int | None:
        """The index of `chunk` if it is the very object this copy made last (and then lets
        go of it): bytes that only look the same may come from anywhere."""
        if chunk is not self._last:
            return None
        self._last = None
        return self._next - 1

    def again(self, index: int) -> bytes:
        return self.template.write(index, self.values)

    def ends_in(self, index: int) -> int:
        return self.template.ends[index]


def marked(completion: Completion) -> Completion:
    """`completion` with the stand-ins for its id and time."""
    return dataclasses.replace(completion, id=ID_MARK, created=CREATED_MARK)


def key(*owners: object, extra: Hashable = None) -> tuple[Hashable, ...]:
    """A template's key: the identities of `owners` (kept alive by the template) and `extra`
    (plain values)."""
    return (*map(id, owners), extra)


class Templates:
    """Thread-safe; `clear()` on reset."""

    def __init__(
        self, max_bytes: int = TEMPLATE_CACHE_BYTES, max_one: int = TEMPLATE_MAX_BYTES
    ) -> None:
        self._kept: ByteBoundedCache[tuple[Hashable, ...], Template] = ByteBoundedCache(
            max_bytes, lambda _, template: 512 + template.size
        )
        self._max_one = max_one
        self._seen: dict[tuple[Hashable, ...], None] = {}
        self._refused: dict[tuple[Hashable, ...], None] = {}  # failed the proof: never again
        self._lock = threading.Lock()

    def find(self, at: tuple[Hashable, ...], owners: tuple[object, ...]) -> Template | None:
        found = self._kept.get(at)
        if found is None or len(found.owners) != len(owners):
            return None
        # An id can be reused once its object is gone; the template holds its owners, so a
        # match by identity here is the same objects.
        if all(a is b for a, b in zip(found.owners, owners, strict=True)):
            return found
        return None

    def wanted(self, at: tuple[Hashable, ...]) -> bool:
        """Whether to build a template for this answer now: on its second sighting."""
        with self._lock:
            if at in self._refused:
                return False
            if at in self._seen:
                del self._seen[at]
                return True
            self._seen[at] = None
            if len(self._seen) > SIGHTINGS:
                del self._seen[next(iter(self._seen))]
            return False

    def build(
        self,
        at: tuple[Hashable, ...],
        owners: tuple[object, ...],
        completion: Completion,
        real: list[bytes],
        write: Callable[[Completion], list[bytes]],
    ) -> Template | None:
        """Keep `write(marked(completion))` if, with `completion`'s id and time put back, it
        is `real` (what `write(completion)` gave) byte for byte."""
        if sum(map(len, real)) > self._max_one:
            return None
        stand_in = marked(completion)
        # Exact-size copies: orjson's output holds a buffer of 8 KiB or more.
        writes = tuple(_formatted(bytes(memoryview(part))) for part in write(stand_in))
        # Counted on the real answer, which the template is proved to give byte for byte.
        ends = tuple(part.count(b"\n\n") for part in real)
        template = Template(owners, stand_in, writes, sum(len(part) for part, _ in writes), ends)
        if list(template.render(completion.id, completion.created)) != real:
            self.refuse(at)
            return None
        self._kept.put(at, template)
        return template

    def refuse(self, at: tuple[Hashable, ...]) -> None:
        """Never keep this answer (it failed the proof, or its own checks)."""
        with self._lock:
            self._refused[at] = None
            if len(self._refused) > SIGHTINGS:
                del self._refused[next(iter(self._refused))]

    def clear(self) -> None:
        self._kept.clear()
        with self._lock:
            self._seen.clear()
            self._refused.clear()

    def __len__(self) -> int:
        return len(self._kept)
