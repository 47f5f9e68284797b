"""How one server instance runs. Frozen: a running server never changes its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mockserver.delivery import PLAIN, Delivery
from mockserver.scenario import Rule


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    dialect: str | None = None  # None: DeepSeek at /, AceData at /deepseek, AI/ML under a prefix
    aimlapi_prefix: str = "/aimlapi"  # where the AI/ML API lives when all dialects share a server
    seed: int = 0
    api_keys: tuple[str, ...] = ()  # empty: any non-empty key is accepted
    max_body_bytes: int = 8 * 1024 * 1024
    rules: tuple[Rule, ...] = ()  # rules that come first (e.g. from --fault)
    fixtures: tuple[Path, ...] = ()  # scenario files or folders, loaded in order
    captured_replies: bool = True  # then fixtures/replies: the live captures' own examples
    delivery: Delivery = field(default=PLAIN)  # the server-wide timing, under any rule's
    max_concurrent: int | None = None  # chat requests in flight before a 429
    rate_limit: int | None = None  # chat requests per `rate_window` seconds before a 429
    rate_window: float = 60.0
    balance_tokens: int | None = None  # tokens the account may spend; then 402 (None: unlimited)
    journal_size: int = 1000
    # Where the state lives (mockserver/state): None or "memory" for this process, or
    # "redis://HOST:PORT/DB", which several workers and instances share.
    state: str | None = None
    workers: int = 1  # uvicorn worker processes (above 1 needs a shared state)
    lease_seconds: float = 10.0  # a dead worker's concurrency slots come back after this
    admin_token: str | None = None  # when set, /__mock/ asks for `Authorization: Bearer <token>`
    # The socket edge (mockserver/connections.py): a request that takes longer to arrive gets
    # 408 and its connection closed; connections past the cap get 503 and are closed.
    header_timeout: float = (
        10.0  # seconds for a request's headers, from its connection or first byte
    )
    body_timeout: float = 30.0  # seconds for its body, from the end of the headers
    max_connections: int | None = None  # None: the open-file limit less 64
    self_check: bool = False  # validate every response against schemas/ before it is sent
    era: str | None = None  # a date or an era's name (see --era); None: the newest era
    catalogs: tuple[Path, ...] = ()  # catalogue files that replace a dialect's packaged one
    # Cassettes (mockserver/replay.py): None serves the mock; a folder replays and records.
    cassettes: Path | None = None
    cassette: str = "default"  # the cassette a request without X-Mock-Cassette uses
    record_mode: str = "none"  # none, once, new_episodes, all (vcrpy's names)
    replay_speed: float = 1.0  # recorded offsets are divided by this; 0: as fast as possible
    upstream: str | None = None  # where recording forwards to; None: the provider's own URL
    match_ignore: tuple[str, ...] = ("user",)  # body fields matching ignores (a.b, a[].b)
