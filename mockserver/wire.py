"""The last step: an ASGI response that writes a body as it is produced and stops the moment
the client leaves, even while it is sleeping between frames or deliberately stalled."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping

import anyio
from starlette.types import Receive, Scope, Send

from mockserver.delivery import ConnectionDropped
from mockserver.journal import redact_query


class OpenBodies:
    """How many streamed bodies are being written right now: zero once every client has its
    answer or has gone, which is how tests prove nothing was left behind."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._count += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        return self._count


# Scope state that marks a response with no last byte of its own (an event stream): a stop
# closes its connection at once rather than waiting for it to finish (connections.py).
ENDLESS = "endless"


class WholeBody:
    """An answer sent in one message: what Starlette's `Response` sends (the same headers, in
    the same order), without what it does per request that an answer never needs: a JSON
    answer is the hot path of a load test, and its headers were a tenth of the cost."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: bytes,
        *,
        media_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> None:
        self.body = body
        self.status = status
        self.headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (headers or {}).items()
        ]
        self.headers.append((b"content-length", str(len(body)).encode()))
        self.headers.append((b"content-type", media_type.encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class BodyStream:
    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        status: int = 200,
        media_type: str,
        headers: Mapping[str, str] | None = None,
        tracker: OpenBodies | None = None,
        head_delay: float = 0.0,
        endless: bool = False,
    ) -> None:
        self.body = body
        self.endless = endless
        self.head_delay = head_delay  # seconds before the status line (a client leaving ends it)
        self.tracker = tracker or OpenBodies()
        self.finished: Callable[[], None] | None = None  # called once the body is done, however
        self.status = status
        self.headers = [(b"content-type", media_type.encode())]
        self.headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.endless:
            scope.setdefault("state", {})[ENDLESS] = True
        try:
            with self.tracker:
                await self._write(receive, send)
        finally:
            if self.finished is not None:
                self.finished()

    async def _write(self, receive: Receive, send: Send) -> None:
        # The client may leave at any moment, also while the body sleeps between frames or
        # stalls on purpose: a task parked on `receive()` hears it, and cancels the writer.
        # Plain asyncio rather than an anyio task group and its cancel scopes, which cost
        # about as much as writing a 100-token stream; the same guarantees: the writer stops,
        # the watcher never outlives the response, and a cancel from outside (a shutdown)
        # still goes through.
        writer = asyncio.current_task()
        assert writer is not None  # an ASGI app always runs in a task
        watcher = asyncio.ensure_future(_disconnected(receive))
        left = False  # the watcher heard the client go, and cancelled the writer
        writing = True

        def client_left(done: asyncio.Future[None]) -> None:
            nonlocal left
            if not done.cancelled() and done.exception() is None and writing:
                left = True
                writer.cancel()

        watcher.add_done_callback(client_left)
        dropped: ConnectionDropped | None = None
        try:
            if self.head_delay:
                await asyncio.sleep(self.head_delay)
            await send(
                {"type": "http.response.start", "status": self.status, "headers": self.headers}
            )
            async for chunk in self.body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except ConnectionDropped as exc:
            dropped = exc
        except OSError:
            pass  # the client went away between our check and the write
        except asyncio.CancelledError:
            # Ours (the client left) is taken back; one from outside is passed on.
            if not left or writer.uncancel() > 0:
                raise
        finally:
            writing = False
            watcher.cancel()  # parked on receive(): nothing else would end it
            await _close(self.body)
        if dropped is not None:
            raise dropped  # uvicorn then closes the socket mid-body: what "reset" promises


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone (whatever else arrives first is not for us)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _close(body: AsyncIterator[bytes]) -> None:
    # A generator read to its end has let go of everything: nothing to close, and no cancel
    # scope to enter (anyio's costs a tenth of a 100-token stream). One stopped early (the
    # client left, a fault, a shutdown) may still hold a frame: it is closed, shielded from
    # the cancellation that stopped it.
    if getattr(body, "ag_frame", True) is None:
        return
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        with anyio.CancelScope(shield=True):
            await aclose()


class DropDeliberateResets(logging.Filter):
    """uvicorn logs every exception that ends a response; a reset we were asked for is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


class RedactAccessLog(logging.Filter):
    """uvicorn's access line carries the query string; a key sent as ?api_key= must not."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            path = str(args[2])
            if "?" in path:
                route, _, query = path.partition("?")
                args[2] = f"{route}?{redact_query(query)}"
                record.args = tuple(args)
        return True


def install_log_filters() -> None:
    """Idempotent: deliberate resets are not errors, and keys never reach a log line."""
    wanted: list[tuple[str, type[logging.Filter]]] = [
        ("uvicorn.error", DropDeliberateResets),
        ("uvicorn", DropDeliberateResets),
        ("uvicorn.access", RedactAccessLog),
    ]
    for name, kind in wanted:
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
