"""Account state: a concurrency cap (what DeepSeek enforces, answered with the era's text and
no Retry-After), a balance that runs out, and a request-rate window, which is this mock's own
extension (DeepSeek has none) for testing clients against gateways that do. Each answers with
the dialect's own error when exceeded."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from mockserver.errors import ApiError


class RateLimiter:
    """At most `concurrent` requests in flight and `per_window` started per `window` seconds."""

    def __init__(
        self,
        *,
        concurrent: int | None = None,
        per_window: int | None = None,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.concurrent = concurrent
        self.per_window = per_window
        self.window = window
        self._clock = clock
        self._in_flight = 0
        self._started: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self, message: str | None = None) -> Callable[[], None]:
        """Take a slot or raise the 429; what it returns gives the slot back (call it once).
        `message` is the era's concurrency text, with {current} and {limit}."""
        with self._lock:
            if self.concurrent is not None and self._in_flight >= self.concurrent:
                template = message or (
                    "Your current concurrency is {current}, which exceeds your "
                    "concurrency limit of {limit}."
                )
                raise ApiError(
                    "rate_limit",
                    template.format(current=self._in_flight + 1, limit=self.concurrent),
                )
            if self.per_window is not None:
                now = self._clock()
                while self._started and self._started[0] <= now - self.window:
                    self._started.popleft()
                if len(self._started) >= self.per_window:
                    wait = self._started[0] + self.window - now
                    # Whole seconds, rounded up: urllib3's Retry refuses "2.997", and a
                    # client that waits the hint must find the window open.
                    raise ApiError(
                        "rate_limit", headers={"retry-after": str(max(math.ceil(wait), 1))}
                    )
                self._started.append(now)
            self._in_flight += 1
        held = [True]  # popped by the first release: list.pop is atomic, an Event costs more

        def release() -> None:
            try:
                held.pop()
            except IndexError:
                return  # a slot is given back once, however often asked
            self.release()

        return release

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def reset(self) -> None:
        with self._lock:
            self._started.clear()


class Balance:
    """What the account can still spend, in tokens; None means unlimited."""

    def __init__(self, tokens: int | None = None) -> None:
        self.initial = tokens
        self._left = tokens
        self._lock = threading.Lock()

    @property
    def left(self) -> int | None:
        return self._left

    @property
    def available(self) -> bool:
        return self._left is None or self._left > 0

    def check(self) -> None:
        if not self.available:
            raise ApiError("insufficient_balance")

    def spend(self, tokens: int) -> None:
        with self._lock:
            if self._left is not None:
                self._left = max(self._left - tokens, 0)

    def reset(self) -> None:
        with self._lock:
            self._left = self.initial
