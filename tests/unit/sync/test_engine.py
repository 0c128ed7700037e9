"""One run of the sync engine, path by path, with fakes for Pleo, the store and the three steps:
the lease, the plan-first status rule, activation, checkpoints, healing, source failures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from pleo_connector.adapters.base import SourceError
from pleo_connector.adapters.errors import SourceError as AdapterSourceError
from pleo_connector.adapters.errors import SourceProblem
from pleo_connector.adapters.records import SourceNotice
from pleo_connector.aio import run
from pleo_connector.pleo.errors import InternalServerError, NotFoundError
from pleo_connector.pleo.retry import Deadline
from pleo_connector.sync.engine import (
    LEASE_GRACE_S,
    NOT_CONFIGURED_MESSAGE,
    PleoRecordMissingError,
)
from pleo_connector.sync.model import Change, Plan, RecordProblem
from pleo_connector.sync.worker import lambda_deadline, run_sync
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import (
    Action,
    InstallationStatus,
    Kind,
    LocalError,
    SyncOutcome,
    SyncReason,
)
from tests.unit.connect.fakes import (
    INSTALLATION,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleoClients,
    FakeQueue,
    FakeRuns,
    installation,
    record,
    sync_deps,
)
from tests.unit.sync.fakes import FakeAdapter, ScriptedSteps, configured, creates, done

if TYPE_CHECKING:
    from collections.abc import Callable

    from pleo_connector.store.installations import InstallationRecord
    from tests.unit.conftest import MetricKey

pytestmark = pytest.mark.unit

ACTIVATED = InstallationStatus.ACTIVATED
PENDING = InstallationStatus.PENDING_INTEGRATION
INACTIVE = InstallationStatus.INACTIVE
KEPT = {"kept": {"by": "someone else"}}  # metadata of the fake installation: always kept
SCHEDULED = SyncRequest(installation_id=INSTALLATION, reason=SyncReason.SCHEDULED)
FIRST_SYNC = SyncRequest(
    installation_id=INSTALLATION, reason=SyncReason.FIRST_SYNC, activate_on_success=True
)


class World:
    """One installation, its Pleo, its lease and its queue, wired into the worker's deps."""

    def __init__(
        self,
        local: InstallationRecord,
        in_pleo: InstallationStatus = ACTIVATED,
        *,
        plans: list[Plan] | None = None,
        adapter: FakeAdapter | None = None,
        runs: FakeRuns | None = None,
        max_source_failures: int = 5,
    ) -> None:
        self.installations = FakeInstallations(local)
        self.api = FakeInstallationsApi(installation(in_pleo))
        self.pleo = FakePleoClients(self.api)
        self.steps = ScriptedSteps(self.api, plans=plans or [Plan()])
        self.adapter = adapter or FakeAdapter()
        self.runs = runs or FakeRuns()
        self.queue = FakeQueue()
        self.deps = sync_deps(
            self.installations,
            self.pleo,
            runs=self.runs,
            queue=self.queue,
            steps=self.steps,
            adapter=self.adapter,
            max_source_failures=max_source_failures,
        )

    def sync(self, request: SyncRequest = SCHEDULED, deadline: Deadline | None = None) -> str:
        return run(run_sync(self.deps, request, deadline=deadline))

    @property
    def local(self) -> InstallationRecord:
        stored = self.installations.get(INSTALLATION)
        assert stored is not None
        return stored

    @property
    def pleo_statuses(self) -> list[str]:
        return [str(status) for status, _ in self.api.updates]


def fixed_deadline(remaining_s: float) -> Deadline:
    """A deadline on a clock that never moves: no test depends on the time it takes."""
    return Deadline(remaining_s, clock=lambda: 0.0)


# --- plan first: the status changes only when the plan writes ------------------------------------


