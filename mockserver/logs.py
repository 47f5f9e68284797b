"""The server's log on stderr: a line per request at info, at a small cost to the event loop.

Python's logging writes and flushes each line as it comes, and formats its time afresh: under
load the request log alone took a fifth of a request's cost. Here the request lines are
written in batches, at most FLUSH_SECONDS after they were logged (a warning or worse, and
everything before it, at once), the clock is formatted once a second, and a record skips the
thread and process names and the source line that no line shows.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from typing import TextIO

FLUSH_SECONDS = 0.05


class SecondsFormatter(logging.Formatter):
    """A formatter whose date format shows whole seconds: the text is made once a second."""

    def __init__(self, fmt: str, datefmt: str) -> None:
        super().__init__(fmt, datefmt)
        self._second = -1
        self._text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._text = time.strftime(
                datefmt or self.datefmt or "%H:%M:%S", time.localtime(second)
            )
            self._second = second
        return self._text


class BatchedHandler(logging.Handler):
    """Lines logged on a running event loop (the server's requests) are kept and written
    together by the loop, FLUSH_SECONDS after the first of them; a warning or worse, and a line
    logged off the loop, is written at once, after what came before it; the rest at exit.

    The loop writes them, not a thread of its own: a thread would wait for the GIL while the
    loop works (loading the tokenizer holds it for 0.2 s) and then take it back in the middle
    of a request."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self._pending: list[str] = []
        self._scheduled = False  # a write is due on the loop (touched on the loop only)
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # logging's own contract: report, never raise
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
        if record.levelno >= logging.WARNING:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # off the loop (start-up, a worker thread): no batch to join
            self.flush()
            return
        if not self._scheduled:
            self._scheduled = True
            loop.call_later(FLUSH_SECONDS, self._due)

    def _due(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._pending = self._pending, []
            if lines:
                try:
                    self.stream.write("\n".join(lines) + "\n")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass  # stderr closed (a pipe whose reader left, or shutdown)

    def close(self) -> None:
        self.flush()
        super().close()


def configure(level: int | str, fmt: str, datefmt: str = "%H:%M:%S") -> None:
    """The root logger writes through one BatchedHandler (as `logging.basicConfig` would set
    up a stream handler: only when the root has none yet)."""
    root = logging.getLogger()
    root.setLevel(level)
    if root.handlers:
        return
    # Nothing the mock writes shows a thread's or a process's name, or where in the source a
    # line was logged: do not look them up (logging's documented switches; `_srcfile` is
    # the one for the caller's frame).
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = BatchedHandler()
    handler.setFormatter(SecondsFormatter(fmt, datefmt))
    root.addHandler(handler)
