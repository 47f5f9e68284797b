"""How the bytes of an answer reach the client: whole and at once by default, or paced,
queued behind keep-alives, cut, reset or stalled.

The frames are decided before delivery starts; delivery only decides *when* (and whether)
each one is written. That keeps every fault a transform of a finished byte sequence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import random
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import anyio

# When nothing asks for pacing, frames go out joined into writes of about this size: the same
# bytes in fewer sends. Each send costs the server about as much as making the frames in it
# (on loopback the kernel delivers to the client inside the send), so a 100-token stream (~30 KB
# of DeepSeek frames) in one write lets a core serve ~1.5 times the streams it did at 16
# frames per send (`make bench`, run I). Half of the 64 KiB a transport buffers before it
# pauses the writer (uvicorn then waits for a slow reader), so a write alone never reaches
# it; yielding to the loop between writes keeps other streams moving.
WRITE_BYTES = 32 * 1024
MAX_SECONDS = 3600.0  # an hour: longer than any client waits, short enough to end on its own


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """Timing and delivery faults. `Delivery()` means instant and whole."""

    first_byte: float = 0.0  # seconds before the first frame (time to first token)
    gap: float = 0.0  # seconds between frames
    gap_sigma: float = 0.0  # > 0: each gap is lognormal around `gap` with this sigma (seeded)
    gap_cap: float | None = None  # upper bound for a drawn gap
    tokens_per_second: float | None = None  # a pace for the whole stream; overrides `gap`
    keep_alives: int = 0  # ": keep-alive" lines (stream) or blank lines (JSON) before the answer
    keep_alive_interval: float = 0.0  # seconds between those lines
    cut_after: int | None = None  # frames written before the response stops
    reset: bool = False  # at the cut, break the connection instead of ending cleanly
    stall_after: int | None = None  # frames written before the server goes silent (headers sent)
    # Broken content, for streams (frame N counts from 0, keep-alives excluded):
    malformed_at: int | None = None  # frame N is cut mid-JSON
    error_at: int | None = None  # frame N is an in-band error event; nothing follows
    duplicate_done: bool = False  # `data: [DONE]` twice
    body: str | None = None  # the whole body replaced by this text, e.g. "" or "  \n" (status 200)
    split_writes: bool = False  # each frame in several writes, cut inside UTF-8 characters

    def __post_init__(self) -> None:
        """Refuse what would crash or hang a response later: it is asked for up front."""
        for name in ("first_byte", "gap", "gap_sigma", "gap_cap", "keep_alive_interval"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_SECONDS):
                raise ValueError(f"{name} must be a number of seconds from 0 to {MAX_SECONDS:g}")
        tps = self.tokens_per_second
        if tps is not None and not (math.isfinite(tps) and tps > 0):
            raise ValueError("tokens_per_second must be a number above 0")
        for name in ("keep_alives", "cut_after", "stall_after", "malformed_at", "error_at"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a whole number from 0 up")

    @property
    def is_plain(self) -> bool:
        return self is PLAIN or self == PLAIN

    @property
    def paced(self) -> bool:
        return bool(self.gap or self.tokens_per_second)

    def gaps(self, rng: random.Random | None) -> float:
        """The pause before the next frame."""
        base = 1.0 / self.tokens_per_second if self.tokens_per_second else self.gap
        if self.gap_sigma > 0 and base > 0 and rng is not None:
            # lognormal with median `base`: mu = ln(base)
            base = rng.lognormvariate(math.log(base), self.gap_sigma)
        if self.gap_cap is not None:
            base = min(base, self.gap_cap)
        return base

    def merged(self, other: Delivery) -> Delivery:
        """`other`'s non-default fields win (a per-request header over a rule or server default)."""
        if other.is_plain:  # the usual case, on every request: nothing to merge
            return self
        if self.is_plain:
            return other
        changes = {
            name: getattr(other, name)
            for name in self.__dataclass_fields__
            if getattr(other, name) != getattr(PLAIN, name)
        }
        return Delivery(
            **{name: getattr(self, name) for name in self.__dataclass_fields__} | changes
        )


