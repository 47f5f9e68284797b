"""Token usage: exact counts from DeepSeek's tokenizer, and a context cache that reports hits
for a repeated prompt prefix, as DeepSeek's KV cache does."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mockserver.validation import ChatRequest

# The cache works in whole units of this many tokens (DeepSeek's guide described 64-token
# units); a prompt shorter than one unit never hits.
UNIT = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cache_hit_tokens: int = 0
    reasoning_tokens: int | None = None  # thinking models only

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cache_miss_tokens(self) -> int:
        return self.prompt_tokens - self.cache_hit_tokens

    def overridden(self, figures: Mapping[str, int]) -> Usage:
        """A canned reply's figures replace the counted ones; the sums stay consistent."""
        if not figures:
            return self
        names = {
            "prompt_tokens": "prompt_tokens",
            "completion_tokens": "completion_tokens",
            "prompt_cache_hit_tokens": "cache_hit_tokens",
            "cached_tokens": "cache_hit_tokens",
            "reasoning_tokens": "reasoning_tokens",
        }
        changes = {names[key]: int(value) for key, value in figures.items() if key in names}
        result = replace(self, **changes)
        if result.cache_hit_tokens > result.prompt_tokens:
            result = replace(result, cache_hit_tokens=result.prompt_tokens)
        return result


def cache_domain(chat: ChatRequest) -> str:
    """DeepSeek's KV cache is kept per model, and `user_id` isolates one user's cache from
    another's (rate-limit and isolation guide): a prefix only hits within the same domain."""
    user = chat.raw.get("user_id")
    model = chat.spec.answers_as or chat.spec.id
    return f"{model}\x00{user if isinstance(user, str) else ''}"


# The keys of the last few prompts, by the identity of their ids (a repeated request brings
# the same tuple, from the validated cache), so a repeat does not hash its prefixes again.
_CHAINS: dict[int, tuple[tuple[int, ...], str, list[int]]] = {}
CHAINS_KEPT = 256


def _chain(ids: tuple[int, ...], domain: str) -> list[int]:
    found = _CHAINS.get(id(ids))
    if found is not None and found[0] is ids and found[1] == domain:
        return found[2]
    keys = []
    key = hash(domain)
    for end in range(UNIT, len(ids) + 1, UNIT):
        # Chained: each key stands for the whole prefix up to `end`, not just its unit.
        key = hash((key, ids[end - UNIT : end]))
        keys.append(key)
    if len(_CHAINS) >= CHAINS_KEPT:
        _CHAINS.clear()
    _CHAINS[id(ids)] = (ids, domain, keys)  # holds `ids`: its identity is not reused meanwhile
    return keys


class PromptCache:
    """Remembers prompt prefixes (in whole units) for one server; bounded, oldest out first."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def hit(self, ids: Sequence[int], domain: str = "") -> int:
        """How many leading tokens of `ids` were cached in `domain` (a model and user); then
        remember this prompt's prefixes there."""
        keys = _chain(tuple(ids), domain)
        hit = 0
        with self._lock:
            for n, key in enumerate(keys, start=1):
                if key in self._seen and hit == (n - 1) * UNIT:  # hits run from the start
                    hit = n * UNIT
                    self._seen.move_to_end(key)
                else:
                    self._seen[key] = None
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        return hit

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
