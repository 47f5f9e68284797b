"""The mock's shared state behind one small interface, with two implementations.

Everything a request changes or an admin call reads (the rules and how often each answered,
the journal, the concurrency and rate limits, the balance and the prompt cache) lives in a
`Space`, one per namespace. A `Store` hands out spaces:

- `MemoryStore` (mockserver/state/memory.py): this process's memory, the default;
- `RedisStore` (mockserver/state/redis_store.py): one Redis, so several worker processes and
  several instances behave as one mock (`--state redis://HOST:PORT/DB`).

The request path reads a request's namespace from `X-Mock-Namespace` (`namespace_of`), asks
`store.space(name)` and talks to the space's parts only through the protocols below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mockserver.errors import ApiError
from mockserver.usage import cache_domain

if TYPE_CHECKING:
    from mockserver.journal import Batch, Entry
    from mockserver.scenario import Rule
    from mockserver.settings import Settings
    from mockserver.validation import ChatRequest

NAMESPACE_HEADER = "x-mock-namespace"
DEFAULT_NAMESPACE = "default"
# Names go into Redis keys and log lines: a short, plain alphabet keeps both unambiguous.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")


def namespace_of(headers: Mapping[str, str]) -> str:
    """The namespace a request asks for (`X-Mock-Namespace`), or the default one."""
    name = headers.get(NAMESPACE_HEADER)
    if name is None or name == "":
        return DEFAULT_NAMESPACE
    if _NAME.fullmatch(name) is None:
        raise ApiError(
            "invalid_request",
            f"namespace {name[:64]!r} (X-Mock-Namespace or /ns/NAME/) is not a namespace name: "
            "1 to 128 letters, digits and . _ : / -, starting with a letter or digit",
        )
    return name


def namespace_in_scope(scope: Mapping[str, object]) -> str:
    """`namespace_of` for an ASGI scope, before Starlette has parsed its headers."""
    raw = scope.get("headers")
    for name, value in raw if isinstance(raw, list) else ():
        if name == b"x-mock-namespace":
            return namespace_of({NAMESPACE_HEADER: value.decode("latin-1")})
    return DEFAULT_NAMESPACE


class RuleBook(Protocol):
    """The rules of one namespace, first live match wins (`mockserver.scenario.Scenario`)."""

    @property
    def rules(self) -> tuple[Rule, ...]: ...
    def replace(self, rules: Iterable[Rule]) -> None: ...
    def add(self, rule: Rule) -> None: ...
    def usage(self) -> list[tuple[Rule, int]]: ...
    def uses(self) -> dict[str, int]: ...
    def decide(self, chat: ChatRequest, headers: Mapping[str, str], dialect: str) -> Rule: ...


class JournalBook(Protocol):
    """What crossed the wire in one namespace (`mockserver.journal.Journal`). `record` gives
    the entry its `seq`: its place in the order of recording, never reused."""

    def record(self, entry: Entry) -> None: ...
    async def arecord(self, entry: Entry) -> None: ...
    def entries(self) -> list[Entry]: ...
    def __len__(self) -> int: ...
    def clear(self) -> None: ...
    def wait_for(self, count: int, timeout: float = 5.0) -> list[Entry]: ...
    def read(self, after: int, timeout: float) -> Batch:
        """What was recorded after cursor `after` (`Journal.read`): how a live reader follows
        the journal, clears included."""
        ...


class Limits(Protocol):
    """The concurrency cap and the request-rate window (`mockserver.quota.RateLimiter`)."""

    concurrent: int | None
    per_window: int | None
    window: float

    @property
    def in_flight(self) -> int: ...
    def acquire(self, message: str | None = None) -> Callable[[], None]: ...
    def reset(self) -> None: ...


class Account(Protocol):
    """What the account may still spend (`mockserver.quota.Balance`)."""

    initial: int | None

    @property
    def left(self) -> int | None: ...
    @property
    def available(self) -> bool: ...
    def check(self) -> None: ...
    def spend(self, tokens: int) -> None: ...
    def reset(self) -> None: ...


class PrefixCache(Protocol):
    """DeepSeek's prompt cache, as hit accounting (`mockserver.usage.PromptCache`)."""

    def hit(self, ids: Sequence[int], domain: str = "") -> int: ...
    def clear(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Space:
    """One namespace's state."""

    name: str
    scenario: RuleBook
    journal: JournalBook
    limiter: Limits
    balance: Account
    cache: PrefixCache

    async def decide(
        self, chat: ChatRequest, headers: Mapping[str, str], dialect: str
    ) -> tuple[Rule, Callable[[], int]]:
        """The rule that answers `chat`, and how to learn how many of its prompt tokens the
        cache holds (asked only when the answer is written, so an error leaves the cache as
        it was). A shared store answers both in one round trip."""
        return self.scenario.decide(chat, headers, dialect), self.cached_tokens(chat)

    def cached_tokens(self, chat: ChatRequest) -> Callable[[], int]:
        """How to ask this namespace's prompt cache about `chat`'s prompt (and remember it)."""
        return lambda: self.cache.hit(chat.prompt_ids, domain=cache_domain(chat))

    def reset(self, rules: Iterable[Rule]) -> None:
        """Back to how a server starts: these rules, an empty journal, a cold cache, fresh
        limits and balance."""
        self.scenario.replace(rules)
        self.journal.clear()
        self.cache.clear()
        self.limiter.reset()
        self.balance.reset()


class Store(Protocol):
    """Hands out spaces. `describe()` names the store for logs and /__mock/health."""

    def space(self, namespace: str = DEFAULT_NAMESPACE) -> Space: ...
    def namespaces(self) -> list[str]: ...
    def forget(self, namespace: str) -> None:
        """Drop a namespace's state (its next use starts afresh); the default stays."""
        ...

    def describe(self) -> str: ...

    @property
    def unavailable(self) -> tuple[type[BaseException], ...]:
        """The errors that mean the store cannot be reached (answered with a 503)."""
        ...

    def close(self) -> None: ...
    async def aclose(self) -> None:
        """Close what the request path opened on the running event loop."""
        ...

    @property
    def shared(self) -> bool:
        """True when other processes see the same state (several workers may serve it)."""
        ...


def open_store(settings: Settings, startup: Sequence[Rule]) -> Store:
    """The store `settings.state` names: None for memory, `redis://…` for Redis."""
    url = settings.state
    if url is None or url == "memory":
        from mockserver.state.memory import MemoryStore

        return MemoryStore(settings, startup)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from mockserver.state.redis_store import RedisStore

        return RedisStore(url, settings, startup)
    raise ValueError(f"--state {url!r}: give memory or a redis://HOST:PORT/DB address")
