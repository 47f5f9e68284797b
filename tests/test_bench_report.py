"""The benchmark's table: peer columns, the mock-vs-fastest-peer ratio, several targets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from tests.bench.__main__ import notes
from tests.bench.report import (
    Figure,
    at_least_peer_ratio,
    at_least_peer_ratio_of,
    at_least_ratio,
    table,
)
from tests.bench.runner import FULL, Bench


def throughput() -> Figure:
    return Figure(
        "ns.c16.rps",
        "non-streaming c=16: throughput",
        "req/s",
        values={"mock": [10.0], "bare": [20.0], "aimock": [5.0, 7.0], "llmock": [3.0]},
        targets=[at_least_ratio(0.8), at_least_peer_ratio(1.5)],
    )


def test_fastest_peer_is_the_best_median() -> None:
    fig = throughput()
    assert fig.fastest_peer == "aimock"
    assert fig.peer_ratio == 10.0 / 6.0
    assert [met for _, met in fig.verdicts()] == [False, True]
    assert fig.passed is False


def test_latency_has_no_fastest_peer() -> None:
    fig = Figure("p99", "latency", "ms", values={"mock": [1.0], "aimock": [2.0]})
    assert fig.fastest_peer is None and fig.peer_ratio is None


def test_table_has_a_column_per_peer_and_the_peer_ratio() -> None:
    lines = table([throughput()], ["aimock", "llmock", "fakellm"]).splitlines()
    assert lines[0] == (
        "| Figure | Unit | Mock: median (min–max) | Bare: median (min–max) "
        "| aimock: median (min–max) | llmock: median (min–max) | fakellm: median (min–max) "
        "| Mock/Bare | Mock/fastest peer | Target |"
    )
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[4:7] == ["6.00 (5.00–7.00)", "3.00", "n/a"]
    assert cells[7:9] == ["0.50×", "1.67× (aimock)"]
    assert cells[9] == "≥ 0.8× bare: **MISS**; ≥ 1.5× fastest peer: **pass**"


def test_without_peers_the_peer_target_is_not_judged() -> None:
    fig = throughput()
    del fig.values["aimock"], fig.values["llmock"]
    fig.values["mock"] = [18.0]
    lines = table([fig]).splitlines()
    assert "Mock/fastest peer" not in lines[0]
    assert lines[2].endswith("| 0.90× | ≥ 0.8× bare: **pass**; ≥ 1.5× fastest peer: n/a |")
    assert fig.passed is True


def test_a_generated_row_is_held_to_the_peers_canned_figures() -> None:
    canned = throughput()
    generated = Figure(
        "nsg.c16.rps",
        "generated",
        "req/s",
        values={"mock": [8.0], "bare": [20.0]},
        targets=[at_least_peer_ratio_of(1.5, canned)],
    )
    assert generated.verdicts()[0][1] is False  # 8 / 6 < 1.5
    generated.values["mock"] = [9.5]
    assert generated.passed is True
    assert generated.targets[0].text == "≥ 1.5× fastest peer's canned"
    # The row has no peer figures of its own: its peer column shows the ratio it is judged by.
    row = table([canned, generated], peers=["aimock"]).splitlines()[3]
    assert f"| {9.5 / 6:.2f}× (aimock's canned) |" in row


def _notes_for(client_shares: dict[str, list[float]]) -> str:
    bench = SimpleNamespace(
        diagnostics={"client_cpu_pct.mock.c16": [30.0], **client_shares},
        plan=FULL,
        loadgen="wrk",
        peers=[],
    )
    return notes(cast(Bench, bench), pinned=True, elapsed=1.0)


def test_the_notes_name_a_stream_row_the_client_limited() -> None:
    said = _notes_for(
        {
            "client_cpu_pct.mock.streams1": [40.0],
            "client_cpu_pct.bare.streams1": [96.0],  # the busiest server's round counts
            "client_cpu_pct.mock.streams1000": [38.0],
        }
    )
    assert "96% (streams)" in said
    assert "reached 85% or more at 1 stream(s)" in said
    assert "so they are not the limit" not in said


def test_the_notes_clear_the_clients_when_none_was_busy() -> None:
    said = _notes_for({"client_cpu_pct.mock.streams100": [50.0]})
    assert "30% (requests) and 50% (streams) of theirs, so they are not the limit." in said
