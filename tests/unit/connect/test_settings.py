"""Disconnect's guard and its handling of credentials that cannot be used."""

from __future__ import annotations

import pytest

from pleo_connector.aio import run
from pleo_connector.connect.errors import SyncRunningError
from pleo_connector.connect.settings import disconnect, request_sync
from pleo_connector.crypto import CredentialDecryptError
from pleo_connector.store.installations import InstallationRecord
from pleo_connector.tokens import GrantRevokedError
from tests.unit.connect.fakes import (
    COMPANY,
    INSTALLATION,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleo,
    collaborators,
    installation,
)

pytestmark = pytest.mark.unit


def record(status: str) -> InstallationRecord:
    return InstallationRecord(
        installation_id=INSTALLATION,
        company_id=COMPANY,
        auth_method="api_key",
        status=status,
        version=1,
    )


def deps_for(status: str, api: FakeInstallationsApi, pleo_error: Exception | None = None) -> object:
    def pleo_for_installation(installation_id: str, auth_method: str) -> FakePleo:
        if pleo_error is not None:
            raise pleo_error
        return FakePleo(api)

    return collaborators(
        installations=FakeInstallations(record(status)),
        pleo_for_installation=pleo_for_installation,
    )


def test_disconnect_is_refused_while_pending_integration_and_touches_nothing() -> None:
    api = FakeInstallationsApi(installation("PENDING_INTEGRATION"))
    deps = deps_for("PENDING_INTEGRATION", api)

    with pytest.raises(SyncRunningError) as raised:
        run(disconnect(deps, INSTALLATION))  # type: ignore[arg-type]

    assert raised.value.status_code == 409
    assert api.deleted == 0
    assert deps.installations.deleted == []  # type: ignore[attr-defined]


def test_disconnect_deletes_in_pleo_then_locally() -> None:
    api = FakeInstallationsApi(installation("ACTIVATED"))
    deps = deps_for("ACTIVATED", api)

    run(disconnect(deps, INSTALLATION))  # type: ignore[arg-type]

    assert api.deleted == 1
    assert deps.installations.deleted == [INSTALLATION]  # type: ignore[attr-defined]


def test_a_dead_grant_still_lets_the_user_disconnect() -> None:
    api = FakeInstallationsApi(installation("ACTIVATED"))
    deps = deps_for("ACTIVATED", api, pleo_error=GrantRevokedError("revoked"))

    run(disconnect(deps, INSTALLATION))  # type: ignore[arg-type]

    assert deps.installations.deleted == [INSTALLATION]  # type: ignore[attr-defined]


def test_a_credential_that_is_not_this_installations_keeps_everything() -> None:
    api = FakeInstallationsApi(installation("ACTIVATED"))
    deps = deps_for("ACTIVATED", api, pleo_error=CredentialDecryptError("no"))

    with pytest.raises(CredentialDecryptError):
        run(disconnect(deps, INSTALLATION))  # type: ignore[arg-type]

    assert deps.installations.deleted == []  # type: ignore[attr-defined]


def test_sync_now_needs_a_configured_installation() -> None:
    deps = deps_for("AUTHORIZED", FakeInstallationsApi(installation()))

    with pytest.raises(SyncRunningError, match="Save the settings first"):
        request_sync(deps, INSTALLATION)  # type: ignore[arg-type]