def test_a_plan_without_writes_leaves_the_status_alone_and_reads_the_installation_once() -> None:
    world = World(configured())

    outcome = world.sync()

    assert outcome == SyncOutcome.SYNCED
    assert world.api.updates == []
    assert world.api.activated == 0
    assert world.api.gets == 1
    assert world.steps.calls == ["read_pleo", "plan"]  # nothing to apply
    assert len(world.adapter.opened) == 1
    assert world.adapter.closed == 1
    assert world.local.status == ACTIVATED
    (recorded,) = world.runs.runs
    assert (recorded.outcome, recorded.reason) == (SyncOutcome.SYNCED, SyncReason.SCHEDULED)
    assert world.runs.lease is None  # released


def test_a_plan_that_writes_goes_pending_then_activated_with_the_metadata_kept() -> None:
    world = World(configured(), plans=[creates("DEPT", "PROJ")])

    outcome = world.sync()

    assert outcome == SyncOutcome.SYNCED
    assert world.steps.status_at_apply == [PENDING]  # Pleo showed the sync while it wrote
    assert world.api.updates == [(PENDING, KEPT), (ACTIVATED, KEPT)]
    assert world.api.activated == 0  # not a first sync
    assert world.local.status == ACTIVATED
    (recorded,) = world.runs.runs
    assert recorded.applied == {(Kind.TAG_GROUP, Action.CREATE): 2}


def test_adopting_alone_writes_nothing_to_pleo_and_still_records_ownership() -> None:
    adopt = Plan(changes=(Change(Kind.VENDOR, Action.ADOPT, "v-1", pleo_id="pleo-vendor-1"),))
    world = World(configured(), plans=[adopt])

    world.sync()

    assert world.steps.calls == ["read_pleo", "plan", "apply"]
    assert world.steps.status_at_apply == [ACTIVATED]
    assert world.api.updates == []


def test_the_plan_sees_what_the_installation_owns() -> None:
    world = World(configured())
    world.deps.ownership.record(INSTALLATION, [(Kind.TAG, "pleo-tag-1")])

    world.sync()

    assert world.steps.owned_seen == [{(Kind.TAG, "pleo-tag-1")}]


# --- activation ----------------------------------------------------------------------------------


def test_the_first_sync_ends_in_activate() -> None:
    world = World(configured(PENDING), PENDING, plans=[creates("DEPT")])

    outcome = world.sync(FIRST_SYNC)

    assert outcome == SyncOutcome.ACTIVATED
    assert world.api.activated == 1
    assert world.pleo_statuses == [ACTIVATED]  # PENDING already: not set again, then activated
    assert world.local.status == ACTIVATED


def test_a_first_sync_without_an_accounting_system_yet_activates_without_reading() -> None:
    world = World(record(PENDING), InstallationStatus.AUTHORIZED)

    outcome = world.sync(FIRST_SYNC)

    assert outcome == SyncOutcome.ACTIVATED
    assert world.api.activated == 1
    assert world.adapter.opened == []
    assert world.steps.calls == []
    assert world.local.status == ACTIVATED
    (recorded,) = world.runs.runs
    assert recorded.message == NOT_CONFIGURED_MESSAGE  # not to be taken for a sync of the books


def test_a_failed_activation_is_retried_by_the_queue_and_the_run_recorded() -> None:
    world = World(configured(PENDING), PENDING)
    world.api.installation = installation(PENDING)

    async def refuse() -> object:
        raise InternalServerError("down", status_code=503)

    world.api.activate = refuse  # type: ignore[method-assign,assignment]

    with pytest.raises(InternalServerError):
        world.sync(FIRST_SYNC)

    assert world.local.status == PENDING
    (recorded,) = world.runs.runs
    assert (recorded.outcome, recorded.message) == (SyncOutcome.FAILED, "InternalServerError")
    assert world.runs.lease is None


# --- checkpoints ---------------------------------------------------------------------------------


