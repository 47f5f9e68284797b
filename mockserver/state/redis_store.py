"""The state in one Redis, shared by every worker and instance that names it (`--state`).

Each decision that must not be made twice is one Lua script, run atomically by Redis:

- a rule's `times`, sequences and seeded probabilities: `DECIDE` checks the rules' version and
  claims the first live matching rule, drawing with the same SHA-1 as `scenario.draw`;
- the journal: `RECORD` numbers an entry and appends it to a stream, bounded by count and
  bytes; `wait_for` blocks on the stream (XREAD), so it returns on any worker's write;
- the limits: `ACQUIRE` counts on Redis's own clock; a concurrency slot is a lease that its
  worker renews while the response is open, so the slots of a worker that died come back;
- the balance and the prompt cache's hit accounting: `SPEND` and `HIT`.

Matching a rule against a request is the worker's own work (the rules are cached per
version); only the claim crosses to Redis. What is promised: exact counts while one Redis
primary is up; nothing across a failover (a replica may not have the last writes).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
import time
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson

from mockserver.errors import ApiError
from mockserver.journal import (
    JOURNAL_BYTES,
    Batch,
    Entry,
    dump_entry,
    entry_cost,
    load_entry,
    waited_in_vain,
)
from mockserver.scenario import GENERATED, ErrorReply, Rule, rule_from_json, rule_to_json
from mockserver.settings import Settings
from mockserver.state import DEFAULT_NAMESPACE, Space
from mockserver.state.memory import NAMESPACE_JOURNAL_BYTES
from mockserver.usage import UNIT, cache_domain

if TYPE_CHECKING:
    import redis

    from mockserver.validation import ChatRequest

Arg = bytes | str | int | float  # what a script takes
Items = list[tuple[bytes, dict[bytes, bytes]]]  # a stream's entries, as XRANGE gives them
PREFIX = "deepseek-mock"
# Connections open at once per worker (per event loop) for the request path; past it a request
# waits for one to come free, up to POOL_WAIT seconds, rather than being refused: redis-py's
# own pool refuses the 101st at once ("Too many connections"), a false 503 under load.
POOL_CONNECTIONS = 100
POOL_WAIT = 10.0
# A command that fails on a connection Redis has closed (it restarted, or dropped an idle
# client) is sent again on a new one, after 10-100 ms; from_url alone gives connections no
# retry, so each stale pooled connection cost one 503. Redis down for good still gives a 503,
# a few hundred milliseconds later.
RETRIES = 3
STARTUP = b"startup"  # the rules key's value while a namespace has its start-up rules
CACHE_KEYS = 100_000  # prompt-cache prefixes kept per namespace, then a tenth is dropped

# A prompt's prefixes (ARGV[first..], one per whole unit, in order) against the set `key`:
# how many lead the prompt unbroken, and then all of them remembered (the set is bounded).
REMEMBER = """
local function remember(key, first)
  if first > #ARGV then return 0 end  -- a prompt under one unit: nothing to look up
  local hit = 0
  for j = first, #ARGV do
    if hit == j - first and redis.call('SISMEMBER', key, ARGV[j]) == 1 then
      hit = hit + 1
    else
      redis.call('SADD', key, ARGV[j])
    end
  end
  if redis.call('SCARD', key) > CACHE_CAP then redis.call('SPOP', key, CACHE_DROP) end
  return hit
end
""".replace("CACHE_CAP", str(CACHE_KEYS)).replace("CACHE_DROP", str(CACHE_KEYS // 10))

DECIDE = (
    REMEMBER
    + """
-- KEYS: version, uses, draws, prompt cache. ARGV: the version ('0': none written) the rules
-- were matched in, the seed, the number of matching rules, then (index, times or -1,
-- probability, name, 1 if it answers / 0 if it is an error) for each, in order, then the
-- prompt's prefixes (see HIT). Returns the rule's index (-1: none, -2: the rules changed) and,
-- when the request is answered, how many prefixes were cached (then they all are).
local version = redis.call('GET', KEYS[1]) or '0'
if version ~= ARGV[1] then return {-2, 0} end
local chosen, answers = -1, 1
local n = tonumber(ARGV[3])
for c = 0, n - 1 do
  local i = 4 + c * 5
  local index, times, p = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local used = tonumber(redis.call('HGET', KEYS[2], index) or '0')
  if times < 0 or used < times then
    local take = true
    if p < 1 then
      local drawn = redis.call('HINCRBY', KEYS[3], index, 1) - 1
      local digest = redis.sha1hex(ARGV[2] .. '\\0' .. ARGV[i + 3] .. '\\0' .. drawn)
      take = tonumber(string.sub(digest, 1, 13), 16) / 4503599627370496 < p
    end
    if take then
      redis.call('HINCRBY', KEYS[2], index, 1)
      chosen, answers = tonumber(index), tonumber(ARGV[i + 4])
      break
    end
  end
