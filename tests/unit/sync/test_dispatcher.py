"""The dispatcher: every schedulable installation once, never a paused, inactive or dead one, and
messages SQS refused are reported without failing the whole run. Each run counts how many
installations each status has, whether it sends them or not, and the first run of every six hours
prints the counts (the `Installations` gauge)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import pytest
from moto import mock_aws

from pleo_connector import metrics
from pleo_connector.store.errors import StoreUnavailableError
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.sync.dispatcher import DispatchDeps, dispatch, gauge_due
from pleo_connector.sync_queue import QueueError, SyncQueue
from pleo_connector.vocabulary import AuthMethod, InstallationStatus, LocalError
from tests.support.observed_output import read_printed
from tests.unit.connect.fakes import FakeInstallations, FakeTokens
from tests.unit.store.support import make_table
from tests.unit.test_sync_queue import QUEUE_URL, StubSqs

if TYPE_CHECKING:
    import io
    from collections.abc import Iterator

    from pleo_connector.store.dynamodb import DynamoTable

pytestmark = pytest.mark.unit


@pytest.fixture
def table() -> Iterator[DynamoTable]:
    with mock_aws():
        yield make_table()


def _install(
    repo: InstallationRepository,
    installation_id: str,
    status: InstallationStatus = InstallationStatus.ACTIVATED,
    local_error: LocalError | None = None,
) -> None:
    repo.create_or_update(
        InstallationRecord(
            installation_id=installation_id,
            company_id=f"company-{installation_id}",
            auth_method=AuthMethod.API_KEY,
            status=status,
            local_error=local_error,
        )
    )


# A run at 06:10 UTC on an hourly schedule: the first of the gauge's 06:00-12:00 window.
FIRST_OF_WINDOW = datetime(2026, 12, 3, 6, 10, tzinfo=UTC).timestamp()


def _deps(
    installations: Any, stub: StubSqs, *, now: float = FIRST_OF_WINDOW, period_s: float = 3600.0
) -> DispatchDeps:
    return DispatchDeps(
        installations=installations,
        tokens=FakeTokens(),
        sync_queue=SyncQueue(QUEUE_URL, client=cast("Any", stub)),
        clock=lambda: now,
        schedule_period_s=period_s,
    )


def test_paused_inactive_and_dead_installations_are_not_dispatched(table: DynamoTable) -> None:
    repo = InstallationRepository(table)
    for name in ("syncing", "pending", "paused"):
        _install(repo, name)
    _install(repo, "inactive", InstallationStatus.INACTIVE, LocalError.SOURCE_FAILING)
    _install(repo, "dead", InstallationStatus.ERROR, LocalError.AUTH_ERROR)
    repo.set_paused("paused", True)
    stub = StubSqs()

    done = dispatch(_deps(repo, stub))

    assert sorted(stub.delivered) == ["pending", "syncing"]
    assert (done.dispatched, done.unsent) == (2, 0)


def test_a_resumed_installation_is_dispatched_again(table: DynamoTable) -> None:
    repo = InstallationRepository(table)
    _install(repo, "paused")
    repo.set_paused("paused", True)
    repo.set_paused("paused", False)
    stub = StubSqs()

    dispatch(_deps(repo, stub))

    assert stub.delivered == ["paused"]


class ManyInstallations(FakeInstallations):
    """Ten thousand schedulable installations, produced one at a time."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def iter_schedulable(self) -> Iterator[str]:
        for number in range(self.count):
            yield f"inst-{number:05d}"


def test_refused_messages_are_reported_and_the_rest_still_go_out() -> None:
    stub = StubSqs(fail_batches_with={"inst-00500"}, refuse={"inst-09999"})

    done = dispatch(_deps(ManyInstallations(10_000), stub))

    assert (done.dispatched, done.unsent, done.abandoned) == (9_989, 11, False)
    assert len(stub.delivered) == 9_989


def test_a_run_that_sends_nothing_fails() -> None:
    stub = StubSqs(fail_every_call=True)

    with pytest.raises(QueueError):
        dispatch(_deps(ManyInstallations(100), stub))