def test_at_the_deadline_the_run_releases_the_lease_then_queues_a_continuation() -> None:
    world = World(configured(), plans=[creates("DEPT", "PROJ")])
    world.steps.results = [done({(Kind.TAG_GROUP, Action.CREATE): 1}, complete=False)]
    lease_free_when_sent: list[bool] = []
    send = world.queue.send

    def sending(request: SyncRequest) -> None:
        lease_free_when_sent.append(world.runs.lease is None)
        send(request)

    world.queue.send = sending  # type: ignore[method-assign]
    deadline = fixed_deadline(80)

    outcome = world.sync(deadline=deadline)

    assert outcome == SyncOutcome.CONTINUED
    assert world.steps.deadlines == [deadline]
    assert world.runs.acquired_for == [80 + world.deps.deadline_margin_s + LEASE_GRACE_S]
    (continuation,) = world.queue.sent
    assert (continuation.installation_id, continuation.reason) == (
        INSTALLATION,
        SyncReason.CONTINUATION,
    )
    assert lease_free_when_sent == [True]
    assert world.pleo_statuses == [PENDING]  # still syncing, as Pleo shows
    assert world.local.status == PENDING
    (recorded,) = world.runs.runs
    assert (recorded.outcome, recorded.applied) == (
        SyncOutcome.CONTINUED,
        {(Kind.TAG_GROUP, Action.CREATE): 1},
    )


def test_the_continuation_finishes_the_work_and_activates_again() -> None:
    world = World(configured(), plans=[creates("DEPT", "PROJ"), creates("PROJ")])
    world.steps.results = [
        done({(Kind.TAG_GROUP, Action.CREATE): 1}, complete=False),
        done({(Kind.TAG_GROUP, Action.CREATE): 1}),
    ]
    world.sync(deadline=fixed_deadline(80))
    (continuation,) = world.queue.sent

    outcome = world.sync(continuation, deadline=fixed_deadline(80))

    assert outcome == SyncOutcome.ACTIVATED
    assert world.pleo_statuses[0] == PENDING
    assert world.api.installation.status == ACTIVATED
    assert world.local.status == ACTIVATED
    assert [r.outcome for r in world.runs.runs] == [SyncOutcome.CONTINUED, SyncOutcome.ACTIVATED]
    assert len(world.queue.sent) == 1  # no second continuation


def test_a_continuation_of_a_first_sync_still_activates() -> None:
    world = World(configured(PENDING), PENDING, plans=[creates("DEPT")])
    world.steps.results = [done(complete=False), done()]

    world.sync(FIRST_SYNC, deadline=fixed_deadline(80))
    (continuation,) = world.queue.sent
    assert continuation.activate_on_success
    assert world.api.activated == 0
    world.sync(continuation)

    assert world.api.activated == 1


def test_the_lease_outlives_the_deadline_by_the_margin_and_the_configured_grace() -> None:
    world = World(configured())
    world.deps = replace(world.deps, deadline_margin_s=1.5, lease_grace_s=0.5)

    world.sync(deadline=fixed_deadline(6))

    assert world.runs.acquired_for == [6 + 1.5 + 0.5]


def test_too_little_time_left_queues_the_request_again_without_taking_the_lease() -> None:
    world = World(configured())

    outcome = world.sync(SCHEDULED, deadline=fixed_deadline(1))

    assert outcome == SyncOutcome.DEFERRED
    assert world.queue.sent == [SCHEDULED]
    assert world.runs.acquired_for == []
    assert world.pleo.asked == []


def test_the_lambda_deadline_is_its_remaining_time_less_the_margin() -> None:
    deadline = lambda_deadline(120_000, 20.0, clock=lambda: 1000.0)

    assert deadline.at == 1100.0
    assert lambda_deadline(5_000, 20.0, clock=lambda: 0.0).at == 0.0


# --- healing a run that was cut off --------------------------------------------------------------


def test_a_run_cut_off_while_pending_is_healed_by_the_next_run_even_without_writes() -> None:
    world = World(configured(PENDING), PENDING)  # the last run died after setting PENDING

    outcome = world.sync()

    assert outcome == SyncOutcome.ACTIVATED
    assert world.api.activated == 1
    assert world.local.status == ACTIVATED


def test_pending_in_pleo_alone_is_put_back_to_activated_with_the_metadata() -> None:
    world = World(configured(ACTIVATED), PENDING)  # died between Pleo's write and the local one

    world.sync()

    assert world.api.updates == [(ACTIVATED, KEPT)]
    assert world.api.activated == 0


