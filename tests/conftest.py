"""Shared fixtures for the server's own tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from mockserver.server import MockServer
from mockserver.settings import Settings
from tests.redis_server import redis_server

pytest_plugins = ["pytester"]

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=40, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# Most of the suite was written against DeepSeek's late-2025 API (deepseek-chat and
# deepseek-reasoner, V3.2): `server`/`mock` keep answering as of that era, so what they pin stays
# reachable (`--era v3.2`). What changed since is tested on `server_now`/`mock_now`, the default
# a user gets.
LATE_2025 = "v3.2"


def _running(era: str | None) -> Iterator[MockServer]:
    with MockServer(Settings(port=0, self_check=True, era=era)) as running:
        yield running


def _reset_around(server: MockServer) -> Iterator[MockServer]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture(scope="session")
def server() -> Iterator[MockServer]:
    """One real server on 127.0.0.1 speaking all three dialects as of late 2025, checking its
    own output."""
    yield from _running(LATE_2025)


@pytest.fixture
def mock(server: MockServer) -> Iterator[MockServer]:
    """The late-2025 session server, reset for this test."""
    yield from _reset_around(server)


@pytest.fixture(scope="session")
def server_now() -> Iterator[MockServer]:
    """A real server in the newest era (the default), checking its own output."""
    yield from _running(None)


@pytest.fixture
def mock_now(server_now: MockServer) -> Iterator[MockServer]:
    """The newest-era session server, reset for this test."""
    yield from _reset_around(server_now)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on 127.0.0.1, for the whole session (tests/redis_server.py)."""
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_db(redis_url: str) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushall()
    return redis_url + "/0"
