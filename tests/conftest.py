"""Shared fixtures for the server's own tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from mockserver.server import MockServer
from mockserver.settings import Settings

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


@pytest.fixture(scope="session")
def server() -> Iterator[MockServer]:
    """One real server on 127.0.0.1 speaking all three dialects, checking its own output."""
    with MockServer(Settings(port=0, self_check=True)) as running:
        yield running


@pytest.fixture
def mock(server: MockServer) -> Iterator[MockServer]:
    """The session server, reset for this test."""
    server.reset()
    yield server
    server.reset()