# --- the lease -----------------------------------------------------------------------------------


def test_a_busy_lease_stops_the_run_before_it_reads_anything() -> None:
    world = World(configured(), runs=FakeRuns(held_by_other=True))

    outcome = world.sync()

    assert outcome == SyncOutcome.BUSY
    assert world.pleo.asked == []
    assert world.adapter.opened == []
    assert world.steps.calls == []
    assert world.runs.runs == []
    assert world.queue.sent == []


def test_a_lease_taken_over_before_the_first_write_stops_the_run_without_writing() -> None:
    world = World(configured(), plans=[creates("DEPT")])
    world.runs.taken_over = True

    outcome = world.sync()

    assert outcome == SyncOutcome.BUSY
    assert world.api.updates == []
    assert "apply" not in world.steps.calls
    assert world.runs.released == []  # not this run's to release
    assert world.runs.runs == []


PRESSED_AT = datetime(2026, 1, 1, tzinfo=UTC)
SYNC_NOW = SyncRequest(installation_id=INSTALLATION, reason=SyncReason.SYNC_NOW)


def test_a_sync_now_stays_marked_while_its_run_runs_and_is_cleared_when_it_ends() -> None:
    world = World(configured(sync_requested_at=PRESSED_AT), plans=[creates("DEPT")])
    marked_during_apply: list[datetime | None] = []
    apply = world.steps.apply

    async def applying(*args: Any, **kwargs: Any) -> Any:
        marked_during_apply.append(world.local.sync_requested_at)
        return await apply(*args, **kwargs)

    world.steps.apply = applying  # type: ignore[method-assign]

    world.sync(SYNC_NOW)

    assert marked_during_apply == [PRESSED_AT]  # a second press now is told one is running
    assert world.local.sync_requested_at is None
    assert world.queue.sent == []


def test_a_press_during_a_run_gets_one_more_run_once_the_lease_is_free() -> None:
    world = World(configured(), plans=[creates("DEPT")])
    apply = world.steps.apply
    lease_free_when_sent: list[bool] = []
    send = world.queue.send

    async def pressed_meanwhile(*args: Any, **kwargs: Any) -> Any:
        world.installations.mark_sync_requested(INSTALLATION, window_s=900)
        return await apply(*args, **kwargs)

    def sending(request: SyncRequest) -> None:
        lease_free_when_sent.append(world.runs.lease is None)
        send(request)

    world.steps.apply = pressed_meanwhile  # type: ignore[method-assign]
    world.queue.send = sending  # type: ignore[method-assign]

    world.sync(SCHEDULED)

    assert [request.reason for request in world.queue.sent] == [SyncReason.SYNC_NOW]
    assert lease_free_when_sent == [True]
    assert world.local.sync_requested_at is not None  # the follow-up's run clears it
    world.sync(world.queue.sent[0])
    assert world.local.sync_requested_at is None
    assert len(world.queue.sent) == 1


def test_a_run_that_is_cut_off_keeps_the_press_for_its_continuation() -> None:
    world = World(configured(sync_requested_at=PRESSED_AT), plans=[creates("DEPT")])
    world.steps.results = [done(complete=False)]

    world.sync(SYNC_NOW, deadline=fixed_deadline(80))

    assert world.local.sync_requested_at == PRESSED_AT
    assert [request.reason for request in world.queue.sent] == [SyncReason.CONTINUATION]


def test_a_run_that_fails_keeps_the_press_for_the_retry() -> None:
    world = World(configured(sync_requested_at=PRESSED_AT))
    world.steps.read_error = InternalServerError("down", status_code=500)

    with pytest.raises(InternalServerError):
        world.sync(SYNC_NOW)

    assert world.local.sync_requested_at == PRESSED_AT


# --- source failures -----------------------------------------------------------------------------


class UnreadableJson(SourceError):
    """What an adapter raises for a document that breaks its schema."""


BAD_DOCUMENT = UnreadableJson("The document breaks the schema at $.vendors[3].currency.")


