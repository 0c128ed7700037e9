"""Whole runs of the worker that do not go smoothly: a worker killed mid-run, two runs started
together, and 30 % of Pleo's answers failing. The worker is the one its handler builds
(`build_worker`), on DynamoDB Local, moto and the Pleo emulator, syncing a JSON snapshot.

What must hold: a killed run blocks the next one only until its lease expires (set short here),
and the run that takes over ends with Pleo equal to the source, no record made twice; of two runs
started together exactly one reads and writes; and runs repeated through faults converge, with
no record made twice and nothing lost.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from pleo_connector.vocabulary import SyncOutcome
from tests.integration.sync.engine_world import (
    EngineWorld,
    barrier,
    duplicates,
    pleo_keys,
    run_in_process,
    snapshot,
    source_keys,
    sync_once,
    worker,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.sync.engine_world import InstallWorld
    from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.integration

INSTALLATION_ME = "/v1/installations/me"


@pytest.fixture
def world(install_world: InstallWorld, tmp_path: Path) -> EngineWorld:
    return install_world(tmp_path / "snapshot.json")


def writes(log: list[dict[str, Any]]) -> Counter[str]:
    """The requests that change Pleo, per operation (searches are reads)."""
    return Counter(
        entry["operation"]
        for entry in log
        if entry["method"] != "GET" and not str(entry["path"]).endswith(":search")
    )


def created(emulator: RunningEmulator, world: EngineWorld) -> int:
    return sum(len(rows) for rows in emulator.control.data(world.company_id).values())


def wait_for(condition: Any, what: str, timeout_s: float = 60.0) -> None:
    """Poll `condition` until true; the limit is only there so a bug fails instead of hanging."""
    give_up = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def pleo_status(emulator: RunningEmulator, world: EngineWorld) -> str:
    (installation,) = [
        found
        for found in emulator.control.installations()
        if found["company_id"] == world.company_id
    ]
    return str(installation["status"])


# --- crash ---------------------------------------------------------------------------------------


def test_a_worker_killed_mid_run_is_taken_over_after_its_lease_with_nothing_twice_or_lost(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    document = snapshot(tags=30, tax_codes=10, vendors=200, accounts=100)
    world.write_source(document)
    total = sum(source_keys(document).values())
    # Slow enough that the run is still applying when it is killed, whatever the machine.
    emulator.control.inject_fault("latency", latency_ms=100, path_prefix="/v1")
    lease_s = 10.0  # the run's deadline; with no margin and no grace, its lease's TTL

    crashed = run_in_process(world, deadline_s=lease_s)
    wait_for(lambda: created(emulator, world) >= 40, "the killed run to make some records")
    crashed.process.kill()  # SIGKILL: nothing is recorded, the lease is not released
    crashed.process.join(timeout=30)
    made_by_crashed = created(emulator, world)
    assert 0 < made_by_crashed < total, "killed mid-run"
    assert world.runs.lease_held(world.installation_id)

    # Within the lease, the next run stops without reading the source or asking Pleo.
    deps, adapter = worker(world.env)
    emulator.control.clear_request_log()
    assert sync_once(deps, world.installation_id, 60) == SyncOutcome.BUSY
    assert adapter.opened == 0
    assert emulator.control.request_log() == []

    wait_for(lambda: not world.runs.lease_held(world.installation_id), "the lease to expire")
    emulator.control.clear_faults()
    outcome = sync_once(deps, world.installation_id, 60)

    # The killed run left the installation PENDING_INTEGRATION, as a cut-off first sync does:
    # the run that takes over cannot tell the two apart, so it ends in `me:activate`.
    assert outcome == SyncOutcome.ACTIVATED
    data = emulator.control.data(world.company_id)
    assert duplicates(data) == []
    assert pleo_keys(data) == source_keys(document)  # nothing lost, nothing extra
    # The killed run's PENDING_INTEGRATION is healed.
    assert pleo_status(emulator, world) == "ACTIVATED"
    (takeover,) = world.run_records()  # the killed run never recorded itself
    assert takeover["outcome"] == str(SyncOutcome.ACTIVATED)
    assert not world.runs.lease_held(world.installation_id)

    emulator.control.clear_request_log()
    assert sync_once(deps, world.installation_id, 60) == SyncOutcome.SYNCED
    assert writes(emulator.control.request_log()) == Counter()  # the next run writes nothing


# --- concurrency ---------------------------------------------------------------------------------


def test_of_two_runs_started_together_exactly_one_reads_and_applies(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    document = snapshot(tags=10, tax_codes=3, vendors=40, accounts=20)
    world.write_source(document)
    # Each run lasts long enough that the two overlap once released.
    emulator.control.inject_fault("latency", latency_ms=50, path_prefix="/v1")
    start = barrier(2)
    emulator.control.clear_request_log()

    runs = [run_in_process(world, deadline_s=60, barrier=start) for _ in range(2)]
    results = sorted(run.result() for run in runs)

    assert results == sorted([(str(SyncOutcome.BUSY), 0), (str(SyncOutcome.SYNCED), 1)])
    data = emulator.control.data(world.company_id)
    assert duplicates(data) == []
    assert pleo_keys(data) == source_keys(document)
    log = emulator.control.request_log()
    # One run's installation reads and status writes: read, PENDING_INTEGRATION, read, ACTIVATED.
    assert [entry["method"] for entry in log if entry["path"] == INSTALLATION_ME] == [
        "GET",
        "PUT",
        "GET",
        "PUT",
    ]
    (recorded,) = world.run_records()
    assert recorded["outcome"] == str(SyncOutcome.SYNCED)
    assert not world.runs.lease_held(world.installation_id)


# --- faults --------------------------------------------------------------------------------------


def test_with_30_percent_of_pleo_requests_failing_repeated_runs_converge(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    document = snapshot(tags=10, tax_codes=5, vendors=25, accounts=40)
    world.write_source(document)
    emulator.control.update_settings(fault_seed=20240612)
    # 30 % of all requests fail: 429s (fewer, as each one halves the shared budget's rate), 503s,
    # answers that never come, and answers lost after Pleo acted. Rules are tried in order and
    # the first that fires answers, so each rule's rate is its share of what the earlier left.
    rules: list[tuple[float, dict[str, Any]]] = [
        (0.04, {"kind": "error", "status": 429}),
        (0.09, {"kind": "error", "status": 503}),
        (0.085, {"kind": "timeout", "hang_ms": 50}),
        (0.085, {"kind": "timeout", "hang_ms": 50, "commit": True}),
    ]
    left = 1.0
    for share, rule in rules:
        emulator.control.inject_fault(rate=share / left, path_prefix="/v1", **rule)
        left -= share
    deps, _ = worker(world.env)

    outcomes: list[str] = []
    for _ in range(30):
        try:
            outcomes.append(str(sync_once(deps, world.installation_id, 120)))
        except Exception as error:  # the queue would deliver the message again
            outcomes.append(type(error).__name__)
            continue
        last = world.runs.last_run(world.installation_id)
        assert last is not None
        if outcomes[-1] == str(SyncOutcome.SYNCED) and not last.applied and not last.failed:
            break  # a run under faults that found nothing left to do
    else:
        raise AssertionError(f"the runs did not converge: {outcomes}")

    applied = [rule["applied"] for rule in emulator.control.faults()]
    assert min(applied) > 0, "every kind of fault was met"
    emulator.control.clear_faults()
    data = emulator.control.data(world.company_id)
    assert duplicates(data) == []
    assert pleo_keys(data) == source_keys(document)
    assert pleo_status(emulator, world) == "ACTIVATED"
    emulator.control.clear_request_log()
    assert sync_once(deps, world.installation_id, 60) == SyncOutcome.SYNCED
    assert writes(emulator.control.request_log()) == Counter()
