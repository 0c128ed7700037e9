"""The dispatcher: every schedulable installation once, never a paused, inactive or dead one, and
messages SQS refused are reported without failing the whole run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
from moto import mock_aws

from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.sync.dispatcher import DispatchDeps, dispatch
from pleo_connector.sync_queue import QueueError, SyncQueue
from pleo_connector.vocabulary import AuthMethod, InstallationStatus, LocalError
from tests.unit.connect.fakes import FakeInstallations, FakeTokens
from tests.unit.store.support import make_table
from tests.unit.test_sync_queue import QUEUE_URL, StubSqs

if TYPE_CHECKING:
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


def _deps(installations: Any, stub: StubSqs) -> DispatchDeps:
    return DispatchDeps(
        installations=installations,
        tokens=FakeTokens(),
        sync_queue=SyncQueue(QUEUE_URL, client=cast("Any", stub)),
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
