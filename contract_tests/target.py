"""What the suite talks to, and how much it may say: the `Target` and the request `Budget`.

A target is only an address, a key and a dialect. Whether a mock or a provider answers is the
conftest's business; the tests never ask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from mockserver.catalog import Era, era_moment
from mockserver.dialects import DIALECTS, Dialect

MOCK_KEY = "sk-contract"  # the only key the suite's own mocks accept, so a wrong one gets a 401
# Never a real key: the 401 case sends this one on purpose.
WRONG_KEY = "sk-contract-wrong-key-0000"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

DEFAULT_LIVE_BUDGET = 40  # requests per dialect; one dialect's live run sends about 20
DEFAULT_EXAMPLES = {"mock": 15, "live": 3}


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint under test. `base_url` is the server root: the dialect's own paths follow."""

    name: str  # "mock" or "live"
    base_url: str
    api_key: str = field(repr=False)  # kept out of every repr, traceback and report
    dialect: Dialect = field(repr=False)
    model: str = ""  # the model the suite chats with (the dialect's default unless overridden)
    models: tuple[str, ...] = ()  # what generated requests may pick from

    @property
    def id(self) -> str:
        return f"{self.name}-{self.dialect.name}"

    @property
    def sdk_base_url(self) -> str:
        """What an OpenAI SDK client takes as `base_url` for this target."""
        return self.base_url + self.dialect.sdk_path

    @property
    def loopback(self) -> bool:
        return (urlsplit(self.base_url).hostname or "") in LOOPBACK

    def __repr__(self) -> str:
        return f"Target({self.id} at {self.base_url})"


def select_dialects(requested: Iterable[str], *, live: bool, env: Mapping[str, str]) -> list[str]:
    """`--contract-dialect` values (repeatable, comma lists, "all"), else the default: every
    dialect against the mock, `CONTRACT_DIALECT` (or deepseek) live."""
    raw = list(requested)
    if not raw:
        raw = [env.get("CONTRACT_DIALECT") or "deepseek"] if live else ["all"]
    chosen: list[str] = []
    for item in raw:
        for name in (part.strip() for part in item.split(",")):
            if not name:
                continue
            if name == "all":
                names = list(DIALECTS)
            elif name in DIALECTS:
                names = [name]
            else:
                raise pytest.UsageError(
                    f"unknown contract dialect {name!r}; choose from: all, {', '.join(DIALECTS)}"
                )
            chosen += [n for n in names if n not in chosen]
    if not chosen:
        raise pytest.UsageError("no contract dialect selected")
    return chosen


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise pytest.UsageError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise pytest.UsageError(f"{name} must be at least 1, got {value}")
    return value


def missing_keys(dialects: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """The key variables a live run needs but does not have."""
    return [DIALECTS[d].key_env for d in dialects if not env.get(DIALECTS[d].key_env, "").strip()]


def era_of(dialect: str, env: Mapping[str, str]) -> Era:
    """The era a live run expects the provider to be in: `CONTRACT_ERA` (a date or an era's
    name), else the newest one the catalogue knows."""
    catalogs = [d.catalog for d in DIALECTS.values()]
    try:
        moment = era_moment(env.get("CONTRACT_ERA") or None, catalogs)
    except ValueError as exc:
        raise pytest.UsageError(f"CONTRACT_ERA: {exc}") from None
    return DIALECTS[dialect].catalog.at(moment)


def check_models(dialects: Iterable[str], env: Mapping[str, str]) -> None:
    """A model the era does not serve would fail every test with the provider's 400: say so
    once, before anything is sent."""
    for dialect in dialects:
        spec = DIALECTS[dialect]
        model = env.get("CONTRACT_MODEL") or spec.default_model
        era = era_of(dialect, env)
        if model not in era.models:
            served = ", ".join(era.models)
            raise pytest.UsageError(
                f"CONTRACT_MODEL={model!r} is not served by {spec.title} in the era "
                f"{era.name!r} (from {era.start:%Y-%m-%d}); it serves: {served}. "
                "Set CONTRACT_MODEL, or CONTRACT_ERA for an older API. Nothing was sent."
            )


def check_base_url(raw: str) -> None:
    """A wrong CONTRACT_BASE_URL fails every test the same way: say so once, up front."""
    if not raw.strip():
        return
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise pytest.UsageError(
            f"CONTRACT_BASE_URL must be an http(s) URL such as http://127.0.0.1:8000, got {raw!r}"
        )


def live_target(dialect: str, env: Mapping[str, str]) -> Target:
    spec = DIALECTS[dialect]
    base_url = (env.get("CONTRACT_BASE_URL") or spec.live_base_url).rstrip("/")
    model = env.get("CONTRACT_MODEL") or spec.default_model
    return Target("live", base_url, env[spec.key_env].strip(), spec, model, (model,))


def mock_target(dialect: str, base_url: str) -> Target:
    spec = DIALECTS[dialect]
    models = tuple(spec.catalog.newest.models)
    return Target("mock", base_url, MOCK_KEY, spec, spec.default_model, models)


class Budget:
    """Counts every request the suite sends; past `limit` (live runs only) a test fails before
    sending, so a loop gone wrong cannot run up a bill. The limit is `per_dialect` requests for
    each dialect of the run, so `CONTRACT_DIALECT=all` gets room for all three."""

    def __init__(self, per_dialect: int | None, dialects: int = 1) -> None:
        self.per_dialect = per_dialect
        self.dialects = dialects
        self.limit = None if per_dialect is None else per_dialect * dialects
        self.spent = 0
        self.refused = 0

    @property
    def setting(self) -> str:
        per = f"CONTRACT_MAX_REQUESTS={self.per_dialect}"
        return per if self.dialects == 1 else f"{per} per dialect, {self.dialects} dialects"

    def spend(self, what: str) -> None:
        if self.limit is not None and self.spent >= self.limit:
            self.refused += 1
            pytest.fail(
                f"request budget exhausted: {self.limit} requests already sent "
                f"({self.setting}); not sending {what}",
                pytrace=False,
            )
        self.spent += 1
