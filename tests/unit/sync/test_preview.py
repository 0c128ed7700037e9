"""The worker's dry run, with fakes for Pleo, the store and the steps: it plans as a sync plans,
writes nothing (no apply, no status, no lease, no run record), keeps the plan for the page, and
keeps a failure's reason instead of retrying."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.records import SourceNotice
from pleo_connector.aio import run
from pleo_connector.installation_config import seal_connection
from pleo_connector.pleo.errors import InternalServerError
from pleo_connector.store.previews import PlannedRecord
from pleo_connector.store.sync_runs import RunProblem
from pleo_connector.sync.model import Change, Entry, Plan, RecordProblem
from pleo_connector.sync.preview import NOT_COMPLETED, NOTHING_TO_READ, summarise
from pleo_connector.sync.worker import run_sync
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import (
    Action,
    AuthMethod,
    InstallationStatus,
    Kind,
    PreviewState,
    SyncOutcome,
    SyncReason,
)
from tests.unit.connect.fakes import (
    INSTALLATION,
    FakeCipher,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleoClients,
    FakePreviews,
    FakeQueue,
    FakeRuns,
    installation,
    record,
    sync_deps,
)
from tests.unit.sync.fakes import SETTINGS, FakeAdapter, ScriptedSteps, configured, creates

if TYPE_CHECKING:
    from pleo_connector.store.installations import InstallationRecord

pytestmark = pytest.mark.unit


class World:
    def __init__(
        self,
        local: InstallationRecord,
        *,
        plan: Plan | None = None,
        open_error: Exception | None = None,
    ) -> None:
        self.installations = FakeInstallations(local)
        self.api = FakeInstallationsApi(installation(InstallationStatus.AUTHORIZED))
        self.steps = ScriptedSteps(self.api, plans=[plan or Plan()])
        self.adapter = FakeAdapter(open_error=open_error)
        self.runs = FakeRuns()
        self.queue = FakeQueue()
        self.previews = FakePreviews()
        self.deps = sync_deps(
            self.installations,
            FakePleoClients(self.api),
            runs=self.runs,
            queue=self.queue,
            steps=self.steps,
            adapter=self.adapter,
            previews=self.previews,
        )

    def ask(
        self,
        connection: dict[str, Any] | None = None,
        sync_choices: dict[str, Any] | None = None,
    ) -> str:
        asked = self.previews.request(
            INSTALLATION, connection=connection, sync_choices=sync_choices
        )
        return asked.preview_id

    def preview(self, preview_id: str | None) -> str:
        request = SyncRequest(
            installation_id=INSTALLATION, reason=SyncReason.PREVIEW, preview_id=preview_id
        )
        return run(run_sync(self.deps, request))

    def assert_nothing_written(self) -> None:
        assert "apply" not in self.steps.calls
        assert self.api.updates == []
        assert self.api.activated == 0
        assert self.runs.acquired_for == []  # no lease: a dry run never stands in a sync's way
        assert self.runs.runs == []
        assert self.queue.sent == []


def test_a_dry_run_plans_with_reads_only_and_keeps_the_plan() -> None:
    world = World(configured(InstallationStatus.AUTHORIZED), plan=creates("DEPT", "PROJ"))
    preview_id = world.ask()

    assert world.preview(preview_id) == SyncOutcome.PREVIEWED

    world.assert_nothing_written()
    assert world.steps.calls == ["read_pleo", "plan"]
    assert world.adapter.opened == [SETTINGS]
    kept = world.previews.get(INSTALLATION)
    assert kept is not None
    assert kept.state is PreviewState.READY
    assert kept.summary is not None
    assert kept.summary.counts == {(Kind.TAG_GROUP, Action.CREATE): 2}
    assert kept.summary.samples[(Kind.TAG_GROUP, Action.CREATE)] == (
        PlannedRecord("DEPT", "DEPT"),
        PlannedRecord("PROJ", "PROJ"),
    )


def test_a_dry_run_of_unsaved_settings_reads_those_and_saves_nothing() -> None:
    unsaved = SETTINGS.model_validate(
        {"source_url": "https://other.example/export", "api_token": "other-token"}
    )
    world = World(record(InstallationStatus.AUTHORIZED, AuthMethod.API_KEY))
    sealed = seal_connection(FakeCipher(), INSTALLATION, "placeholder", unsaved)
    preview_id = world.ask(connection=sealed, sync_choices={"tag_groups": [], "vendors": False})

    assert world.preview(preview_id) == SyncOutcome.PREVIEWED

    assert world.adapter.opened == [unsaved]
    stored = world.installations.get(INSTALLATION)
    assert stored is not None
    assert stored.config == {}  # the tried settings were not saved
    world.assert_nothing_written()


def test_a_dry_run_before_any_settings_says_there_is_nothing_to_read() -> None:
    world = World(record(InstallationStatus.AUTHORIZED, AuthMethod.API_KEY))
    preview_id = world.ask()

    assert world.preview(preview_id) == SyncOutcome.PREVIEWED

    failed = world.previews.get(INSTALLATION)
    assert failed is not None
    assert (failed.state, failed.message) == (PreviewState.FAILED, NOTHING_TO_READ)
    assert world.adapter.opened == []


def test_an_unreadable_source_is_the_dry_runs_failure_and_is_not_counted() -> None:
    problem = SourceError("The GnuCash book was not found.", problem=SourceProblem.NOT_FOUND)
    world = World(configured(), open_error=problem)
    preview_id = world.ask()

    assert world.preview(preview_id) == SyncOutcome.PREVIEWED

    failed = world.previews.get(INSTALLATION)
    assert failed is not None
    assert failed.state is PreviewState.FAILED
    assert failed.message == "The GnuCash book was not found."
    stored = world.installations.get(INSTALLATION)
    assert stored is not None
    assert stored.failure_count == 0  # a dry run is not a sync: the failure policy is not asked
    world.assert_nothing_written()


def test_pleo_failing_ends_the_dry_run_with_a_message_and_no_retry() -> None:
    world = World(configured())
    world.steps.read_error = InternalServerError("boom", status_code=500)
    preview_id = world.ask()

    assert world.preview(preview_id) == SyncOutcome.FAILED  # returned, not raised: no retry

    failed = world.previews.get(INSTALLATION)
    assert failed is not None
    assert (failed.state, failed.message) == (PreviewState.FAILED, NOT_COMPLETED)


def test_a_dry_run_replaced_by_a_newer_one_is_skipped_unread() -> None:
    world = World(configured())
    older = world.ask()
    world.ask()

    assert world.preview(older) == SyncOutcome.SKIPPED
    assert world.preview(None) == SyncOutcome.SKIPPED

    assert world.steps.calls == []
    assert world.adapter.opened == []


def test_a_paused_installation_may_still_see_its_dry_run() -> None:
    world = World(replace(configured(), paused=True), plan=creates("DEPT"))

    assert world.preview(world.ask()) == SyncOutcome.PREVIEWED
    world.assert_nothing_written()


# --- the summary ---------------------------------------------------------------------------------


def test_the_summary_names_records_by_pleos_values_where_the_change_has_none() -> None:
    pleo = [Entry(Kind.VENDOR, "v-9", {"name": "Old supplier", "code": "V-9"}, pleo_id="p9")]
    plan = Plan(
        changes=(
            *(
                Change(Kind.ACCOUNT, Action.CREATE, str(n), {"name": f"A{n}", "code": str(n)})
                for n in range(7)
            ),
            Change(Kind.VENDOR, Action.ARCHIVE, "v-9", pleo_id="p9"),
        ),
        problems=(RecordProblem(Kind.TAX_CODE, "FIX", "an amount, not a percentage"),),
    )
    notices = [
        SourceNotice(Kind.TAX_CODE, "FLAT", "an amount-based tax table", skipped=True),
        SourceNotice(Kind.VENDOR, "V-1", "the name was cleaned"),
    ]

    summary = summarise(plan, pleo, notices)

    # The kinds in the order a sync applies them: vendors before accounts.
    assert list(summary.counts) == [(Kind.VENDOR, Action.ARCHIVE), (Kind.ACCOUNT, Action.CREATE)]
    assert summary.counts[(Kind.ACCOUNT, Action.CREATE)] == 7
    assert len(summary.samples[(Kind.ACCOUNT, Action.CREATE)]) == 5
    assert summary.samples[(Kind.VENDOR, Action.ARCHIVE)] == (PlannedRecord("Old supplier", "V-9"),)
    assert summary.refused == (
        RunProblem(Kind.TAX_CODE, "FIX", "an amount, not a percentage"),
        RunProblem(Kind.TAX_CODE, "FLAT", "an amount-based tax table"),
    )
    assert summary.refused_total == 2
    assert summary.notes == (RunProblem(Kind.VENDOR, "V-1", "the name was cleaned"),)
