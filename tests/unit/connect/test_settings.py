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
    FakeQueue,
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


def _save(deps: object) -> None:
    from pleo_connector.connect.settings import save_settings
    from pleo_connector.sync.adapters.base import PlaceholderConnectionSettings
    from pleo_connector.web.forms import SyncChoices

    connection = PlaceholderConnectionSettings.model_validate(
        {"source_url": "https://erp.example.com", "api_token": "token-12345"}
    )
    run(save_settings(deps, INSTALLATION, connection, SyncChoices()))  # type: ignore[arg-type]


def test_saving_when_pleo_removed_the_installation_cleans_up_and_asks_to_connect_again() -> None:
    from pleo_connector.connect.errors import NotInstalledError
    from pleo_connector.pleo.errors import NotFoundError

    api = FakeInstallationsApi(installation("ACTIVATED"))
    api.get_error = NotFoundError("gone", status_code=404)
    deps = deps_for("ACTIVATED", api)
    queue = FakeQueue()
    deps.sync_queue = queue  # type: ignore[attr-defined]

    with pytest.raises(NotInstalledError):
        _save(deps)

    assert deps.installations.deleted == [INSTALLATION]  # type: ignore[attr-defined]
    assert queue.sent == []


def test_saving_with_a_rejected_credential_marks_the_installation() -> None:
    from pleo_connector.connect.errors import NotInstalledError
    from pleo_connector.pleo.errors import AuthenticationError

    api = FakeInstallationsApi(installation("ACTIVATED"))
    api.get_error = AuthenticationError("rejected", status_code=401)
    deps = deps_for("ACTIVATED", api)

    with pytest.raises(NotInstalledError):
        _save(deps)

    stored = deps.installations.get(INSTALLATION)  # type: ignore[attr-defined]
    assert stored.local_error == "AUTH_ERROR"
    assert not stored.schedulable


def test_saving_with_a_revoked_grant_marks_the_installation() -> None:
    from pleo_connector.connect.errors import NotInstalledError

    deps = deps_for(
        "ACTIVATED", FakeInstallationsApi(installation("ACTIVATED")), GrantRevokedError("dead")
    )

    with pytest.raises(NotInstalledError):
        _save(deps)

    stored = deps.installations.get(INSTALLATION)  # type: ignore[attr-defined]
    assert stored.local_error == "AUTH_ERROR"
