"""Keep-alive requests refresh an idle OAuth grant; a revoked one marks the installation."""

from __future__ import annotations

import pytest

from pleo_connector.aio import run
from pleo_connector.store.installations import InstallationRecord
from pleo_connector.sync.worker import run_sync
from pleo_connector.sync_queue import SyncReason, SyncRequest
from pleo_connector.tokens import GrantRevokedError
from tests.unit.connect.fakes import COMPANY, INSTALLATION, FakeInstallations, collaborators

pytestmark = pytest.mark.unit


class IdleTokens:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.asked: list[str] = []

    async def refresh_if_idle(self, installation_id: str) -> bool:
        self.asked.append(installation_id)
        if self.error is not None:
            raise self.error
        return True


def _awaiting_configuration() -> FakeInstallations:
    return FakeInstallations(
        InstallationRecord(
            installation_id=INSTALLATION,
            company_id=COMPANY,
            auth_method="oauth",
            status="AUTHORIZED",
            version=1,
        )
    )


def test_keep_alive_refreshes_an_idle_grant_of_an_unscheduled_installation() -> None:
    # Given: an installation that never syncs (AUTHORIZED), so nothing else refreshes its grant
    tokens = IdleTokens()
    deps = collaborators(installations=_awaiting_configuration(), tokens=tokens)

    # When
    outcome = run(
        run_sync(deps, SyncRequest(installation_id=INSTALLATION, reason=SyncReason.KEEP_ALIVE))
    )

    # Then
    assert outcome == "refreshed"
    assert tokens.asked == [INSTALLATION]


def test_keep_alive_marks_a_revoked_grant() -> None:
    installations = _awaiting_configuration()
    deps = collaborators(installations=installations, tokens=IdleTokens(GrantRevokedError("dead")))

    outcome = run(
        run_sync(deps, SyncRequest(installation_id=INSTALLATION, reason=SyncReason.KEEP_ALIVE))
    )

    record = installations.get(INSTALLATION)
    assert outcome == "auth_failed"
    assert record is not None
    assert record.local_error == "AUTH_ERROR"
