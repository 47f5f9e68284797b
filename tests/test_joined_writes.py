"""JoinedWrites: an answer's head leaves in one write with what follows it, nothing else
waits, order is kept; closing sends what is held, aborting drops it, and nothing is written
to a connection already gone."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, strategies as st

from mockserver.connections import JoinedWrites


class Recorder(asyncio.Transport):
    """The socket's side: what was written, and how the connection ended."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.ended: str | None = None

    def write(self, data: Any) -> None:
        assert self.ended is None, "written after the connection ended"
        self.written.append(bytes(data))

    def close(self) -> None:
        self.ended = "closed"

    def abort(self) -> None:
        self.ended = "aborted"

    def is_closing(self) -> bool:
        return self.ended is not None

    def get_write_buffer_size(self) -> int:
        return 0


async def next_turn() -> None:
    """Return once every callback scheduled before it has run: the loop runs `call_soon`
    callbacks in the order they were scheduled, so a held write's send has happened."""
    loop = asyncio.get_running_loop()
    turned = loop.create_future()
    loop.call_soon(turned.set_result, None)
    await turned


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


def test_a_head_leaves_with_the_write_after_it_at_once() -> None:
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        joined.write(HEAD)
        assert sock.written == []
        assert joined.get_write_buffer_size() == len(HEAD)
        joined.write(b"{}")
        assert sock.written == [HEAD + b"{}"]  # one call, in this very turn
        return sock

    asyncio.run(scenario())


@given(
    st.lists(st.binary(max_size=20).filter(lambda b: not b.startswith(b"HTTP/1.1 ")), max_size=6)
)
def test_other_writes_go_straight_through_in_order(writes: list[bytes]) -> None:
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        joined.write(HEAD)
        for n, data in enumerate(writes):
            joined.write(data)
            assert len(sock.written) == n + 1  # never held
        await next_turn()
        return sock

    sock = asyncio.run(scenario())
    assert b"".join(sock.written) == HEAD + b"".join(writes)


def test_a_head_nothing_follows_leaves_on_the_next_turn() -> None:
    # A stream held back (head_delay) or a 100 Continue: the head alone, a turn later.
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        joined.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await next_turn()
        assert sock.written == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        joined.write(b"later")
        return sock

    assert asyncio.run(scenario()).written[-1] == b"later"


def test_closing_sends_what_is_held_first() -> None:
    # A reset asked for after N frames closes the connection in the turn it writes them.
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
        joined.close()
        await next_turn()
        return sock

    sock = asyncio.run(scenario())
    assert sock.written == [b"HTTP/1.1 200 OK\r\n\r\n"]
    assert sock.ended == "closed"


def test_aborting_drops_what_is_held() -> None:
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        joined.write(HEAD)
        joined.abort()
        await next_turn()
        return sock

    sock = asyncio.run(scenario())
    assert sock.written == []
    assert sock.ended == "aborted"


def test_nothing_is_written_to_a_connection_already_gone() -> None:
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        joined.write(HEAD)
        sock.ended = "lost"  # the client left before the loop turned
        await next_turn()
        return sock

    assert asyncio.run(scenario()).written == []


def test_a_held_bytearray_is_copied() -> None:
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        buffer = bytearray(HEAD)
        joined.write(buffer)
        buffer[:9] = b"XXXXXXXXX"  # the writer reuses its buffer before the turn ends
        await next_turn()
        return sock

    assert asyncio.run(scenario()).written == [HEAD]