def _printed_by_dispatch(
    deps: DispatchDeps, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """What one dispatch prints when its invocation ends: its log lines and EMF lines."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "pleo-connector")
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    metrics.recorded.take()
    capsys.readouterr()
    done = dispatch(deps)
    metrics.flush()
    return done, read_printed(capsys.readouterr().out)


def test_the_first_run_of_a_window_prints_how_many_installations_each_status_has(
    table: DynamoTable, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: installations the dispatcher sends and ones it does not (paused, dead, stopped)
    repo = InstallationRepository(table)
    for name in ("active-1", "active-2", "paused"):
        _install(repo, name)
    repo.set_paused("paused", True)
    _install(repo, "pending", InstallationStatus.PENDING_INTEGRATION)
    _install(repo, "waiting", InstallationStatus.AUTHORIZED)
    _install(repo, "dead-1", InstallationStatus.ERROR, LocalError.AUTH_ERROR)
    _install(repo, "dead-2", InstallationStatus.ERROR, LocalError.AUTH_ERROR)
    stub = StubSqs()

    # When
    done, printed = _printed_by_dispatch(_deps(repo, stub), capsys, monkeypatch)

    # Then: every installation counted by its status, the paused one too; INACTIVE has none, so
    # no point; no dimension but the status and the service
    assert sorted(stub.delivered) == ["active-1", "active-2", "pending"]
    service = ("service", "pleo-connector")
    assert printed.metrics() == {
        ("Installations", (("Status", "ACTIVATED"), service)): [3],
        ("Installations", (("Status", "PENDING_INTEGRATION"), service)): [1],
        ("Installations", (("Status", "AUTHORIZED"), service)): [1],
        ("Installations", (("Status", "ERROR"), service)): [2],
    }
    assert printed.units() == {"Installations": "Count"}
    assert printed.namespaces() == {"PleoConnector"}
    assert done.by_status[InstallationStatus.INACTIVE] == 0
    assert sum(done.by_status.values()) == 7


def test_the_gauge_goes_out_once_in_six_hours_and_the_count_every_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a day of an hourly schedule whose ticks fall at ten past each hour
    day = datetime(2026, 12, 3, 0, 10, tzinfo=UTC).timestamp()
    ticks = [day + hour * 3600 for hour in range(24)]

    # When
    class Counted(ManyInstallations):
        def count_by_status(self) -> dict[InstallationStatus, int]:
            return {InstallationStatus.ACTIVATED: self.count}

    printed_by_tick = [
        _printed_by_dispatch(_deps(Counted(3), StubSqs(), now=tick), capsys, monkeypatch)
        for tick in ticks
    ]

    # Then: every run counted, and only the runs of 00:10, 06:10, 12:10 and 18:10 sent the gauge
    assert all(done.by_status == {InstallationStatus.ACTIVATED: 3} for done, _ in printed_by_tick)
    gauged = [
        datetime.fromtimestamp(tick, UTC).hour
        for tick, (_, printed) in zip(ticks, printed_by_tick, strict=True)
        if printed.metrics()
    ]
    assert gauged == [0, 6, 12, 18]


@pytest.mark.parametrize(
    ("minute_of_window", "period_minutes", "due"),
    [
        (0, 60, True),
        (59, 60, True),
        (60, 60, False),
        (359, 60, False),
        (14, 15, True),
        (15, 15, False),
        (200, 360, True),  # a period of a window or more: every run
        (30, 720, True),
    ],
)
def test_a_run_is_due_to_send_the_gauge_when_the_run_before_fell_in_an_earlier_window(
    minute_of_window: int, period_minutes: int, due: bool
) -> None:
    window_start = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()

    assert gauge_due(window_start + minute_of_window * 60, period_minutes * 60) is due


def test_a_count_that_fails_is_logged_and_the_run_still_sends(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, logged: io.StringIO
) -> None:
    class Uncountable(ManyInstallations):
        def count_by_status(self) -> dict[InstallationStatus, int]:
            raise StoreUnavailableError("throttled", operation="Query", code="ThrottlingException")

    stub = StubSqs()

    done, printed = _printed_by_dispatch(_deps(Uncountable(25), stub), capsys, monkeypatch)

    assert (done.dispatched, done.by_status) == (25, {})
    assert printed.metrics() == {}
    lines = [json.loads(line) for line in logged.getvalue().splitlines()]
    [warning] = [line for line in lines if line["level"] == "WARNING"]
    assert warning["message"] == "installations not counted by status"
    assert warning["code"] == "ThrottlingException"