@pytest.mark.parametrize(
    "adapter",
    [FakeAdapter(open_error=BAD_DOCUMENT), FakeAdapter(read_error=BAD_DOCUMENT)],
    ids=["when opened", "while streaming"],
)
def test_a_source_failure_is_counted_with_its_reason_and_writes_nothing(
    adapter: FakeAdapter,
) -> None:
    world = World(configured(), plans=[creates("DEPT")], adapter=adapter)

    outcome = world.sync()

    assert outcome == SyncOutcome.SOURCE_FAILED
    assert world.api.updates == []
    assert world.api.activated == 0
    assert "apply" not in world.steps.calls
    local = world.local
    assert (local.status, local.local_error, local.failure_count) == (
        ACTIVATED,
        LocalError.SOURCE_FAILING,
        1,
    )
    assert local.failure_reason == str(BAD_DOCUMENT)
    assert local.schedulable  # tried again on the schedule
    (recorded,) = world.runs.runs
    assert (recorded.outcome, recorded.message) == (SyncOutcome.SOURCE_FAILED, str(BAD_DOCUMENT))
    assert world.runs.lease is None


def test_the_error_the_built_in_adapters_raise_is_counted_as_a_source_failure() -> None:
    """`adapters.errors.SourceError` (what the JSON and GnuCash readers raise) is the port's."""
    locked = AdapterSourceError("The GnuCash book is locked.", problem=SourceProblem.LOCKED)
    world = World(configured(), plans=[creates("DEPT")], adapter=FakeAdapter(open_error=locked))

    assert world.sync() == SyncOutcome.SOURCE_FAILED
    assert (world.local.failure_count, world.local.failure_reason) == (1, str(locked))


def test_the_fifth_failure_in_a_row_makes_it_inactive_in_pleo_with_the_reason_kept() -> None:
    world = World(
        configured(local_error=LocalError.SOURCE_FAILING, failure_count=4),
        adapter=FakeAdapter(open_error=BAD_DOCUMENT),
    )

    outcome = world.sync()

    assert outcome == SyncOutcome.DEACTIVATED
    assert world.api.updates == [(INACTIVE, KEPT)]
    local = world.local
    assert (local.status, local.local_error, local.failure_count, local.failure_reason) == (
        INACTIVE,
        LocalError.SOURCE_FAILING,
        5,
        str(BAD_DOCUMENT),
    )
    assert not local.schedulable
    (recorded,) = world.runs.runs
    assert recorded.outcome == SyncOutcome.DEACTIVATED


def test_the_number_of_failures_allowed_is_a_setting() -> None:
    world = World(configured(), adapter=FakeAdapter(open_error=BAD_DOCUMENT), max_source_failures=2)

    assert world.sync() == SyncOutcome.SOURCE_FAILED
    assert world.sync() == SyncOutcome.DEACTIVATED
    assert world.local.status == INACTIVE


def test_a_successful_run_resets_the_failure_count() -> None:
    world = World(
        configured(
            local_error=LocalError.SOURCE_FAILING, failure_count=3, failure_reason="unreachable"
        )
    )

    world.sync()

    local = world.local
    assert (local.local_error, local.failure_count, local.failure_reason) == (None, 0, None)
    assert local.status == ACTIVATED


@pytest.mark.parametrize(
    "connection",
    [
        {"adapter": "placeholder", "values": {"source_url": "not a url"}, "secrets": {}},
        {
            "adapter": "placeholder",
            "values": {"source_url": "https://erp.example.com"},
            "secrets": {"api_token": "b3RoZXJ8c2VjcmV0"},  # sealed for another installation
        },
    ],
    ids=["no longer fit the form", "do not decrypt"],
)
def test_saved_settings_that_cannot_be_used_count_as_a_source_failure(
    connection: dict[str, object],
) -> None:
    world = World(configured(config={"connection": connection}))

    outcome = world.sync()

    assert outcome == SyncOutcome.SOURCE_FAILED
    assert world.adapter.opened == []
    assert "save" in (world.local.failure_reason or "")
    assert world.api.updates == []


# --- other failures ------------------------------------------------------------------------------


