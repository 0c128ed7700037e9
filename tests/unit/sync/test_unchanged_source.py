"""Scheduled runs that skip an unchanged source (`SyncDeps.full_reconcile_s`): when they may end
without Pleo, and every case that must read it in full instead."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Self

import pytest

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.sources import Revision
from pleo_connector.aio import run
from pleo_connector.sync.model import RecordProblem
from pleo_connector.sync.worker import run_sync
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import InstallationStatus, Kind, SyncOutcome, SyncReason
from tests.unit.connect.fakes import (
    INSTALLATION,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleoClients,
    FakeRuns,
    installation,
    sync_deps,
)
from tests.unit.sync.fakes import FakeAdapter, FakeReader, ScriptedSteps, configured, creates, done

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pleo_connector.store.installations import InstallationRecord

pytestmark = pytest.mark.unit

DAY_S = 24 * 3600.0
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SCHEDULED = SyncRequest(installation_id=INSTALLATION, reason=SyncReason.SCHEDULED)
V1 = Revision(etag='"v1"')


class RevisionedReader(FakeReader):
    def __enter__(self) -> Self:
        self.revision = self._adapter.current  # type: ignore[attr-defined]
        return self


class RevisionedAdapter(FakeAdapter):
    """A source at revision `current`, which answers "unchanged since?" like a conditional GET."""

    def __init__(self, current: Revision | None = V1) -> None:
        super().__init__()
        self.current = current
        self.asked: list[Revision] = []
        self.ask_error: Exception | None = None

    def open_reader(self, settings: BaseModel) -> FakeReader:
        self.opened.append(settings)
        return RevisionedReader(self)

    def source_unchanged(self, settings: BaseModel, known: Revision) -> bool:
        self.asked.append(known)
        if self.ask_error is not None:
            raise self.ask_error
        return known == self.current


class World:
    """One active installation, its Pleo, lease and source, on a clock the test moves."""

    def __init__(
        self,
        local: InstallationRecord | None = None,
        *,
        full_reconcile_s: float = DAY_S,
        adapter: RevisionedAdapter | None = None,
    ) -> None:
        self.now = START
        self.installations = FakeInstallations(local or configured())
        self.api = FakeInstallationsApi(installation(InstallationStatus.ACTIVATED))
        self.pleo = FakePleoClients(self.api)
        self.steps = ScriptedSteps(self.api)
        self.adapter = adapter or RevisionedAdapter()
        self.runs = FakeRuns()
        self.deps = replace(
            sync_deps(
                self.installations,
                self.pleo,
                runs=self.runs,
                steps=self.steps,
                adapter=self.adapter,
            ),
            full_reconcile_s=full_reconcile_s,
            clock=lambda: self.now,
        )

    def sync(self, request: SyncRequest = SCHEDULED, *, after_s: float = 3600.0) -> str:
        self.now += timedelta(seconds=after_s)
        return run(run_sync(self.deps, request))

    @property
    def pleo_reads(self) -> int:
        """Runs that opened a Pleo client (every Pleo call of a run goes through one)."""
        return len(self.pleo.asked)


def test_a_scheduled_run_after_a_clean_one_skips_pleo_when_nothing_changed() -> None:
    world = World()

    assert world.sync() == SyncOutcome.SYNCED
    assert world.sync() == SyncOutcome.UNCHANGED

    assert world.pleo_reads == 1  # the second run made no Pleo request, not even for a token
    assert world.steps.calls == ["read_pleo", "plan"]
    assert world.adapter.asked == [V1]
    assert len(world.adapter.opened) == 1  # the second run asked, and read nothing
    assert [run.outcome for run in world.runs.runs] == [SyncOutcome.SYNCED, SyncOutcome.UNCHANGED]
    assert world.runs.lease is None
    # It took no lease (it writes nothing but its record), and the mark holds for the next one.
    assert len(world.runs.acquired_for) == 1
    assert world.sync() == SyncOutcome.UNCHANGED
    assert (world.pleo_reads, len(world.runs.acquired_for)) == (1, 1)


def test_while_another_run_holds_the_lease_a_run_does_not_skip_on_the_mark() -> None:
    """The run that holds it may be changing what the mark says: this one stops at the lease."""
    world = World()
    world.sync()
    world.runs.held_by_other = True

    assert world.sync() == SyncOutcome.BUSY
    assert world.adapter.asked == []


def test_a_changed_source_is_read_in_full() -> None:
    world = World()
    world.sync()
    world.adapter.current = Revision(etag='"v2"')

    assert world.sync() == SyncOutcome.SYNCED
    assert world.pleo_reads == 2
    assert world.sync() == SyncOutcome.UNCHANGED  # the new revision is the one remembered
    assert world.adapter.asked[-1] == Revision(etag='"v2"')


def test_saved_settings_or_choices_that_changed_are_read_in_full() -> None:
    world = World()
    world.sync()
    stored = world.installations.records[INSTALLATION]
    world.installations.records[INSTALLATION] = replace(
        stored, sync_choices={**stored.sync_choices, "tag_groups": []}
    )

    assert world.sync() == SyncOutcome.SYNCED
    assert world.pleo_reads == 2
    assert world.adapter.asked == []  # the digest differed: the source was not even asked


@pytest.mark.parametrize(
    "reason", [SyncReason.SYNC_NOW, SyncReason.CONTINUATION, SyncReason.FIRST_SYNC]
)
def test_only_scheduled_runs_may_skip(reason: SyncReason) -> None:
    world = World()
    world.sync()

    world.sync(SyncRequest(installation_id=INSTALLATION, reason=reason))

    assert world.pleo_reads == 2
    assert world.adapter.asked == []


def test_pleo_is_read_in_full_once_per_interval_counted_from_the_last_full_run() -> None:
    world = World(full_reconcile_s=DAY_S)
    world.sync()

    outcomes = [world.sync(after_s=3600) for _ in range(24)]

    # Hours 1..23 after the full run skip; hour 24 reads in full (the mark kept its first date).
    assert outcomes[:23] == [SyncOutcome.UNCHANGED] * 23
    assert outcomes[23] == SyncOutcome.SYNCED
    assert world.pleo_reads == 2
    assert world.sync() == SyncOutcome.UNCHANGED  # a new interval from that full run


def test_with_the_interval_at_zero_every_run_reads_pleo() -> None:
    world = World(full_reconcile_s=0)

    outcomes = [world.sync() for _ in range(3)]

    assert outcomes == [SyncOutcome.SYNCED] * 3
    assert world.pleo_reads == 3
    assert world.adapter.asked == []


def test_a_run_with_refused_records_leaves_no_mark() -> None:
    world = World()
    world.steps.plans = [creates("DEPT")]
    problem = RecordProblem(Kind.TAG_GROUP, "DEPT", "Pleo refused it.")
    world.steps.results = [done(failed=[problem])]
    world.sync()

    assert world.sync() == SyncOutcome.SYNCED  # read again: the refused record is tried again
    assert world.pleo_reads == 2


def test_a_run_with_notices_from_the_reader_leaves_no_mark() -> None:
    from pleo_connector.adapters.records import SourceNotice

    class NoticingRevisioned(RevisionedReader):
        def notices(self):  # type: ignore[no-untyped-def]
            yield SourceNotice(Kind.VENDOR, "V1", "its name was cleaned")

    adapter = RevisionedAdapter()
    adapter.open_reader = lambda settings: NoticingRevisioned(adapter)  # type: ignore[method-assign]
    world = World(adapter=adapter)
    world.sync()

    assert world.sync() == SyncOutcome.SYNCED  # the page keeps showing the notices
    assert world.pleo_reads == 2


def test_a_source_without_a_revision_is_always_read() -> None:
    world = World(adapter=RevisionedAdapter(current=None))
    world.sync()

    assert world.sync() == SyncOutcome.SYNCED
    assert world.pleo_reads == 2


def test_a_run_that_did_not_release_its_lease_voids_the_mark() -> None:
    """A crashed run (it took the lease, never released it) may have written half a plan."""
    world = World()
    world.sync()
    crashed = world.runs.acquire(INSTALLATION, 60.0)
    assert crashed is not None
    world.runs.lease = None  # expired: it never released

    assert world.sync() == SyncOutcome.SYNCED
    assert world.pleo_reads == 2


@pytest.mark.parametrize(
    "change",
    [
        {"failure_count": 1},
        {"status": InstallationStatus.PENDING_INTEGRATION},
        {"sync_requested_at": START},
    ],
)
def test_an_installation_not_plainly_healthy_is_read_in_full(change: dict[str, object]) -> None:
    world = World()
    world.sync()
    stored = world.installations.records[INSTALLATION]
    world.installations.records[INSTALLATION] = replace(stored, **change)  # type: ignore[arg-type]

    world.sync()

    assert world.pleo_reads == 2
    assert world.adapter.asked == []


def test_a_source_that_cannot_be_asked_falls_back_to_the_full_run() -> None:
    world = World()
    world.sync()
    world.adapter.ask_error = SourceError("unreachable", problem=SourceProblem.UNREACHABLE)

    assert world.sync() == SyncOutcome.SYNCED
    assert world.pleo_reads == 2


def test_a_skipped_run_is_recorded_with_no_requests_and_shown_as_good() -> None:
    from pleo_connector.web.pages import describe_run

    world = World()
    world.sync()
    world.sync()

    skipped = world.runs.runs[-1]
    assert (skipped.outcome, skipped.requests, skipped.applied) == (SyncOutcome.UNCHANGED, 0, {})
    view = describe_run(skipped)
    assert "Pleo was left as it was" in view.outcome
    assert view.good


def test_asking_and_then_reading_a_changed_source_opens_the_settings_once() -> None:
    from tests.unit.connect.fakes import FakeCipher

    class CountingCipher(FakeCipher):
        decrypts = 0

        def decrypt(self, installation_id: str, ciphertext: bytes) -> bytes:
            CountingCipher.decrypts += 1
            return super().decrypt(installation_id, ciphertext)

    world = World()
    world.sync()
    world.deps = replace(world.deps, cipher=CountingCipher())
    world.adapter.current = Revision(etag='"v2"')

    assert world.sync() == SyncOutcome.SYNCED
    assert world.adapter.asked == [V1]
    assert CountingCipher.decrypts == 1
