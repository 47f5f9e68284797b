"""Figures, targets, the markdown table and the JSON document."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    text: str  # as shown, e.g. "≥ 0.6× bare"
    met: Callable[[float, float | None], bool]  # (mock median, mock/bare ratio) → pass?


@dataclass(slots=True)
class Figure:
    key: str
    label: str
    unit: str
    mock: list[float] = field(default_factory=list)  # one value per round
    bare: list[float] | None = field(default_factory=list)  # None: the bare app has no such thing
    target: Target | None = None

    @property
    def mock_median(self) -> float:
        return statistics.median(self.mock) if self.mock else float("nan")

    @property
    def bare_median(self) -> float | None:
        if not self.bare:
            return None
        return statistics.median(self.bare)

    @property
    def ratio(self) -> float | None:
        bare = self.bare_median
        if bare is None or not self.mock:
            return None
        if bare == 0:
            return None if self.mock_median else 1.0
        return self.mock_median / bare

    @property
    def passed(self) -> bool | None:
        if self.target is None or not self.mock:
            return None
        return self.target.met(self.mock_median, self.ratio)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "mock": {"rounds": self.mock, "median": self.mock_median},
            "bare": None
            if self.bare is None
            else {"rounds": self.bare, "median": self.bare_median},
            "ratio": self.ratio,
            "target": None if self.target is None else self.target.text,
            "passed": self.passed,
        }


def number(value: float) -> str:
    if value != value:  # NaN: nothing was measured
        return "–"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}" if value else "0"


def cell(values: list[float] | None) -> str:
    if values is None:
        return "n/a"
    if not values:
        return "–"
    middle = number(statistics.median(values))
    low, high = min(values), max(values)
    if len(values) == 1 or low == high:
        return middle
    return f"{middle} ({number(low)}–{number(high)})"


def table(figures: list[Figure]) -> str:
    rows = [
        "| Figure | Unit | Mock: median (min–max) | Bare: median (min–max) | Mock/Bare | Target |",
        "|---|---|---|---|---|---|",
    ]
    for fig in figures:
        ratio = fig.ratio
        verdict = ""
        if fig.target is not None:
            verdict = f"{fig.target.text}: **{'pass' if fig.passed else 'MISS'}**"
        rows.append(
            f"| {fig.label} | {fig.unit} | {cell(fig.mock)} | {cell(fig.bare)} | "
            f"{'n/a' if ratio is None else f'{ratio:.2f}×'} | {verdict} |"
        )
    return "\n".join(rows)


def at_least_ratio(limit: float) -> Target:
    return Target(f"≥ {limit:g}× bare", lambda _m, ratio: ratio is not None and ratio >= limit)


def at_most(limit: float, unit: str) -> Target:
    return Target(f"≤ {limit:g} {unit}", lambda value, _r: value <= limit)


def below(limit: float, unit: str) -> Target:
    return Target(f"< {limit:g} {unit}", lambda value, _r: value < limit)


def zero() -> Target:
    return Target("0", lambda value, _r: value == 0)
