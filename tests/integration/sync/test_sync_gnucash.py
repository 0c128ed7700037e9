"""The demo book synced through the real worker (`ADAPTER=gnucash`, built by `build_worker`) on
DynamoDB Local, moto and the Pleo emulator: the first sync makes Pleo hold exactly what the
mapping of docs/adapters.md says, a second one writes nothing, and the demo's three changes (a
vendor renamed, an account hidden, a job added) are applied as exactly three writes. An awkward
book's notices reach the run's record, and an unreadable book is a counted source failure."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest

from local import gnucash_books as books
from pleo_connector.vocabulary import Kind, SyncOutcome
from tests.integration.sync.engine_world import EngineWorld, sync_once, worker
from tests.integration.sync.gnucash_world import (
    assert_counted_source_failure,
    expected_pleo,
    pleo_now,
    writes,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.sync.engine_world import InstallWorld
    from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.integration


@pytest.fixture
def world(install_world: InstallWorld, tmp_path: Path) -> EngineWorld:
    """An activated API-key installation whose settings name a demo book on disk."""
    return install_world(books.write_demo_book(tmp_path / "nordlys.gnucash"), "gnucash")


def test_the_demo_book_syncs_as_mapped_then_nothing_then_exactly_the_three_changes(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    deps, _ = worker(world.env)

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED
    assert pleo_now(emulator, world) == expected_pleo(world.source)
    first = world.runs.last_run(world.installation_id)
    assert first is not None
    assert first.problems == ()

    emulator.control.clear_request_log()
    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED
    assert writes(emulator) == Counter()

    vendor, name = books.DEMO_CHANGES["rename_vendor"]
    books.rename_vendor(world.source, str(vendor), str(name))
    books.hide_account(world.source, str(books.DEMO_CHANGES["hide_account"]))
    job, job_name, customer = books.DEMO_CHANGES["add_job"]
    books.add_job(world.source, str(job), str(job_name), str(customer))
    emulator.control.clear_request_log()

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED

    assert sum(writes(emulator).values()) == 3
    assert pleo_now(emulator, world) == expected_pleo(world.source)
    latest = world.runs.last_run(world.installation_id)
    assert latest is not None
    assert sum(latest.applied.values()) == 3
    assert {kind for kind, _ in latest.applied} == {Kind.VENDOR, Kind.ACCOUNT, Kind.TAG}


def test_an_awkward_books_notices_reach_the_runs_record(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    books.write_awkward_book(world.source)
    deps, _ = worker(world.env)

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED

    run = world.runs.last_run(world.installation_id)
    assert run is not None
    told = {(problem.kind, problem.reference) for problem in run.problems}
    assert {
        (Kind.TAX_CODE, "Miljøafgift"),
        (Kind.TAX_CODE, "Blandet"),
        (Kind.ACCOUNT, "4330"),
        (Kind.VENDOR, "V3"),
        (Kind.VENDOR, "V1"),  # the planner's duplicate
    } <= told
    assert run.failed[Kind.TAX_CODE] >= 2
    names = {row["name"] for row in emulator.control.data(world.company_id)["accounts"]}
    assert {"Café Müller", "東京 事務所 Kontor", "Søren's Bøger"} <= names


def test_a_locked_book_is_a_counted_source_failure_and_recovers(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    deps, _ = worker(world.env)
    books.make_unreadable(world.source, "locked")

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SOURCE_FAILED

    assert_counted_source_failure(world, emulator, "locked")

    books.restore_readable(world.source)
    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED
    assert world.record().failure_count == 0