def test_a_transient_failure_while_applying_raises_after_recording_and_releasing() -> None:
    world = World(configured(), plans=[creates("DEPT")])
    world.steps.apply_error = InternalServerError("down", status_code=502)

    with pytest.raises(InternalServerError):
        world.sync()

    assert world.local.failure_count == 0  # Pleo failing is not the source failing
    (recorded,) = world.runs.runs
    assert recorded.outcome == SyncOutcome.FAILED
    assert world.runs.lease is None
    assert world.pleo_statuses == [PENDING]  # left for the retry to heal


def test_pleo_failing_past_the_retries_stops_the_apply_and_the_message_is_retried() -> None:
    world = World(configured(), plans=[creates("DEPT", "PROJ")])
    exhausted = InternalServerError("still down", status_code=503)
    world.steps.results = [
        done({(Kind.TAG_GROUP, Action.CREATE): 1}, complete=False, stopped_by=exhausted)
    ]

    with pytest.raises(InternalServerError):
        world.sync(deadline=fixed_deadline(80))

    assert world.queue.sent == []  # not a continuation: the queue retries the message
    (recorded,) = world.runs.runs
    assert (recorded.outcome, recorded.message, recorded.applied) == (
        SyncOutcome.FAILED,
        "InternalServerError",
        {(Kind.TAG_GROUP, Action.CREATE): 1},
    )
    assert world.runs.lease is None
    assert world.local.failure_count == 0


def test_a_missing_pleo_record_is_not_taken_for_the_installations_removal() -> None:
    world = World(configured())
    world.steps.read_error = NotFoundError("no such tag group", status_code=404)

    with pytest.raises(PleoRecordMissingError):
        world.sync()

    assert world.installations.deleted == []
    assert world.installations.get(INSTALLATION) is not None


def test_a_removed_installation_is_cleaned_up_and_not_recorded() -> None:
    world = World(configured())
    world.api.get_error = NotFoundError("gone", status_code=404)

    outcome = world.sync()

    assert outcome == SyncOutcome.REMOVED
    assert world.installations.deleted == [INSTALLATION]
    assert world.runs.runs == []


def test_an_installation_pleo_shows_inactive_is_mirrored_and_not_synced() -> None:
    world = World(configured(), INACTIVE, plans=[creates("DEPT")])

    outcome = world.sync()

    assert outcome == SyncOutcome.SKIPPED
    assert world.adapter.opened == []
    assert world.api.updates == []
    assert world.local.status == INACTIVE
    assert not world.local.schedulable


# --- the run record ------------------------------------------------------------------------------


def test_the_record_holds_the_plans_and_the_writes_problems_and_the_request_counts() -> None:
    skipped = RecordProblem(Kind.TAG, "D-1", "The code appears twice in the source.")
    refused = RecordProblem(Kind.VENDOR, "V-9", "Pleo refused the currency.")
    plan = replace(creates("DEPT"), problems=(skipped,))
    world = World(configured(), plans=[plan])
    world.steps.results = [
        done(
            {(Kind.TAG_GROUP, Action.CREATE): 1},
            failed=[refused],
            requests=7,
            rate_limited=2,
        )
    ]

    world.sync()

    (recorded,) = world.runs.runs
    assert recorded.failed == {Kind.TAG: 1, Kind.VENDOR: 1}
    assert [(p.kind, p.reference) for p in recorded.problems] == [
        (Kind.TAG, "D-1"),
        (Kind.VENDOR, "V-9"),
    ]
    assert (recorded.problems_total, recorded.requests, recorded.rate_limited) == (2, 7, 2)
    assert recorded.finished_at >= recorded.started_at


def test_the_record_keeps_the_first_problems_and_their_number() -> None:
    many = tuple(RecordProblem(Kind.TAG, f"T-{i}", "The name is too long.") for i in range(80))
    world = World(configured(), plans=[Plan(problems=many)])

    world.sync()

    (recorded,) = world.runs.runs
    assert len(recorded.problems) == 50
    assert recorded.problems_total == 80
    assert recorded.failed == {Kind.TAG: 80}


