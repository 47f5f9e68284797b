"""The server's log: every line arrives, in order, soon; warnings at once; the time as
logging would write it."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable

from mockserver.logs import FLUSH_SECONDS, BatchedHandler, SecondsFormatter


class Watched(io.StringIO):
    """A stream that calls `written` after each write."""

    def __init__(self) -> None:
        super().__init__()
        self.written: Callable[[], None] = lambda: None

    def write(self, text: str) -> int:
        done = super().write(text)
        self.written()
        return done


def _logger(stream: io.StringIO) -> tuple[logging.Logger, BatchedHandler]:
    handler = BatchedHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.Logger("test-batched", logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def test_lines_logged_on_the_loop_are_written_together_soon() -> None:
    stream = Watched()
    logger, handler = _logger(stream)

    async def serve() -> str:
        arrived = asyncio.Event()
        stream.written = arrived.set
        for n in range(3):
            logger.info("200 for POST /chat/completions #%d", n)
        assert stream.getvalue() == ""  # kept for the batch: no write per line
        await asyncio.wait_for(arrived.wait(), timeout=FLUSH_SECONDS * 40)
        return stream.getvalue()

    try:
        assert asyncio.run(serve()) == "".join(
            f"INFO 200 for POST /chat/completions #{n}\n" for n in range(3)
        )
    finally:
        handler.close()


def test_a_warning_is_written_at_once_after_what_came_before() -> None:
    stream = io.StringIO()
    logger, handler = _logger(stream)

    async def serve() -> str:
        for n in range(50):
            logger.info("line %d", n)
        logger.warning("the shared state is unreachable")
        return stream.getvalue()  # no wait: the warning's own call wrote it all, in order

    try:
        lines = asyncio.run(serve()).splitlines()
        assert lines == [f"INFO line {n}" for n in range(50)] + [
            "WARNING the shared state is unreachable"
        ]
    finally:
        handler.close()


def test_a_line_logged_off_the_loop_is_written_at_once() -> None:
    stream = io.StringIO()
    logger, handler = _logger(stream)
    logger.info("deepseek-mock listening on http://127.0.0.1:8000")
    assert stream.getvalue() == "INFO deepseek-mock listening on http://127.0.0.1:8000\n"
    handler.close()


def test_what_is_pending_is_written_when_the_handler_closes() -> None:
    stream = io.StringIO()
    logger, handler = _logger(stream)

    async def serve() -> None:
        logger.info("the last line")  # due on the loop, which stops first

    asyncio.run(serve())
    assert stream.getvalue() == ""
    handler.close()
    assert stream.getvalue() == "INFO the last line\n"


def test_the_time_reads_as_logging_writes_it() -> None:
    ours = SecondsFormatter("%(asctime)s %(message)s", "%H:%M:%S")
    theirs = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    now = time.time()
    for created in (now, now + 0.4, now + 1.2, now + 3600):
        record = logging.makeLogRecord({"msg": "x", "created": created})
        assert ours.format(record) == theirs.format(record)