end
local hit = 0
if answers == 1 then hit = remember(KEYS[4], 4 + n * 5) end
return {chosen, hit}
"""
)

RECORD = """
-- KEYS: total, recorded, stream, bytes. ARGV: entry, its cost, size, max bytes, ttl.
local n = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[3], n .. '-1', 'e', ARGV[1], 'c', ARGV[2])
local bytes = redis.call('INCRBY', KEYS[4], ARGV[2])
local size, most = tonumber(ARGV[3]), tonumber(ARGV[4])
local length = redis.call('XLEN', KEYS[3])
while length > 1 and (length > size or bytes > most) do
  local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
  bytes = redis.call('DECRBY', KEYS[4], first[2][4])
  redis.call('XDEL', KEYS[3], first[1])
  length = length - 1
end
redis.call('INCR', KEYS[2])
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return n
"""

CLEAR = """
-- KEYS: total, recorded, stream, bytes, cleared-at.
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('SET', KEYS[2], 0)
redis.call('SET', KEYS[5], redis.call('INCR', KEYS[1]))
return 1
"""

ACQUIRE = """
-- KEYS: in flight (lease -> expiry), started (lease -> time). ARGV: concurrency limit or -1,
-- requests per window or -1, window seconds, lease id, lease seconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, per, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if limit >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  local current = redis.call('ZCARD', KEYS[1])
  if current >= limit then return {'concurrency', current} end
end
if per >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= per then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {'rate', tostring(tonumber(oldest[2]) + window - now)}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[4])
  redis.call('EXPIRE', KEYS[2], math.ceil(window) + 1)
end
if limit >= 0 then redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[4]) end
return {'ok'}
"""

RENEW = """
-- KEYS: one in-flight set. ARGV: lease seconds, then the leases this worker holds there.
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i]) end
return 1
"""

SPEND = """
-- KEYS: balance. ARGV: the starting balance, tokens spent.
local left = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
left = math.max(left - tonumber(ARGV[2]), 0)
redis.call('SET', KEYS[1], left)
return left
"""

HIT = (
    REMEMBER
    + """
