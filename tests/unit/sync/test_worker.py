"""The worker's failure policy for credentials: an unusable one marks the installation and takes
it off the schedule, without a retry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pleo_connector.aio import run
from pleo_connector.crypto import CredentialDecryptError
from pleo_connector.sync.worker import run_sync
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.tokens import GrantRevokedError
from pleo_connector.vocabulary import (
    AuthMethod,
    InstallationStatus,
    LocalError,
    SyncOutcome,
    SyncReason,
)
from tests.unit.connect.fakes import (
    INSTALLATION,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleoClients,
    installation,
    record,
    sync_deps,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.conftest import MetricKey

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "error",
    [CredentialDecryptError("moved"), GrantRevokedError("revoked")],
    ids=["moved", "revoked"],
)
def test_an_unusable_credential_marks_the_installation_and_unschedules_it(
    error: Exception,
) -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED, AuthMethod.OAUTH))
    pleo = FakePleoClients(FakeInstallationsApi(installation()), error)
    request = SyncRequest(installation_id=INSTALLATION, reason=SyncReason.SYNC_NOW)

    outcome = run(run_sync(sync_deps(installations, pleo), request))

    assert outcome == SyncOutcome.AUTH_FAILED
    stored = installations.get(INSTALLATION)
    assert stored is not None
    assert (stored.status, stored.local_error) == (
        InstallationStatus.INACTIVE,
        LocalError.AUTH_ERROR,
    )
    assert not stored.schedulable


def test_a_dead_credential_counts_one_stopped_installation(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED, AuthMethod.OAUTH))
    pleo = FakePleoClients(FakeInstallationsApi(installation()), GrantRevokedError("revoked"))
    request = SyncRequest(installation_id=INSTALLATION, reason=SyncReason.SCHEDULED)

    run(run_sync(sync_deps(installations, pleo), request))

    recorded = recorded_metrics()
    assert recorded[("InstallationsStopped", ())] == [1]
    assert recorded[("Syncs", (("Outcome", "auth_failed"),))] == [1]
