"""A least-recently-used cache bounded by an estimate of the bytes it holds, not by a count:
one huge value cannot pin megabytes, and many small ones still fit. Optionally with a
doorkeeper: a key is kept only from its second sighting on."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


# How many first sightings a doorkeeper remembers (their hashes) before it starts afresh.
DOORKEEPER_KEYS = 4096


class ByteBoundedCache(Generic[K, V]):
    """Thread-safe; a value whose cost alone is over the bound is never kept.

    With `doorkeeper`, a key's first `put` only notes its hash, and the value is kept from
    the second on: under a stream of keys that never come back (a new prompt every request)
    the cache keeps what repeats instead of filling its bound with what does not, and the
    requests skip the bookkeeping of an entry nobody reads."""

    def __init__(
        self, max_bytes: int, cost: Callable[[K, V], int], *, doorkeeper: bool = False
    ) -> None:
        self.max_bytes = max_bytes
        self._cost = cost
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0
        # The hashes of keys put once; None: every key is kept at once.
        self._seen: set[int] | None = set() if doorkeeper else None

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: K, value: V) -> None:
        cost = self._cost(key, value)
        if cost > self.max_bytes:
            return
        with self._lock:
            seen = self._seen
            if seen is not None:
                code = hash(key)  # a string keeps its hash: the lookups after it reuse it
                if code not in seen:
                    if len(seen) >= DOORKEEPER_KEYS:
                        seen.clear()
                    seen.add(code)
                    return
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (value, cost)
            self.bytes += cost
            while self.bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self.bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0
            if self._seen is not None:
                self._seen.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