-- KEYS: the prefixes seen. ARGV: this prompt's prefixes, one per whole unit, in order.
return remember(KEYS[1], 1)
"""
)


SCRIPTS = {
    "decide": DECIDE,
    "record": RECORD,
    "clear": CLEAR,
    "acquire": ACQUIRE,
    "renew": RENEW,
    "spend": SPEND,
    "hit": HIT,
}


def connection_options(*, asynchronous: bool = False) -> dict[str, Any]:
    """What every connection to Redis is made with: a connect timeout, and RETRIES on a
    connection error (each kind of client has its own kind of retry)."""
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError, TimeoutError
    from redis.retry import Retry

    backoff = ExponentialBackoff(cap=0.1, base=0.01)
    return {
        "socket_connect_timeout": 5,
        "retry": AsyncRetry(backoff, RETRIES) if asynchronous else Retry(backoff, RETRIES),
        "retry_on_error": [ConnectionError, TimeoutError],
    }


class RedisStore:
    shared = True

    def __init__(self, url: str, settings: Settings, startup: Sequence[Rule]) -> None:
        try:
            import redis
        except ImportError:  # pragma: no cover - the extra is part of the dev install
            raise ValueError(
                "--state redis:// needs the redis package: pip install 'deepseek-mock[redis]'"
            ) from None
        self.url = url
        self.unavailable: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.settings = settings
        self.startup = tuple(startup)
        # One connection for the request path: a pooled command polls its socket first (one
        # syscall more per command, on every request). Pipelines and the journal's blocking
        # reads take pooled connections of their own, so a wait never holds the request path.
        try:
            self.client: redis.Redis = redis.Redis.from_url(
                url, single_connection_client=True, **connection_options()
            )
            self.client.ping()
        except (redis.RedisError, ValueError) as exc:
            raise ValueError(f"--state {url}: cannot reach Redis ({exc})") from None
        self.pooled: redis.Redis = redis.Redis(connection_pool=self.client.connection_pool)
        self.scripts = {name: self.client.register_script(text) for name, text in SCRIPTS.items()}
        # The request path's client, made on the event loop that first needs it (an asyncio
        # connection belongs to one loop): waiting for Redis never holds other requests.
        self._loop_clients: dict[asyncio.AbstractEventLoop, tuple[Any, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._spaces: OrderedDict[str, Space] = OrderedDict()
        # Leases this worker holds, by in-flight key: renewed until released.
        self.leases: dict[str, set[str]] = {}
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, daemon=True, name="lease-renewer")
        self._renewer.start()

    def on_loop(self) -> dict[str, Any]:
        """The scripts, bound to this event loop's own asyncio client."""
        loop = asyncio.get_running_loop()
        found = self._loop_clients.get(loop)
        if found is None:
            import redis.asyncio

            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.url,
                max_connections=POOL_CONNECTIONS,
                timeout=POOL_WAIT,
                **connection_options(asynchronous=True),
            )
            client = redis.asyncio.Redis.from_pool(pool)  # closing the client closes the pool
            scripts = {name: client.register_script(text) for name, text in SCRIPTS.items()}
            found = self._loop_clients[loop] = (client, scripts)
        return found[1]

    async def aclose(self) -> None:
        found = self._loop_clients.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[0].aclose()

    def key(self, namespace: str, part: str) -> str:
        # The braces make every key of a namespace one Redis Cluster slot, as scripts need.
        return f"{PREFIX}:{{{namespace}}}:{part}"

    def space(self, namespace: str = DEFAULT_NAMESPACE) -> Space:
        with self._lock:
            found = self._spaces.get(namespace)
            if found is not None:
                self._spaces.move_to_end(namespace)
                return found
        made = RedisSpace(
            name=namespace,
            scenario=RedisRuleBook(self, namespace),
            journal=RedisJournal(self, namespace),
            limiter=RedisLimits(self, namespace),
            balance=RedisBalance(self, namespace),
            cache=RedisPrefixCache(self, namespace),
        )
        self.client.sadd(f"{PREFIX}:namespaces", namespace)
        with self._lock:
            found = self._spaces.setdefault(namespace, made)
            while len(self._spaces) > 1024:  # handles only: the state itself is in Redis
                self._spaces.popitem(last=False)
            return found

    def namespaces(self) -> list[str]:
        names = self.client.smembers(f"{PREFIX}:namespaces")
        return sorted(_text(name) for name in names)

    def forget(self, namespace: str) -> None:
        if namespace == DEFAULT_NAMESPACE:
            return
        with self._lock:
            self._spaces.pop(namespace, None)
        keys = list(self.client.scan_iter(match=self.key(namespace, "*"), count=100))
        pipe = self.client.pipeline(transaction=False)
        if keys:
            pipe.delete(*keys)
        pipe.srem(f"{PREFIX}:namespaces", namespace)
        pipe.execute()

    def describe(self) -> str:
        return f"redis at {self.url}"

    def ttl(self, namespace: str) -> int:
        """Seconds a namespace's journal outlives its last exchange (0: for ever, default)."""
        return 0 if namespace == DEFAULT_NAMESPACE else 24 * 3600

    def close(self) -> None:
        self._stop.set()
        if self._renewer.is_alive() and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=5)
        self.client.close()
        self.pooled.close()

    def _renew(self) -> None:
        import redis

        period = max(self.settings.lease_seconds / 3, 0.05)
        while not self._stop.wait(period):
            with self._lock:
                held = {key: list(leases) for key, leases in self.leases.items() if leases}
            for key, leases in held.items():
                try:
                    self.scripts["renew"](keys=[key], args=[self.settings.lease_seconds, *leases])
                except redis.RedisError:
                    continue  # Redis is away: the next round tries again

    def hold(self, key: str, lease: str) -> None:
        with self._lock:
            self.leases.setdefault(key, set()).add(lease)

    def drop(self, key: str, lease: str) -> None:
        with self._lock:
            self.leases.get(key, set()).discard(lease)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class RedisRuleBook:
    """Rules as scenario JSON in Redis, with a version; each worker parses a version once."""

    def __init__(self, store: RedisStore, namespace: str) -> None:
        self.store = store
        self.client = store.client
        self.version_key = store.key(namespace, "version")
        self.rules_key = store.key(namespace, "rules")
        self.uses_key = store.key(namespace, "uses")
        self.draws_key = store.key(namespace, "draws")
        self._cached: tuple[str, tuple[Rule, ...]] | None = None

    def _parse(self, raw: bytes | None) -> tuple[Rule, ...]:
        if raw is None or raw == STARTUP:
            return self.store.startup
        return tuple(rule_from_json(data, i) for i, data in enumerate(orjson.loads(raw)))

    def _load(self) -> tuple[str, tuple[Rule, ...]]:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.version_key)
        pipe.get(self.rules_key)
        version, raw = pipe.execute()
        self._cached = (_text(version or b"0"), self._parse(raw))
        return self._cached

    def _write(self, pipe: Any, rules: Sequence[Rule]) -> None:
        if tuple(rules) == self.store.startup:
            pipe.set(self.rules_key, STARTUP)
        else:
            pipe.set(self.rules_key, orjson.dumps([rule_to_json(rule) for rule in rules]))
        # A fresh token, not a counter: a namespace forgotten and made again must not reach a
        # version some worker still holds the old rules of.
        pipe.set(self.version_key, uuid.uuid4().hex)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._load()[1]

    def replace(self, rules: Iterable[Rule]) -> None:
        rules = tuple(rules)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.uses_key, self.draws_key)
        self._write(pipe, rules)
        pipe.execute()

    def add(self, rule: Rule) -> None:
        """As `Scenario.add`: a name in use is replaced where it stands, counted from 0."""
        import redis

        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.version_key, self.rules_key)  # type: ignore[no-untyped-call]
                    rules = list(self._parse(_raw(pipe.get(self.rules_key))))
                    names = [existing.name for existing in rules]
                    pipe.multi()
                    if rule.name in names:
                        i = names.index(rule.name)
                        rules[i] = rule
                        pipe.hdel(self.uses_key, str(i))
                        pipe.hdel(self.draws_key, str(i))
                    else:
                        rules.append(rule)
                    self._write(pipe, rules)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue  # another worker changed the rules first: read them again

    def usage(self) -> list[tuple[Rule, int]]:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.rules_key)
        pipe.hgetall(self.uses_key)
        raw, uses = pipe.execute()
        counts = {int(k): int(v) for k, v in uses.items()}
        return [(rule, counts.get(i, 0)) for i, rule in enumerate(self._parse(raw))]

    def uses(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for rule, used in self.usage():
            totals[rule.name] = totals.get(rule.name, 0) + used
        return totals

    def decide(self, chat: ChatRequest, headers: Mapping[str, str], dialect: str) -> Rule:
        return self.decide_with(chat, headers, dialect, (), "")[0]

    def _call(
        self,
        rules: tuple[Rule, ...],
        version: str,
        chat: ChatRequest,
        headers: Mapping[str, str],
        dialect: str,
        prefixes: Sequence[bytes],
        cache_key: str,
    ) -> tuple[list[str], list[Arg]]:
        matching: list[Arg] = []
        for i, rule in enumerate(rules):
            if rule.match(chat, headers, dialect):
                times = -1 if rule.times is None else rule.times
                answers = 0 if isinstance(rule.reply, ErrorReply) else 1
                matching += [i, times, repr(rule.probability), rule.name, answers]
        args: list[Arg] = [version, self.store.settings.seed, len(matching) // 5]
        keys = [self.version_key, self.uses_key, self.draws_key, cache_key or self.uses_key]
        return keys, [*args, *matching, *prefixes]

    def decide_with(
        self,
        chat: ChatRequest,
        headers: Mapping[str, str],
        dialect: str,
        prefixes: Sequence[bytes],
        cache_key: str,
    ) -> tuple[Rule, int]:
        """The rule, and the prompt-cache hit in whole units when the rule answers (the
        prefixes are then remembered), in one round trip."""
        for _ in range(16):
            version, rules = self._cached or self._load()
            keys, args = self._call(rules, version, chat, headers, dialect, prefixes, cache_key)
            found = self._outcome(rules, self.store.scripts["decide"](keys=keys, args=args))
            if found is not None:
                return found
        raise RuntimeError("the rules kept changing while a request was being decided")

    def _outcome(self, rules: tuple[Rule, ...], answer: list[int]) -> tuple[Rule, int] | None:
        """The script's answer as a rule and a hit; None when the rules changed since this
        worker read them (they are read again)."""
        chosen, hit = int(answer[0]), int(answer[1])
        if chosen == -2:
            self._load()
            return None
        return (GENERATED if chosen < 0 else rules[chosen]), hit

    async def adecide_with(
        self,
        chat: ChatRequest,
        headers: Mapping[str, str],
        dialect: str,
        prefixes: Sequence[bytes],
        cache_key: str,
    ) -> tuple[Rule, int]:
        """`decide_with` on the event loop's own client."""
        script = self.store.on_loop()["decide"]
        for _ in range(16):
            version, rules = self._cached or self._load()
            keys, args = self._call(rules, version, chat, headers, dialect, prefixes, cache_key)
            # A change of rules is rare (an admin call): they are read again synchronously.
            found = self._outcome(rules, await script(keys=keys, args=args))
            if found is not None:
                return found
        raise RuntimeError("the rules kept changing while a request was being decided")


class RedisJournal:
    def __init__(self, store: RedisStore, namespace: str) -> None:
        self.store = store
        self.client = store.client
        self.namespace = namespace
        self.keys = [store.key(namespace, part) for part in ("seq", "recorded", "journal")]
        self.keys.append(store.key(namespace, "journal-bytes"))
        self.stream = self.keys[2]
        self.cleared_key = store.key(namespace, "cleared-at")
        default = namespace == DEFAULT_NAMESPACE
        self.max_bytes = JOURNAL_BYTES if default else NAMESPACE_JOURNAL_BYTES

    def _args(self, entry: Entry) -> list[Arg]:
        return [
            dump_entry(entry),
            entry_cost(entry),
            self.store.settings.journal_size,
            self.max_bytes,
            self.store.ttl(self.namespace),
        ]

    def record(self, entry: Entry) -> None:
        entry.seq = int(self.store.scripts["record"](keys=self.keys, args=self._args(entry)))

    async def arecord(self, entry: Entry) -> None:
        script = self.store.on_loop()["record"]
        entry.seq = int(await script(keys=self.keys, args=self._args(entry)))

    @staticmethod
    def _entries(items: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Entry]:
        out = []
        for ident, fields in items:
            entry = load_entry(fields[b"e"])
            entry.seq = int(ident.split(b"-")[0])
            out.append(entry)
        return out

    def entries(self) -> list[Entry]:
        return self._entries(cast(Items, self.client.xrange(self.stream)))

    def __len__(self) -> int:
        return int(self.client.xlen(self.stream))

    def clear(self) -> None:
        """Empty the journal. A clear takes a number of its own, so a reader's cursor (the
        numbers of entries and clears) never goes back."""
        self.store.scripts["clear"](keys=[*self.keys, self.cleared_key])

    def read(self, after: int, timeout: float) -> Batch:
        """As `Journal.read`: entries are stream items under their numbers, and a clear's
        number is kept beside them."""
        deadline = time.monotonic() + timeout
        while True:
            pipe = self.client.pipeline(transaction=True)
            pipe.get(self.keys[0])
            pipe.get(self.cleared_key)
            pipe.xrange(self.stream, min=f"{after}-2")  # what came after `after`-1
            cursor_raw, cleared_raw, items = pipe.execute()
            cursor, cleared_at = int(cursor_raw or 0), int(cleared_raw or 0)
            if after > cursor:
                return Batch(cursor, True, self.entries())
            if cursor > after:
                return Batch(cursor, cleared_at > after, self._entries(items))
            left = deadline - time.monotonic()
            if left <= 0:
                return Batch(after, False, [])
            # Wakes at the next entry; bounded, so a clear (no stream item) is seen too.
            block = max(int(min(left, 0.25) * 1000), 1)
            self.store.pooled.xread({self.stream: f"{after}-1"}, block=block)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Entry]:
        """As `Journal.wait_for`, for exchanges any worker recorded."""
        deadline = time.monotonic() + timeout
        while True:
            pipe = self.client.pipeline(transaction=True)
            pipe.get(self.keys[1])
            pipe.xrevrange(self.stream, count=1)
            recorded, last = pipe.execute()
            recorded = int(recorded or 0)
            if recorded >= count:
                return self.entries()
            left = deadline - time.monotonic()
            if left <= 0:
                raise waited_in_vain(recorded, count, timeout)
            after = last[0][0] if last else b"0-0"
            # Wakes at the next entry any worker records; bounded so a clear is seen too.
            block = max(int(min(left, 1.0) * 1000), 1)
            self.store.pooled.xread({self.stream: after}, block=block)


class RedisLimits:
    def __init__(self, store: RedisStore, namespace: str) -> None:
        self.store = store
        settings = store.settings
        self.concurrent = settings.max_concurrent
        self.per_window = settings.rate_limit
        self.window = settings.rate_window
        self.in_flight_key = store.key(namespace, "in-flight")
        self.started_key = store.key(namespace, "started")

    @property
    def in_flight(self) -> int:
        return int(self.store.client.zcard(self.in_flight_key))

    def acquire(self, message: str | None = None) -> Callable[[], None]:
        if self.concurrent is None and self.per_window is None:
            return _nothing
        lease = uuid.uuid4().hex
        args: list[Arg] = [
            -1 if self.concurrent is None else self.concurrent,
            -1 if self.per_window is None else self.per_window,
            self.window,
            lease,
            self.store.settings.lease_seconds,
        ]
        keys = [self.in_flight_key, self.started_key]
        verdict = self.store.scripts["acquire"](keys=keys, args=args)
        kind = verdict[0].decode()
        if kind == "concurrency":
            template = message or (
                "Your current concurrency is {current}, which exceeds your "
                "concurrency limit of {limit}."
            )
            current = int(verdict[1]) + 1
            raise ApiError("rate_limit", template.format(current=current, limit=self.concurrent))
        if kind == "rate":
            wait = float(verdict[1])
            raise ApiError("rate_limit", headers={"retry-after": str(max(math.ceil(wait), 1))})
        if self.concurrent is None:
            return _nothing
        self.store.hold(self.in_flight_key, lease)
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.store.drop(self.in_flight_key, lease)
            self.store.client.zrem(self.in_flight_key, lease)

        return release

    def reset(self) -> None:
        self.store.client.delete(self.started_key)


def _nothing() -> None:
    pass


class RedisBalance:
    def __init__(self, store: RedisStore, namespace: str) -> None:
        self.store = store
        self.initial = store.settings.balance_tokens
        self.key = store.key(namespace, "balance")

    @property
    def left(self) -> int | None:
        if self.initial is None:
            return None
        raw = self.store.client.get(self.key)
        return self.initial if raw is None else int(raw)

    @property
    def available(self) -> bool:
        left = self.left
        return left is None or left > 0

    def check(self) -> None:
        if not self.available:
            raise ApiError("insufficient_balance")

    def spend(self, tokens: int) -> None:
        if self.initial is not None:
            self.store.scripts["spend"](keys=[self.key], args=[self.initial, tokens])

    def reset(self) -> None:
        self.store.client.delete(self.key)


def prefixes(ids: Sequence[int], domain: str) -> list[bytes]:
    """Chained digests, one per whole unit of the prompt: each stands for the whole prefix,
    like PromptCache's keys, but the same in every process (Python's hash() of a str is not)."""
    digest = hashlib.blake2b(domain.encode(), digest_size=16).digest()
    out = []
    for end in range(UNIT, len(ids) + 1, UNIT):
        unit = array("q", ids[end - UNIT : end]).tobytes()
        digest = hashlib.blake2b(digest + unit, digest_size=16).digest()
        out.append(digest)
    return out


@dataclass(frozen=True, slots=True)
class RedisSpace(Space):
    """A space whose rule decision and prompt-cache hit share one round trip."""

    scenario: RedisRuleBook
    cache: RedisPrefixCache

    async def decide(
        self, chat: ChatRequest, headers: Mapping[str, str], dialect: str
    ) -> tuple[Rule, Callable[[], int]]:
        found = prefixes(chat.prompt_ids, cache_domain(chat))
        book = self.scenario
        rule, units = await book.adecide_with(chat, headers, dialect, found, self.cache.key)
        return rule, lambda: units * UNIT


class RedisPrefixCache:
    def __init__(self, store: RedisStore, namespace: str) -> None:
        self.store = store
        self.key = store.key(namespace, "prompt-cache")

    def hit(self, ids: Sequence[int], domain: str = "") -> int:
        if len(ids) < UNIT:
            return 0
        units = int(self.store.scripts["hit"](keys=[self.key], args=prefixes(ids, domain)))
        return units * UNIT

    def clear(self) -> None:
        self.store.client.delete(self.key)
