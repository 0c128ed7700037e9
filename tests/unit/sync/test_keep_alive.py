"""Keep-alive requests refresh an idle OAuth grant; a revoked one marks the installation."""

from __future__ import annotations

import pytest

from pleo_connector.aio import run
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
from tests.unit.connect.fakes import INSTALLATION, FakeInstallations, FakeTokens, record, sync_deps

pytestmark = pytest.mark.unit


def _awaiting_configuration() -> FakeInstallations:
    return FakeInstallations(record(InstallationStatus.AUTHORIZED, AuthMethod.OAUTH))


def test_keep_alive_refreshes_an_idle_grant_of_an_unscheduled_installation() -> None:
    # Given: an installation that never syncs (AUTHORIZED), so nothing else refreshes its grant
    tokens = FakeTokens()
    deps = sync_deps(_awaiting_configuration(), tokens=tokens)

    # When
    outcome = run(
        run_sync(deps, SyncRequest(installation_id=INSTALLATION, reason=SyncReason.KEEP_ALIVE))
    )

    # Then
    assert outcome == SyncOutcome.REFRESHED
    assert tokens.refresh_asked == [INSTALLATION]


def test_keep_alive_marks_a_revoked_grant() -> None:
    installations = _awaiting_configuration()
    deps = sync_deps(installations, tokens=FakeTokens(GrantRevokedError("dead")))

    outcome = run(
        run_sync(deps, SyncRequest(installation_id=INSTALLATION, reason=SyncReason.KEEP_ALIVE))
    )

    stored = installations.get(INSTALLATION)
    assert outcome == SyncOutcome.AUTH_FAILED
    assert stored is not None
    assert stored.local_error == LocalError.AUTH_ERROR
