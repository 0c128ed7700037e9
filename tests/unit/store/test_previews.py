"""The dry-run item on moto: one per installation, the newest request wins, a dry run starts and
ends only while it is the newest, its plan reads back as kept, and it goes with the installation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pleo_connector.store.dynamodb import s
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.store.previews import (
    PREVIEW_LOST_AFTER_S,
    PlannedRecord,
    PlanSummary,
    PreviewRepository,
)
from pleo_connector.store.sync_runs import RunProblem
from pleo_connector.vocabulary import (
    Action,
    AuthMethod,
    InstallationStatus,
    Kind,
    PreviewState,
    UnknownStoredValueError,
)

if TYPE_CHECKING:
    from pleo_connector.store.dynamodb import DynamoTable
    from tests.unit.store.support import FakeClock

pytestmark = pytest.mark.unit

SUMMARY = PlanSummary(
    counts={(Kind.VENDOR, Action.ARCHIVE): 1, (Kind.ACCOUNT, Action.CREATE): 12},
    samples={
        (Kind.VENDOR, Action.ARCHIVE): (PlannedRecord("Old supplier", "V-9"),),
        (Kind.ACCOUNT, Action.CREATE): (PlannedRecord("Bank", "5820"), PlannedRecord("Ø", "1")),
    },
    refused=(RunProblem(Kind.TAX_CODE, "Fixed", "an amount, not a percentage"),),
    refused_total=3,
    notes=(RunProblem(Kind.VENDOR, "V-1", "the name was cleaned"),),
)


def test_a_request_is_queued_and_reads_back_with_what_it_tries(
    table: DynamoTable, clock: FakeClock
) -> None:
    previews = PreviewRepository(table, clock=clock)
    sealed = {"adapter": "gnucash", "values": {"book": "/books/demo.gnucash"}, "secrets": {}}

    asked = previews.request("inst-1", connection=sealed, sync_choices={"vendors": False})

    found = previews.get("inst-1")
    assert found == asked
    assert found.state is PreviewState.QUEUED
    assert found.connection == sealed
    assert found.sync_choices == {"vendors": False}
    assert previews.get("inst-2") is None


def test_a_newer_request_replaces_the_older_which_can_then_neither_start_nor_end(
    table: DynamoTable, clock: FakeClock
) -> None:
    previews = PreviewRepository(table, clock=clock)
    older = previews.request("inst-1")
    newer = previews.request("inst-1")

    assert older.preview_id != newer.preview_id
    assert previews.start("inst-1", older.preview_id) is None
    assert not previews.finish("inst-1", older.preview_id, SUMMARY)
    assert not previews.fail("inst-1", older.preview_id, "too late")
    assert previews.get("inst-1") == newer


def test_a_finished_plan_reads_back_as_kept_and_drops_the_settings_it_tried(
    table: DynamoTable, clock: FakeClock
) -> None:
    previews = PreviewRepository(table, clock=clock)
    asked = previews.request("inst-1", connection={"values": {"book": "x"}, "secrets": {}})
    started = previews.start("inst-1", asked.preview_id)
    assert started is not None
    assert started.state is PreviewState.RUNNING
    clock.advance(4)

    assert previews.finish("inst-1", asked.preview_id, SUMMARY)

    done = previews.get("inst-1")
    assert done is not None
    assert done.state is PreviewState.READY
    assert done.summary == SUMMARY
    # In the order a sync applies them (tax codes, vendors, accounts), as the page lists them.
    assert list(done.summary.counts) == list(SUMMARY.counts)
    assert list(done.summary.samples) == list(SUMMARY.samples)
    assert done.connection is None
    assert done.updated_at == clock.now
    # Finished: a second delivery of the same message does not plan again.
    assert previews.start("inst-1", asked.preview_id) is None


def test_a_failure_keeps_its_message_for_the_page(table: DynamoTable, clock: FakeClock) -> None:
    previews = PreviewRepository(table, clock=clock)
    asked = previews.request("inst-1")

    assert previews.fail("inst-1", asked.preview_id, "The GnuCash book was not found.")

    failed = previews.get("inst-1")
    assert failed is not None
    assert failed.state is PreviewState.FAILED
    assert failed.message == "The GnuCash book was not found."


def test_an_unfinished_dry_run_left_too_long_shows_as_lost(
    table: DynamoTable, clock: FakeClock
) -> None:
    previews = PreviewRepository(table, clock=clock)
    asked = previews.request("inst-1")

    assert asked.shown_state(clock.now + PREVIEW_LOST_AFTER_S) is PreviewState.QUEUED
    assert asked.shown_state(clock.now + PREVIEW_LOST_AFTER_S + 1) is PreviewState.LOST
    previews.start("inst-1", asked.preview_id)
    previews.finish("inst-1", asked.preview_id, SUMMARY)
    done = previews.get("inst-1")
    assert done is not None
    assert done.shown_state(clock.now + 10 * PREVIEW_LOST_AFTER_S) is PreviewState.READY


def test_a_state_that_is_never_stored_is_refused_on_read(table: DynamoTable) -> None:
    previews = PreviewRepository(table)
    previews.request("inst-1")
    table.update(
        {"pk": s("INST#inst-1"), "sk": s("PREVIEW")},
        update="SET #state = :lost",
        names={"#state": "state"},
        values={":lost": s("lost")},
    )

    with pytest.raises(UnknownStoredValueError):
        previews.get("inst-1")


def test_the_dry_run_goes_with_its_installation(table: DynamoTable) -> None:
    installations = InstallationRepository(table)
    installations.create_or_update(
        InstallationRecord(
            installation_id="inst-1",
            company_id="company-1",
            status=InstallationStatus.ACTIVATED,
            auth_method=AuthMethod.API_KEY,
        )
    )
    previews = PreviewRepository(table)
    previews.request("inst-1")

    installations.delete_all("inst-1")

    assert previews.get("inst-1") is None
