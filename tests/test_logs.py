"""The server's log: every line arrives, in order, soon; warnings at once; the time as
logging would write it."""

from __future__ import annotations

import io
import logging
import threading
import time

from mockserver.logs import FLUSH_SECONDS, BatchedHandler, SecondsFormatter


class Watched(io.StringIO):
    """A stream that says when something is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = threading.Event()

    def write(self, text: str) -> int:
        done = super().write(text)
        self.written.set()
        return done


def _logger(stream: io.StringIO) -> tuple[logging.Logger, BatchedHandler]:
    handler = BatchedHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.Logger("test-batched", logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def test_an_info_line_is_written_soon_without_a_flush() -> None:
    stream = Watched()
    logger, handler = _logger(stream)
    try:
        logger.info("200 for POST /chat/completions")
        assert stream.written.wait(FLUSH_SECONDS * 40), "the writer thread never wrote it"
        assert stream.getvalue() == "INFO 200 for POST /chat/completions\n"
    finally:
        handler.close()


def test_a_warning_is_written_at_once_after_what_came_before() -> None:
    stream = io.StringIO()
    logger, handler = _logger(stream)
    try:
        for n in range(50):
            logger.info("line %d", n)
        logger.warning("the shared state is unreachable")
        # No wait: the warning's own call wrote it, and every line before it, in order.
        lines = stream.getvalue().splitlines()
        assert lines == [f"INFO line {n}" for n in range(50)] + [
            "WARNING the shared state is unreachable"
        ]
    finally:
        handler.close()


def test_what_is_pending_is_written_when_the_handler_closes() -> None:
    stream = io.StringIO()
    logger, handler = _logger(stream)
    handler._closing.set()  # the writer thread stops: only close() can write now
    handler._wake.set()
    handler._writer.join(timeout=5)
    assert not handler._writer.is_alive()
    logger.info("the last line")
    handler.close()
    assert stream.getvalue() == "INFO the last line\n"


def test_the_time_reads_as_logging_writes_it() -> None:
    ours = SecondsFormatter("%(asctime)s %(message)s", "%H:%M:%S")
    theirs = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    now = time.time()
    for created in (now, now + 0.4, now + 1.2, now + 3600):
        record = logging.makeLogRecord({"msg": "x", "created": created})
        assert ours.format(record) == theirs.format(record)
