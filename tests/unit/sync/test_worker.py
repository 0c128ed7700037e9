"""The worker's failure policy for credentials: an unusable one marks the installation and takes
it off the schedule, without a retry."""

from __future__ import annotations

import pytest

from pleo_connector.aio import run
from pleo_connector.crypto import CredentialDecryptError
from pleo_connector.store.installations import InstallationRecord
from pleo_connector.sync.worker import run_sync
from pleo_connector.sync_queue import SyncReason, SyncRequest
from pleo_connector.tokens import GrantRevokedError
from tests.unit.connect.fakes import COMPANY, INSTALLATION, FakeInstallations, collaborators

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "error",
    [CredentialDecryptError("moved"), GrantRevokedError("revoked")],
    ids=["moved", "revoked"],
)
def test_an_unusable_credential_marks_the_installation_and_unschedules_it(
    error: Exception,
) -> None:
    installations = FakeInstallations(
        InstallationRecord(
            installation_id=INSTALLATION,
            company_id=COMPANY,
            auth_method="oauth",
            status="ACTIVATED",
            version=1,
        )
    )

    def pleo_for_installation(installation_id: str, auth_method: str) -> object:
        raise error

    deps = collaborators(installations=installations, pleo_for_installation=pleo_for_installation)
    request = SyncRequest(installation_id=INSTALLATION, reason=SyncReason.SYNC_NOW)

    outcome = run(run_sync(deps, request))

    assert outcome == "auth_failed"
    record = installations.get(INSTALLATION)
    assert record is not None
    assert (record.status, record.local_error) == ("INACTIVE", "AUTH_ERROR")
    assert not record.schedulable