PLAIN = Delivery()


def hold_headers(how: Delivery) -> tuple[float, Delivery]:
    """The wait before the status line, and the delivery of the body after it.

    The first byte of an answer is its status line, so `first_byte` holds the headers back as
    well, unless keep-alives come first: those are written while the answer is queued, after
    the headers, as DeepSeek does."""
    if not how.first_byte or how.keep_alives:
        return 0.0, how
    return how.first_byte, dataclasses.replace(how, first_byte=0.0)


class ConnectionDropped(Exception):
    """Raised mid-body on purpose: the server then drops the connection without ending the
    chunked body, which clients see as a broken transfer."""


async def deliver(
    frames: Iterable[bytes], how: Delivery, *, keep_alive: bytes, rng: random.Random | None = None
) -> AsyncIterator[bytes]:
    """Write `frames` (produced lazily, as they are needed) the way `how` says."""
    for i in range(how.keep_alives):
        if i:
            await anyio.sleep(how.keep_alive_interval)
        yield keep_alive
    if how.keep_alives and how.keep_alive_interval:
        await anyio.sleep(how.keep_alive_interval)
    if how.first_byte:
        await anyio.sleep(how.first_byte)
    stops = [n for n in (how.cut_after, how.stall_after) if n is not None]
    source = iter(frames)
    limited = itertools.islice(source, min(stops)) if stops else source
    if how.split_writes or how.paced:
        deadline = anyio.current_time()
        for i, frame in enumerate(limited):
            if i and how.paced:
                # Against a running deadline, not gap after gap: late wake-ups do not add up.
                deadline += how.gaps(rng)
                await anyio.sleep(max(deadline - anyio.current_time(), 0))
            if how.split_writes:
                for piece in split_awkwardly(frame):
                    yield piece
                    await anyio.sleep(0)  # one write each: the pieces leave separately
            else:
                yield frame
    else:
        async for write in unpaced(batched(limited)):
            yield write
    if not stops or next(source, None) is None:
        return  # everything was sent: the cut or stall came after the end
    if how.stall_after is not None and (how.cut_after is None or how.stall_after <= how.cut_after):
        await anyio.sleep_forever()
    if how.reset:
        raise ConnectionDropped(f"connection reset after {how.cut_after} frames, as the rule asked")


def batched(frames: Iterable[bytes]) -> Iterator[bytes]:
    """Frames joined until a write holds WRITE_BYTES: the writes of a stream that nothing
    paces. Made one at a time, and a client that reads slowly holds the joined write, not its
    frames too."""
    pending: list[bytes] = []
    size = 0
    for frame in frames:
        pending.append(frame)
        size += len(frame)
        if size >= WRITE_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


async def unpaced(writes: Iterable[bytes]) -> AsyncIterator[bytes]:
    """`writes` as fast as the client takes them, letting other streams and requests in
    between them."""
    first = True
    for write in writes:
        if not first:
            # asyncio's own yield: anyio's looks up the running library first, which costs
            # more than the write. The server runs on asyncio (uvicorn), and a cancellation
            # still lands here.
            await asyncio.sleep(0)
        first = False
        yield write


def split_awkwardly(frame: bytes) -> list[bytes]:
    """A frame in pieces cut where parsers trip: inside `data:`, inside a multi-byte UTF-8
    character when there is one, and just before the closing blank line."""
    cuts = {3, len(frame) - 1}
    inside = next((i + 1 for i, byte in enumerate(frame) if byte >= 0xC0), None)
    cuts.add(inside if inside is not None else len(frame) // 2)
    edges = [0, *sorted(c for c in cuts if 0 < c < len(frame)), len(frame)]
    return [frame[a:b] for a, b in itertools.pairwise(edges) if a < b]
