"""One test's view of a mock server: a namespace of its own, on a server in this process or
on one that other processes share (`pytest -n 4 --deepseek-mock-url http://127.0.0.1:8000`).

Both handles offer what a test uses: `base_url` and `url_for()` (which carry the namespace in
the path, `/ns/NAME`, so any client built from them is in it), `add()`, `reset()`, and the
namespace's `scenario` and `journal`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson

from mockserver.journal import Entry, entry_from_data
from mockserver.namespace_path import PREFIX
from mockserver.scenario import Rule, rule_from_json, rule_to_json
from mockserver.state import NAMESPACE_HEADER, JournalBook, RuleBook

if TYPE_CHECKING:
    from mockserver.server import MockServer
    from mockserver.settings import Settings

DEFAULT_API_KEY = "sk-deepseek-mock"


def namespace_for(test_id: str) -> str:
    """A namespace name for a test: readable, unique, and fit for a URL path segment."""
    plain = re.sub(r"[^A-Za-z0-9._:-]+", "_", test_id).strip("_.:-")[-80:].lstrip("_.:-")
    digest = hashlib.sha1(test_id.encode()).hexdigest()[:8]
    return f"{plain or 'test'}-{digest}"


class NamespacedMock:
    """A namespace of a server running in this process."""

    def __init__(self, server: MockServer, namespace: str) -> None:
        self.server = server
        self.namespace = namespace
        self.settings: Settings | None = server.settings
        self.mock = server.mock
        self.url = server.url + PREFIX + namespace
        space = server.space(namespace)
        self.scenario: RuleBook = space.scenario
        self.journal: JournalBook = space.journal
        self.api_key = server.settings.api_keys[0] if server.settings.api_keys else DEFAULT_API_KEY

    @property
    def base_url(self) -> str:
        return self.url_for((self.settings and self.settings.dialect) or "deepseek")

    def url_for(self, dialect: str) -> str:
        return self.mock.url_for(self.url, dialect)

    def add(self, *rules: Rule) -> None:
        for rule in rules:
            self.scenario.add(rule)

    def reset(self) -> None:
        self.mock.reset(self.namespace)

    def forget(self) -> None:
        self.mock.store.forget(self.namespace)


class RemoteRules:
    """A namespace's rules on another process's server, through its admin API."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def usage(self) -> list[tuple[Rule, int]]:
        usage = _ok(self._client.get("/__mock/scenario")).json()["usage"]
        return [(rule_from_json(item["rule"], i), item["uses"]) for i, item in enumerate(usage)]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule, _ in self.usage())

    def uses(self) -> dict[str, int]:
        uses: dict[str, int] = _ok(self._client.get("/__mock/scenario")).json()["uses"]
        return uses

    def replace(self, rules: Iterable[Rule]) -> None:
        _ok(self._client.put("/__mock/scenario", content=_scenario(rules)))

    def add(self, rule: Rule) -> None:
        _ok(self._client.post("/__mock/scenario", content=_scenario([rule])))


class RemoteJournal:
    """A namespace's journal on another process's server; `wait_for` waits there."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def _read(self, **params: str) -> dict[str, Any]:
        data: dict[str, Any] = _ok(
            self._client.get("/__mock/journal", params={"raw": "1", **params})
        ).json()
        return data

    def entries(self) -> list[Entry]:
        return [entry_from_data(item) for item in self._read()["raw"]]

    def __len__(self) -> int:
        return len(self._read()["raw"])

    def clear(self) -> None:
        _ok(self._client.delete("/__mock/journal"))

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Entry]:
        data = self._read(wait_for=str(count), timeout=f"{timeout:g}")
        if "timed_out" in data:
            raise AssertionError(data["timed_out"])
        return [entry_from_data(item) for item in data["raw"]]


class RemoteMock:
    """A namespace of a server in another process (shared by pytest-xdist workers, say)."""

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        admin_token: str | None = None,
        api_key: str = DEFAULT_API_KEY,
    ) -> None:
        if urlsplit(url).path.strip("/"):
            raise ConnectionError(
                f"{url}: give the server's root URL (such as http://127.0.0.1:8000); each test "
                "gets a namespace of its own there"
            )
        self.root = url.rstrip("/")
        self.namespace = namespace
        self.settings: Settings | None = None
        self.api_key = api_key
        self.url = self.root + PREFIX + namespace
        headers = {NAMESPACE_HEADER: namespace, "content-type": "application/json"}
        if admin_token:
            headers["authorization"] = f"Bearer {admin_token}"
        self._client = httpx.Client(base_url=self.root, headers=headers, timeout=70)
        try:
            health = _ok(self._client.get("/__mock/health")).json()
        except httpx.HTTPError as exc:
            self._client.close()
            raise ConnectionError(f"no deepseek-mock answers at {self.root}: {exc}") from None
        self.base_paths: dict[str, str] = health["base_paths"]
        self.scenario = RemoteRules(self._client)
        self.journal = RemoteJournal(self._client)

    @property
    def base_url(self) -> str:
        return self.url_for(
            "deepseek" if "deepseek" in self.base_paths else next(iter(self.base_paths))
        )

    def url_for(self, dialect: str) -> str:
        if dialect not in self.base_paths:
            raise ValueError(f"this server does not speak {dialect!r}")
        return self.url + self.base_paths[dialect]

    def add(self, *rules: Rule) -> None:
        _ok(self._client.post("/__mock/scenario", content=_scenario(rules)))

    def reset(self) -> None:
        _ok(self._client.post("/__mock/reset"))

    def forget(self) -> None:
        _ok(self._client.delete("/__mock/namespace"))

    def close(self) -> None:
        self._client.close()


def _scenario(rules: Iterable[Rule]) -> bytes:
    return orjson.dumps({"rules": [rule_to_json(rule) for rule in rules]})


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise RuntimeError(
            f"deepseek-mock admin API: {response.request.method} {response.request.url.path} "
            f"answered {response.status_code}: {response.text[:500]}"
        )
    return response
