"""What a server's handlers share: its settings, its dialects and eras, its responder, and
its state (`store`, one space per namespace). The app builds one; the admin API, the live page,
the OpenAPI documents and replay read it, without importing the app.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mockserver import tokens
from mockserver.catalog import ERA_HEADER, Catalog, Era, era_moment
from mockserver.dialects import Dialect
from mockserver.errors import ApiError
from mockserver.responder import Responder
from mockserver.scenario import Rule
from mockserver.settings import Settings
from mockserver.state import (
    DEFAULT_NAMESPACE,
    Space,
    Store,
    namespace_in_scope,
    namespace_of,
)
from mockserver.templates import Templates
from mockserver.validated import Validated
from mockserver.wire import OpenBodies

if TYPE_CHECKING:
    from mockserver.replay import Tapes

SPACE_KEY = "mock.space"  # where a request's space is kept in its scope's state


@dataclass(frozen=True, slots=True)
class Mock:
    """What the handlers share, built once per app. Nothing global: what requests change
    lives in `store`, one space per namespace (mockserver/state)."""

    settings: Settings
    store: Store
    responder: Responder
    mounts: tuple[tuple[str, Dialect], ...]
    catalogs: Mapping[str, Catalog]
    moment: datetime  # the date the server behaves as of (--era)
    startup: tuple[Rule, ...] = ()
    bodies: OpenBodies = field(default_factory=OpenBodies)
    tapes: Tapes | None = None  # cassettes to replay and record (--cassettes)
    validated: Validated = field(default_factory=Validated)  # accepted bodies, by their bytes
    templates: Templates = field(default_factory=Templates)  # answers asked for again
    # The era of each catalogue at `moment`, found once (`era` asks on every request).
    eras_now: dict[str, Era] = field(default_factory=dict, repr=False)

    def space(self, headers: Mapping[str, str]) -> Space:
        """The state of the request's namespace (`X-Mock-Namespace`, else the default)."""
        return self.store.space(namespace_of(headers))

    def space_in(self, scope: MutableMapping[str, Any]) -> Space:
        """`space()` for an ASGI request, looked up once: the journal and the endpoint both
        ask, so it is kept in the request's state. A name that is not allowed raises."""
        state = scope.setdefault("state", {})
        found: Space | None = state.get(SPACE_KEY)
        if found is None:
            found = state[SPACE_KEY] = self.store.space(namespace_in_scope(scope))
        return found

    def reset(self, namespace: str = DEFAULT_NAMESPACE) -> None:
        """A namespace back to how the server started: its own rules, an empty journal, a cold
        cache, fresh limits and balance."""
        self.store.space(namespace).reset(self.startup)
        if self.tapes is not None:
            self.tapes.reset()
        self.responder.cache.clear()
        self.validated.clear()
        self.templates.clear()
        tokens.clear_cache()

    def era(self, dialect: Dialect, headers: Mapping[str, str]) -> Era:
        """The era this request is answered in: `X-Mock-Era`, else the server's."""
        name = dialect.catalog_name or dialect.name
        asked = headers.get(ERA_HEADER)
        if not asked:
            found = self.eras_now.get(name)
            if found is None:
                found = self.eras_now[name] = self.catalogs[name].at(self.moment)
            return found
        catalog = self.catalogs[name]
        try:
            return catalog.at(era_moment(asked, self.catalogs.values()))
        except ValueError as exc:
            raise ApiError("invalid_request", f"{ERA_HEADER}: {exc}") from None

    def url_for(self, root: str, dialect: str) -> str:
        """The base URL of one dialect on a server at `root` (AI/ML sits under a prefix when
        shared); `"anthropic"` gives DeepSeek's Anthropic API, the `anthropic` SDK's."""
        for prefix, mounted in self.mounts:
            if mounted.name == dialect:
                return root + prefix + mounted.sdk_path
        raise ValueError(f"this server does not speak {dialect!r}")

    def named(self, name: str) -> Dialect:
        return next(dialect for _, dialect in self.mounts if dialect.name == name)

    def dialect_for(self, path: str) -> Dialect:
        """The dialect whose envelope an unrouted path gets: the longest matching prefix."""
        best = self.mounts[0][1]
        length = -1
        for prefix, dialect in self.mounts:
            owned = prefix + dialect.home
            if path.startswith(owned) and len(owned) > length:
                best, length = dialect, len(owned)
        return best
