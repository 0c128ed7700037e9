"""The planner benchmark measures what it says: a source of exactly the size asked for, and a
"synced" Pleo that really leaves the planner nothing to do."""

from __future__ import annotations

import pytest

from bench import bench_planner
from bench.__main__ import discover

pytestmark = pytest.mark.unit


def test_the_generated_source_has_the_entities_asked_for_in_every_kind() -> None:
    reader = bench_planner.GeneratedReader(1_003)

    streams = [
        reader.tag_groups(),
        reader.tags(),
        reader.tax_codes(),
        reader.vendors(),
        reader.accounts(),
    ]

    sizes = [sum(1 for _ in stream) for stream in streams]
    assert sum(sizes) == 1_003
    assert all(size > 0 for size in sizes)


@pytest.mark.parametrize(("scenario", "changes"), [("empty_pleo", 1_000), ("synced_pleo", 0)])
def test_each_scenario_plans_what_it_claims(scenario: str, changes: int) -> None:
    result = bench_planner.measure(scenario, 1_000)

    assert result["ok"]
    assert result["changes"] == changes
    assert result["problems"] == 0


def test_make_bench_runs_it() -> None:
    assert "bench_planner" in discover(["planner"])
