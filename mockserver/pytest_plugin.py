"""pytest plugin: fixtures that hand a test a running deepseek-mock."""

from __future__ import annotations
