"""Figures, targets, the markdown table and the JSON document."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

MOCK = "mock"
BARE = "bare"
THROUGHPUT = ("req/s", "events/s")  # units where higher is better


@dataclass(frozen=True, slots=True)
class Target:
    text: str  # as shown, e.g. "≥ 0.6× bare"
    met: Callable[[Figure], bool | None]  # None: not measured in this run (e.g. no peers)
    # What the row's peer column shows when the figure has no peers of its own but is judged
    # against another row's (so a reader can check the verdict); None: nothing.
    peer_cell: Callable[[Figure], str | None] | None = None


@dataclass(slots=True)
class Figure:
    """One row: its rounds per column. The columns are the mock, the bare app and any peers;
    a column a figure does not have (a peer that cannot do it, the bare app's pacing) is
    absent and shows as n/a."""

    key: str
    label: str
    unit: str
    values: dict[str, list[float]] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)

    def rounds(self, column: str) -> list[float] | None:
        return self.values.get(column)

    def median(self, column: str) -> float | None:
        values = self.values.get(column)
        return statistics.median(values) if values else None

    @property
    def mock(self) -> list[float]:
        return self.values.setdefault(MOCK, [])

    @property
    def mock_median(self) -> float:
        value = self.median(MOCK)
        return float("nan") if value is None else value

    @property
    def bare_median(self) -> float | None:
        return self.median(BARE)

    @property
    def ratio(self) -> float | None:
        """The mock's median over the bare app's."""
        return _ratio(self.median(MOCK), self.bare_median)

    @property
    def peers(self) -> list[str]:
        return [c for c in self.values if c not in (MOCK, BARE) and self.values[c]]

    @property
    def fastest_peer(self) -> str | None:
        """The peer with the best median, for throughput figures only."""
        if self.unit not in THROUGHPUT or not self.peers:
            return None
        return max(self.peers, key=lambda peer: self.median(peer) or 0.0)

    @property
    def peer_ratio(self) -> float | None:
        """The mock's median over the fastest peer's."""
        fastest = self.fastest_peer
        return None if fastest is None else _ratio(self.median(MOCK), self.median(fastest))

    def verdicts(self) -> list[tuple[Target, bool | None]]:
        if not self.values.get(MOCK):
            return [(target, None) for target in self.targets]
        return [(target, target.met(self)) for target in self.targets]

    @property
    def passed(self) -> bool | None:
        """False if any target is missed; None when there is nothing to judge."""
        results = [met for _, met in self.verdicts() if met is not None]
        return all(results) if results else None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "columns": {
                column: {"rounds": values, "median": self.median(column)}
                for column, values in self.values.items()
            },
            "ratio": self.ratio,
            "fastest_peer": self.fastest_peer,
            "peer_ratio": self.peer_ratio,
            "targets": [{"target": target.text, "passed": met} for target, met in self.verdicts()],
            "passed": self.passed,
        }


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None:
        return None
    if base == 0:
        return None if value else 1.0
    return value / base


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


def table(figures: list[Figure], peers: Sequence[str] = ()) -> str:
    """The markdown table: a column per server, the ratios, the targets' verdicts."""
    head = ["Figure", "Unit", "Mock: median (min–max)", "Bare: median (min–max)"]
    head += [f"{peer}: median (min–max)" for peer in peers]
    head += ["Mock/Bare"] + (["Mock/fastest peer"] if peers else []) + ["Target"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for fig in figures:
        cells = [fig.label, fig.unit, cell(fig.rounds(MOCK)), cell(fig.rounds(BARE))]
        cells += [cell(fig.rounds(peer)) for peer in peers]
        cells.append(times(fig.ratio))
        if peers:
            fastest = fig.fastest_peer
            cells.append(
                f"{times(fig.peer_ratio)} ({fastest})" if fastest is not None else borrowed(fig)
            )
        cells.append("; ".join(verdict(target, met) for target, met in fig.verdicts()))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def borrowed(fig: Figure) -> str:
    """The peer ratio a target of the row brings from another row, or an empty cell."""
    for target in fig.targets:
        shown = None if target.peer_cell is None else target.peer_cell(fig)
        if shown is not None:
            return shown
    return ""


def times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}×"


def verdict(target: Target, met: bool | None) -> str:
    word = "n/a" if met is None else "pass" if met else "MISS"
    return f"{target.text}: **{word}**" if met is not None else f"{target.text}: {word}"


def at_least_ratio(limit: float) -> Target:
    def met(fig: Figure) -> bool | None:
        ratio = fig.ratio
        return None if ratio is None else ratio >= limit

    return Target(f"≥ {limit:g}× bare", met)


def at_least_peer_ratio(limit: float) -> Target:
    def met(fig: Figure) -> bool | None:
        ratio = fig.peer_ratio
        return None if ratio is None else ratio >= limit

    return Target(f"≥ {limit:g}× fastest peer", met)


def at_least_peer_ratio_of(limit: float, other: Figure) -> Target:
    """Against the fastest peer of another row: the peers have no generated replies, so the
    mock's generated answers are held to the peers' canned ones."""

    def ratio(fig: Figure) -> float | None:
        fastest = other.fastest_peer
        return None if fastest is None else _ratio(fig.median(MOCK), other.median(fastest))

    def met(fig: Figure) -> bool | None:
        found = ratio(fig)
        return None if found is None else found >= limit

    def peer_cell(fig: Figure) -> str | None:
        found = ratio(fig)
        return None if found is None else f"{times(found)} ({other.fastest_peer}'s canned)"

    return Target(f"≥ {limit:g}× fastest peer's canned", met, peer_cell)


def at_most(limit: float, unit: str) -> Target:
    return Target(f"≤ {limit:g} {unit}", lambda fig: fig.mock_median <= limit)


def below(limit: float, unit: str) -> Target:
    return Target(f"< {limit:g} {unit}", lambda fig: fig.mock_median < limit)


def zero() -> Target:
    return Target("0", lambda fig: fig.mock_median == 0)
