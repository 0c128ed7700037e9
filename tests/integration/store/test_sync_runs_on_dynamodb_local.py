"""The sync lease, the run records and the installation's sync bookkeeping on the real DynamoDB
Local engine: its conditional writes, key conditions and concurrent requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pleo_connector.store.dynamodb import DynamoTable, get_int, s
from pleo_connector.store.installations import (
    InstallationRecord,
    InstallationRepository,
    installation_pk,
)
from pleo_connector.store.sync_runs import (
    LEASE,
    MAX_PROBLEMS,
    RUN_TTL_S,
    Lease,
    Reconciled,
    RunProblem,
    SyncRun,
    SyncRunRepository,
)
from pleo_connector.vocabulary import (
    Action,
    AuthMethod,
    InstallationStatus,
    Kind,
    LocalError,
    SyncOutcome,
    SyncReason,
)
from tests.unit.store.support import FakeClock

pytestmark = pytest.mark.integration

STARTED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _run(installation_id: str, started_at: datetime, **changes: object) -> SyncRun:
    run = SyncRun(
        installation_id=installation_id,
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=42),
        reason=SyncReason.SCHEDULED,
        outcome=SyncOutcome.SYNCED,
    )
    return replace(run, **changes)  # type: ignore[arg-type]


def _installation(repo: InstallationRepository, installation_id: str) -> InstallationRecord:
    return repo.create_or_update(
        InstallationRecord(
            installation_id=installation_id,
            company_id=f"{installation_id}-company",
            auth_method=AuthMethod.API_KEY,
            status=InstallationStatus.ACTIVATED,
        )
    )


# --- the lease -----------------------------------------------------------------------------------


def test_a_held_lease_keeps_a_second_run_out_until_it_is_released(
    table: DynamoTable, unique: str
) -> None:
    runs = SyncRunRepository(table)
    inst = f"{unique}-inst"

    first = runs.acquire(inst, ttl_s=60)

    assert first is not None
    assert runs.lease_held(inst)
    assert runs.holds(first)
    assert runs.acquire(inst, ttl_s=60) is None
    assert runs.release(first)
    assert not runs.lease_held(inst)
    second = runs.acquire(inst, ttl_s=60)
    assert second is not None
    assert second.token == first.token + 1  # the fencing token only grows
    assert not runs.holds(first)


def test_a_crashed_runs_lease_expires_and_is_taken_over(table: DynamoTable, unique: str) -> None:
    clock = FakeClock()
    runs = SyncRunRepository(table, clock=clock)
    inst = f"{unique}-inst"
    crashed = runs.acquire(inst, ttl_s=90)
    assert crashed is not None

    clock.advance(89)
    assert runs.acquire(inst, ttl_s=90) is None
    clock.advance(2)
    assert not runs.lease_held(inst)
    takeover = runs.acquire(inst, ttl_s=90)

    assert takeover is not None
    assert takeover.token > crashed.token
    assert not runs.holds(crashed)
    # The crashed run, come back, cannot release the lease of the run that took over.
    assert not runs.release(crashed)
    assert runs.holds(takeover)
    assert runs.lease_held(inst)


def test_of_two_runs_started_together_exactly_one_gets_the_lease(
    table: DynamoTable, unique: str
) -> None:
    runs = SyncRunRepository(table)
    inst = f"{unique}-inst"
    together = threading.Barrier(2)

    def attempt(_: int) -> Lease | None:
        together.wait()
        return runs.acquire(inst, ttl_s=60)

    with ThreadPoolExecutor(max_workers=2) as pool:
        leases = list(pool.map(attempt, range(2)))

    winners = [lease for lease in leases if lease is not None]
    assert len(winners) == 1
    assert runs.holds(winners[0])


def test_of_many_concurrent_runs_exactly_one_gets_the_lease(
    table: DynamoTable, unique: str
) -> None:
    runs = SyncRunRepository(table)
    inst = f"{unique}-inst"

    with ThreadPoolExecutor(max_workers=10) as pool:
        leases = list(pool.map(lambda _: runs.acquire(inst, ttl_s=60), range(10)))

    assert sum(lease is not None for lease in leases) == 1


MARK = Reconciled(settings_digest="d" * 64, source_etag='"v1"', source_modified=None, at=1.8e9)


def test_the_mark_a_release_leaves_is_read_back_until_a_release_without_one(
    table: DynamoTable, unique: str
) -> None:
    runs = SyncRunRepository(table)
    inst = f"{unique}-inst"
    first = runs.acquire(inst, ttl_s=60)
    assert first is not None
    assert runs.release(first)
    assert runs.free_mark(inst) is None

    second = runs.acquire(inst, ttl_s=60)
    assert second is not None
    assert runs.release(second, MARK)

    assert runs.free_mark(inst) == MARK
    # Released without a mark: the one before is gone.
    third = runs.acquire(inst, ttl_s=60)
    assert third is not None
    assert runs.release(third)
    assert runs.free_mark(inst) is None


def test_a_mark_counts_only_for_the_run_right_after_the_one_that_left_it(
    table: DynamoTable, unique: str
) -> None:
    """A run that took the lease and never released it (it crashed, perhaps mid-plan) took a
    token: the mark from before it no longer counts."""
    clock = FakeClock()
    runs = SyncRunRepository(table, clock=clock)
    inst = f"{unique}-inst"
    clean = runs.acquire(inst, ttl_s=60)
    assert clean is not None
    runs.release(clean, MARK)
    assert runs.free_mark(inst) == MARK
    crashed = runs.acquire(inst, ttl_s=60)
    assert crashed is not None
    clock.advance(61)  # it never released; its lease expired

    assert runs.free_mark(inst) is None
    # Nor does a later run bring it back by taking and giving back the lease without a mark.
    after = runs.acquire(inst, ttl_s=60)
    assert after is not None
    assert runs.release(after)
    assert runs.free_mark(inst) is None


def test_the_free_mark_is_none_while_a_run_holds_the_lease(table: DynamoTable, unique: str) -> None:
    """What a run that skips an unchanged source goes by without taking the lease."""
    runs = SyncRunRepository(table)
    inst = f"{unique}-inst"
    assert runs.free_mark(inst) is None  # no run yet
    clean = runs.acquire(inst, ttl_s=60)
    assert clean is not None
    assert runs.free_mark(inst) is None  # held
    runs.release(clean, MARK)

    assert runs.free_mark(inst) == MARK
    assert runs.free_mark(inst) == MARK  # reading it takes nothing
    held = runs.acquire(inst, ttl_s=60)
    assert held is not None
    assert runs.free_mark(inst) is None


def test_a_released_lease_item_keeps_its_token_and_a_ttl(table: DynamoTable, unique: str) -> None:
    clock = FakeClock()
    runs = SyncRunRepository(table, clock=clock)
    inst = f"{unique}-inst"
    lease = runs.acquire(inst, ttl_s=60)
    assert lease is not None

    runs.release(lease)

    item = table.get({"pk": s(installation_pk(inst)), "sk": s(LEASE)})
    assert item is not None
    assert get_int(item, "token") == lease.token
    assert get_int(item, "ttl") > clock.now
    assert "holder" not in item


# --- run records ---------------------------------------------------------------------------------


def test_a_run_record_reads_back_whole_with_a_ttl(table: DynamoTable, unique: str) -> None:
    clock = FakeClock()
    runs = SyncRunRepository(table, clock=clock)
    inst = f"{unique}-inst"
    run = _run(
        inst,
        STARTED,
        outcome=SyncOutcome.CONTINUED,
        reason=SyncReason.CONTINUATION,
        applied={(Kind.TAG, Action.CREATE): 120, (Kind.VENDOR, Action.ADOPT): 3},
        failed={Kind.ACCOUNT: 1},
        problems=(RunProblem(Kind.ACCOUNT, "6100", "The name is longer than Pleo allows."),),
        problems_total=1,
        requests=17,
        rate_limited=2,
    )

    runs.record(run)

    assert runs.last_run(inst) == run
    (item,) = table.query(
        key_condition="pk = :pk AND begins_with(sk, :run)",
        values={":pk": s(installation_pk(inst)), ":run": s("RUN#")},
    )
    assert get_int(item, "ttl") == int(clock.now) + RUN_TTL_S
    assert float(item["duration_s"]["N"]) == 42.0


def test_last_run_is_the_newest_of_several(table: DynamoTable, unique: str) -> None:
    runs = SyncRunRepository(table)
    inst = f"{unique}-inst"
    for minutes in (0, 30, 10):
        runs.record(_run(inst, STARTED + timedelta(minutes=minutes), requests=minutes))
    runs.record(_run(f"{unique}-other", STARTED + timedelta(hours=5)))

    last = runs.last_run(inst)

    assert last is not None
    assert (last.started_at, last.requests) == (STARTED + timedelta(minutes=30), 30)
    assert SyncRunRepository(table).last_run(f"{unique}-never") is None


def test_problems_are_capped_and_their_total_kept(table: DynamoTable, unique: str) -> None:
    runs = SyncRunRepository(table)
    inst = f"{unique}-inst"
    problems = tuple(RunProblem(Kind.TAG, f"T-{i}", "x" * 2000) for i in range(MAX_PROBLEMS + 25))

    runs.record(_run(inst, STARTED, problems=problems, problems_total=len(problems)))

    last = runs.last_run(inst)
    assert last is not None
    assert len(last.problems) == MAX_PROBLEMS
    assert last.problems_total == MAX_PROBLEMS + 25
    assert [p.reference for p in last.problems] == [f"T-{i}" for i in range(MAX_PROBLEMS)]
    assert all(len(p.message) <= 500 for p in last.problems)


def test_removing_an_installation_removes_its_lease_and_runs(
    table: DynamoTable, unique: str
) -> None:
    installations = InstallationRepository(table)
    runs = SyncRunRepository(table)
    inst = f"{unique}-inst"
    _installation(installations, inst)
    assert runs.acquire(inst, ttl_s=60) is not None
    runs.record(_run(inst, STARTED))

    assert installations.delete_all(inst) == 4  # META, company pointer, LEASE, one RUN#

    assert runs.last_run(inst) is None
    assert not runs.lease_held(inst)


# --- the installation's sync bookkeeping ---------------------------------------------------------


def test_source_failures_are_counted_with_their_reason_and_cleared_by_a_good_run(
    table: DynamoTable, unique: str
) -> None:
    repo = InstallationRepository(table)
    inst = f"{unique}-inst"
    created = _installation(repo, inst)

    repo.record_source_failure(inst, "The document is not valid JSON.")
    counted = repo.record_source_failure(inst, "The source could not be reached.")

    assert (counted.failure_count, counted.local_error, counted.failure_reason) == (
        2,
        LocalError.SOURCE_FAILING,
        "The source could not be reached.",
    )
    assert counted.version == created.version  # bookkeeping, not a change of the record
    assert repo.get(inst) == counted
    inactive = repo.update_status(
        inst, InstallationStatus.INACTIVE, local_error=LocalError.SOURCE_FAILING
    )
    assert (inactive.failure_count, inactive.failure_reason) == (
        2,
        "The source could not be reached.",
    )
    assert inst not in set(repo.iter_schedulable())
    good = repo.update_status(inst, InstallationStatus.ACTIVATED, failure_count=0)
    assert (good.failure_count, good.local_error, good.failure_reason) == (0, None, None)


def test_sync_now_is_marked_once_per_window(table: DynamoTable, unique: str) -> None:
    clock = FakeClock()
    repo = InstallationRepository(table, clock=clock)
    inst = f"{unique}-inst"
    _installation(repo, inst)

    assert repo.mark_sync_requested(inst, window_s=900)
    assert not repo.mark_sync_requested(inst, window_s=900)
    marked = repo.get(inst)
    assert marked is not None
    assert marked.sync_requested_at == datetime.fromtimestamp(clock.now, UTC)
    clock.advance(901)  # its run never ended: the press is taken as lost
    assert repo.mark_sync_requested(inst, window_s=900)
    pressed = repo.get(inst)
    assert pressed is not None
    assert pressed.sync_requested_at is not None
    # A run that saw the first press does not clear the one made since.
    assert marked.sync_requested_at is not None
    assert not repo.clear_sync_request(inst, requested_at=marked.sync_requested_at)
    assert repo.clear_sync_request(inst, requested_at=pressed.sync_requested_at)
    cleared = repo.get(inst)
    assert cleared is not None
    assert cleared.sync_requested_at is None
    assert not repo.clear_sync_request(inst)  # nothing left to clear
    assert repo.mark_sync_requested(inst, window_s=900)
    assert repo.clear_sync_request(inst)


def test_of_two_presses_at_once_exactly_one_queues(table: DynamoTable, unique: str) -> None:
    repo = InstallationRepository(table)
    inst = f"{unique}-inst"
    _installation(repo, inst)

    with ThreadPoolExecutor(max_workers=6) as pool:
        marked = list(pool.map(lambda _: repo.mark_sync_requested(inst, window_s=900), range(6)))

    assert sorted(marked) == [False] * 5 + [True]


def test_the_bookkeeping_of_a_missing_installation(table: DynamoTable, unique: str) -> None:
    from pleo_connector.store.errors import InstallationNotFoundError

    repo = InstallationRepository(table)
    with pytest.raises(InstallationNotFoundError):
        repo.record_source_failure(f"{unique}-none", "unreadable")
    with pytest.raises(InstallationNotFoundError):
        repo.mark_sync_requested(f"{unique}-none", window_s=900)
    assert not repo.clear_sync_request(f"{unique}-none")  # nothing to clear, nothing raised
    assert repo.get(f"{unique}-none") is None