def test_a_readers_notices_are_recorded_after_the_plans_problems() -> None:
    """Names the reader cleaned are shown, not counted as failed; a record it skipped is both."""
    cleaned = SourceNotice(Kind.VENDOR, "V3", "its name was cleaned: spaces removed")
    skipped = SourceNotice(Kind.TAX_CODE, "Miljøafgift", "not synced: an amount", skipped=True)
    duplicate = RecordProblem(Kind.TAG, "P1", "The code appears twice in the source.")
    world = World(
        configured(),
        plans=[Plan(problems=(duplicate,))],
        adapter=FakeAdapter(notices=[cleaned, skipped]),
    )

    world.sync()

    (recorded,) = world.runs.runs
    assert [(p.kind, p.reference, p.message) for p in recorded.problems] == [
        (Kind.TAG, "P1", duplicate.message),
        (Kind.VENDOR, "V3", cleaned.message),
        (Kind.TAX_CODE, "Miljøafgift", skipped.message),
    ]
    assert recorded.failed == {Kind.TAG: 1, Kind.TAX_CODE: 1}
    assert recorded.problems_total == 3


def test_a_reader_without_notices_records_only_the_plans_problems() -> None:
    world = World(configured(), plans=[Plan()], adapter=FakeAdapter())

    world.sync()

    (recorded,) = world.runs.runs
    assert (recorded.problems, recorded.failed, recorded.problems_total) == ((), {}, 0)


# --- metrics -------------------------------------------------------------------------------------


def test_a_first_sync_counts_one_activation_one_sync_and_the_runs_records(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    world = World(configured(PENDING), PENDING, plans=[creates("DEPT")])
    world.steps.results = [done({(Kind.TAG_GROUP, Action.CREATE): 1}, requests=3)]

    world.sync(FIRST_SYNC)

    recorded = recorded_metrics()
    assert recorded[("Activations", ())] == [1]
    assert recorded[("Syncs", (("Outcome", "activated"),))] == [1]
    assert recorded[("SyncRecords", (("Action", "create"), ("Kind", "tag_group")))] == [1]
    assert recorded[("PleoRequests", ())] == [3]
    assert len(recorded[("SyncRunDuration", ())]) == 1


def test_a_scheduled_sync_activates_nothing(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    World(configured(), plans=[creates("DEPT")]).sync()

    recorded = recorded_metrics()
    assert ("Activations", ()) not in recorded
    assert recorded[("Syncs", (("Outcome", "synced"),))] == [1]


def test_a_run_that_raises_counts_a_failed_sync_and_its_run(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    world = World(configured(PENDING), PENDING)
    world.api.installation = installation(PENDING)

    async def refuse() -> object:
        raise InternalServerError("down", status_code=503)

    world.api.activate = refuse  # type: ignore[method-assign,assignment]

    with pytest.raises(InternalServerError):
        world.sync(FIRST_SYNC)

    recorded = recorded_metrics()
    assert recorded[("Syncs", (("Outcome", "failed"),))] == [1]
    assert ("Activations", ()) not in recorded
    assert len(recorded[("SyncRunDuration", ())]) == 1


def test_going_inactive_counts_one_stopped_installation(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    fifth = World(
        configured(local_error=LocalError.SOURCE_FAILING, failure_count=4),
        adapter=FakeAdapter(open_error=SourceError("unreadable")),
    )
    fourth = World(
        configured(local_error=LocalError.SOURCE_FAILING, failure_count=3),
        adapter=FakeAdapter(open_error=SourceError("unreadable")),
    )

    assert fourth.sync() == SyncOutcome.SOURCE_FAILED
    assert ("InstallationsStopped", ()) not in recorded_metrics()
    assert fifth.sync() == SyncOutcome.DEACTIVATED
    assert recorded_metrics()[("InstallationsStopped", ())] == [1]


def test_a_stop_seen_in_pleo_counts_one_stopped_installation(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    World(configured(), INACTIVE).sync()

    recorded = recorded_metrics()
    assert recorded[("InstallationsStopped", ())] == [1]
    assert recorded[("Syncs", (("Outcome", "skipped"),))] == [1]
