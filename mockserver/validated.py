"""Validated requests kept by their exact bytes.

A load test, or a test suite, sends the same body again and again, and parsing it, checking
it against the era and counting its prompt is most of what a request costs. The outcome of
those steps depends on nothing but the bytes, the path (the /beta base URL), the dialect and
the era, so a body seen before is not parsed again. Only accepted requests are kept (an error
is raised afresh each time), nothing downstream changes a `ChatRequest` or its parsed body,
and what depends on earlier requests (the prompt cache's hits, rules' `times`, the limits) is
decided per request after this, as before.
"""

from __future__ import annotations

from mockserver.caches import ByteBoundedCache
from mockserver.catalog import Era
from mockserver.validation import ChatRequest

# A body above this is parsed each time: rare in a load test, and a big key costs to hash.
KEEP_BODY_BYTES = 16 * 1024
# Bounded by bytes, as the token cache is: a parsed body holds its text about twice over, and a
# prompt id ~36 bytes (a tuple slot and an int object).
VALIDATED_CACHE_BYTES = 4 * 1024 * 1024

Key = tuple[bytes, str, str, str]


def _cost(key: Key, value: tuple[Era, ChatRequest]) -> int:
    return 1024 + 3 * len(key[0]) + 36 * len(value[1].prompt_ids)


class Validated:
    """Thread-safe (a big body is parsed in a worker thread); `clear()` on reset."""

    def __init__(self, max_bytes: int = VALIDATED_CACHE_BYTES) -> None:
        self._cache: ByteBoundedCache[Key, tuple[Era, ChatRequest]] = ByteBoundedCache(
            max_bytes, _cost
        )

    def get(self, body: bytes, path: str, dialect: str, era: Era) -> ChatRequest | None:
        if len(body) > KEEP_BODY_BYTES:
            return None
        found = self._cache.get((body, path, dialect, era.name))
        # An era is matched by identity too: two catalogues may share an era's name. It is the
        # era the request was read in, which a surface may refine into the request's own.
        return found[1] if found is not None and found[0] is era else None

    def put(self, body: bytes, path: str, dialect: str, era: Era, chat: ChatRequest) -> None:
        """`chat`, read from `body` in `era`."""
        if len(body) <= KEEP_BODY_BYTES:
            self._cache.put((body, path, dialect, era.name), (era, chat))

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
