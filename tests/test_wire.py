"""BodyStream's cancellation contract, driven as the ASGI server drives it: the writer stops
when the client leaves (also mid-stall), a cancel from outside is never swallowed, and no
task outlives the response. The server-level tests (test_streaming, test_faults) show the
same over real sockets; these pin the cases a socket cannot time exactly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import pytest
from hypothesis import given, strategies as st
from starlette.responses import Response

from mockserver.wire import BodyStream, WholeBody

Message = MutableMapping[str, Any]


class Client:
    """ASGI receive and send: the body was read before, so receive() waits for a leave."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.first_chunk = asyncio.Event()
        self.when_leaving: Callable[[], object] | None = None  # run in the turn the leave is heard

    async def receive(self) -> Message:
        message = await self.inbox.get()
        if message["type"] == "http.disconnect" and self.when_leaving is not None:
            asyncio.get_running_loop().call_soon(self.when_leaving)
        return message

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message.get("body"):
            self.first_chunk.set()

    def leave(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})


class Stalling:
    """One chunk, then a stall that only a cancel ends; records that it was closed."""

    def __init__(self) -> None:
        self.closed = False

    async def body(self) -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            await asyncio.Event().wait()
            yield b"never"
        finally:
            self.closed = True


def others() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


async def no_task_left() -> None:
    """Every task the response started ends (a cancelled one on the loop's next turns)."""
    tasks = others()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=5)
        assert pending == set()


async def stalled() -> tuple[Client, Stalling, asyncio.Task[None]]:
    """A stream under way: its first chunk sent, its body stalled."""
    client, body = Client(), Stalling()
    stream = BodyStream(body.body(), media_type="text/event-stream")
    writer = asyncio.create_task(stream({"type": "http"}, client.receive, client.send))
    await client.first_chunk.wait()
    return client, body, writer


def test_the_writer_stops_when_the_client_leaves_mid_stall() -> None:
    async def scenario() -> None:
        client, body, writer = await stalled()
        client.leave()
        await asyncio.wait_for(writer, 5)  # returns: a client leaving is not an error
        assert body.closed
        assert writer.cancelling() == 0  # the cancel it took back leaves no trace on the task
        assert not any(m.get("more_body") is False for m in client.sent)  # no last byte
        await no_task_left()

    asyncio.run(scenario())


def test_a_cancel_from_outside_is_passed_on() -> None:
    async def scenario() -> None:
        _, body, writer = await stalled()
        writer.cancel()  # a shutdown, say: the client is still there
        with pytest.raises(asyncio.CancelledError):
            await writer
        assert body.closed
        await no_task_left()

    asyncio.run(scenario())


def test_a_cancel_from_outside_is_passed_on_even_as_the_client_leaves() -> None:
    async def scenario() -> None:
        client, body, writer = await stalled()
        # A shutdown cancels the writer in the very turn its watcher hears the client go,
        # and so cancels it too: both before the writer runs again.
        client.when_leaving = writer.cancel
        client.leave()
        with pytest.raises(asyncio.CancelledError):
            await writer
        assert body.closed

    asyncio.run(scenario())


def test_a_whole_body_ends_with_the_last_byte_and_leaves_no_task() -> None:
    async def scenario() -> None:
        client = Client()
        finished: list[bool] = []

        async def frames() -> AsyncIterator[bytes]:
            for n in range(3):
                yield b"data: %d\n\n" % n

        stream = BodyStream(frames(), media_type="text/event-stream", headers={"x-a": "b"})
        stream.finished = lambda: finished.append(True)
        await stream({"type": "http"}, client.receive, client.send)
        assert [m["type"] for m in client.sent] == ["http.response.start"] + [
            "http.response.body"
        ] * 4
        assert client.sent[0]["headers"] == [
            (b"content-type", b"text/event-stream"),
            (b"x-a", b"b"),
        ]
        assert b"".join(m.get("body", b"") for m in client.sent) == b"".join(
            b"data: %d\n\n" % n for n in range(3)
        )
        assert client.sent[-1]["more_body"] is False
        assert finished == [True]
        assert stream.tracker.count == 0
        await no_task_left()

    asyncio.run(scenario())


_NAME = st.text("abcdefghijklmnopqrstuvwxyz-ABCXYZ", min_size=1, max_size=20)
_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)


@given(
    st.binary(max_size=300),
    st.dictionaries(_NAME, _VALUE, max_size=4),
    st.sampled_from([200, 400, 429, 503]),
)
def test_a_whole_body_sends_what_starlettes_response_sends(
    body: bytes, headers: dict[str, str], status: int
) -> None:
    # WholeBody stands in for Response on the hot path: the same two messages, the same
    # headers in the same order (the dialect's, content-length, content-type).
    async def sent(app: Any) -> list[Message]:
        messages: list[Message] = []

        async def send(message: Message) -> None:
            messages.append(message)

        async def receive() -> Message:
            raise AssertionError("a whole body never reads")

        await app({"type": "http"}, receive, send)
        return messages

    headers = {
        k: v for k, v in headers.items() if k.lower() not in {"content-length", "content-type"}
    }
    ours = asyncio.run(sent(WholeBody(body, headers=headers, status=status)))
    theirs = asyncio.run(
        sent(Response(body, status_code=status, media_type="application/json", headers=headers))
    )
    assert ours == theirs
