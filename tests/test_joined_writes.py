"""JoinedWrites: the writes of one turn of the loop leave as one, in order; closing sends
what is held, aborting drops it, and nothing is written to a connection already gone."""

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
    await asyncio.sleep(0)
    await asyncio.sleep(0)


@given(st.lists(st.lists(st.binary(min_size=1, max_size=20), max_size=5), max_size=5))
def test_each_turn_leaves_as_one_write_in_order(turns: list[list[bytes]]) -> None:
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        for writes in turns:
            for data in writes:
                joined.write(data)
            assert joined.get_write_buffer_size() == sum(map(len, writes))
            await next_turn()
        return sock

    sock = asyncio.run(scenario())
    assert sock.written == [b"".join(writes) for writes in turns if writes]


def test_closing_sends_what_is_held_first() -> None:
    # A reset asked for after N frames closes the connection in the turn it writes them.
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
        joined.writelines([b"data: 1\n\n", bytearray(b"data: 2\n\n")])
        joined.close()
        await next_turn()
        return sock

    sock = asyncio.run(scenario())
    assert sock.written == [b"HTTP/1.1 200 OK\r\n\r\ndata: 1\n\ndata: 2\n\n"]
    assert sock.ended == "closed"


def test_aborting_drops_what_is_held() -> None:
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        joined.write(b"late")
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
        joined.write(b"for nobody")
        sock.ended = "lost"  # the client left before the loop turned
        await next_turn()
        return sock

    assert asyncio.run(scenario()).written == []


def test_a_held_bytearray_is_copied() -> None:
    async def scenario() -> Recorder:
        sock = Recorder()
        joined = JoinedWrites(sock, asyncio.get_running_loop())
        buffer = bytearray(b"first")
        joined.write(buffer)
        buffer[:] = b"later"  # the writer reuses its buffer before the turn ends
        await next_turn()
        return sock

    assert asyncio.run(scenario()).written == [b"first"]
