"""The state of one process, in its memory: the default store, and the fastest.

The default namespace is made at start-up; another is made the first time a request or an
admin call names it. Namespaces are bounded too: past `MAX_NAMESPACES` the one used least
recently is forgotten (never the default), and each holds a smaller share of journal bytes, so
a suite that gives every test a namespace cannot grow the server without limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from mockserver.journal import JOURNAL_BYTES, Journal
from mockserver.quota import Balance, RateLimiter
from mockserver.scenario import Rule, Scenario
from mockserver.settings import Settings
from mockserver.state import DEFAULT_NAMESPACE, Space
from mockserver.usage import PromptCache

MAX_NAMESPACES = 256
NAMESPACE_JOURNAL_BYTES = JOURNAL_BYTES // 32  # 1 MiB: a test's journal, not a load test's


class MemoryStore:
    shared = False
    unavailable: tuple[type[BaseException], ...] = ()

    def __init__(self, settings: Settings, startup: Sequence[Rule]) -> None:
        self._settings = settings
        self._startup = tuple(startup)
        self._lock = threading.Lock()
        self._spaces: OrderedDict[str, Space] = OrderedDict()
        self._spaces[DEFAULT_NAMESPACE] = self._make(DEFAULT_NAMESPACE)

    def _make(self, name: str) -> Space:
        settings = self._settings
        default = name == DEFAULT_NAMESPACE
        return Space(
            name=name,
            scenario=Scenario(self._startup, seed=settings.seed),
            journal=Journal(
                settings.journal_size,
                max_bytes=JOURNAL_BYTES if default else NAMESPACE_JOURNAL_BYTES,
            ),
            limiter=RateLimiter(
                concurrent=settings.max_concurrent,
                per_window=settings.rate_limit,
                window=settings.rate_window,
            ),
            balance=Balance(settings.balance_tokens),
            cache=PromptCache(),
        )

    def space(self, namespace: str = DEFAULT_NAMESPACE) -> Space:
        with self._lock:
            found = self._spaces.get(namespace)
            if found is None:
                found = self._spaces[namespace] = self._make(namespace)
                while len(self._spaces) > MAX_NAMESPACES:
                    oldest = next(n for n in self._spaces if n != DEFAULT_NAMESPACE)
                    del self._spaces[oldest]
            else:
                self._spaces.move_to_end(namespace)
            return found

    def namespaces(self) -> list[str]:
        with self._lock:
            return list(self._spaces)

    def forget(self, namespace: str) -> None:
        with self._lock:
            if namespace != DEFAULT_NAMESPACE:
                self._spaces.pop(namespace, None)

    def describe(self) -> str:
        return "memory"

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
