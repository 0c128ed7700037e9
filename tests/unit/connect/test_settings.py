"""Disconnect's guard, saving settings, and their handling of credentials that cannot be used."""

from __future__ import annotations

import pytest

from pleo_connector.adapters.placeholder import PlaceholderConnectionSettings
from pleo_connector.aio import run
from pleo_connector.connect.disconnect import disconnect
from pleo_connector.connect.errors import NotInstalledError, SyncRunningError
from pleo_connector.connect.settings import request_sync, save_settings
from pleo_connector.crypto import CredentialDecryptError
from pleo_connector.installation_config import SyncChoices
from pleo_connector.pleo.errors import AuthenticationError, NotFoundError
from pleo_connector.tokens import GrantRevokedError
from pleo_connector.vocabulary import InstallationStatus, LocalError
from tests.unit.connect.fakes import (
    INSTALLATION,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleoClients,
    FakeQueue,
    disconnect_deps,
    installation,
    record,
    settings_deps,
)

pytestmark = pytest.mark.unit

ACTIVATED = InstallationStatus.ACTIVATED
PENDING = InstallationStatus.PENDING_INTEGRATION


def parts(
    status: InstallationStatus, api: FakeInstallationsApi, pleo_error: Exception | None = None
) -> tuple[FakeInstallations, FakePleoClients]:
    return FakeInstallations(record(status)), FakePleoClients(api, pleo_error)


def test_disconnect_is_refused_while_pending_integration_and_touches_nothing() -> None:
    api = FakeInstallationsApi(installation(PENDING))
    installations, pleo = parts(PENDING, api)

    with pytest.raises(SyncRunningError) as raised:
        run(disconnect(disconnect_deps(installations, pleo), INSTALLATION))

    assert raised.value.http_status == 409
    assert api.deleted == 0
    assert installations.deleted == []


def test_disconnect_deletes_in_pleo_then_locally() -> None:
    api = FakeInstallationsApi(installation(ACTIVATED))
    installations, pleo = parts(ACTIVATED, api)

    run(disconnect(disconnect_deps(installations, pleo), INSTALLATION))

    assert api.deleted == 1
    assert installations.deleted == [INSTALLATION]


def test_a_dead_grant_still_lets_the_user_disconnect() -> None:
    api = FakeInstallationsApi(installation(ACTIVATED))
    installations, pleo = parts(ACTIVATED, api, pleo_error=GrantRevokedError("revoked"))

    run(disconnect(disconnect_deps(installations, pleo), INSTALLATION))

    assert installations.deleted == [INSTALLATION]


def test_a_credential_that_is_not_this_installations_keeps_everything() -> None:
    api = FakeInstallationsApi(installation(ACTIVATED))
    installations, pleo = parts(ACTIVATED, api, pleo_error=CredentialDecryptError("no"))

    with pytest.raises(CredentialDecryptError):
        run(disconnect(disconnect_deps(installations, pleo), INSTALLATION))

    assert installations.deleted == []


def test_sync_now_needs_a_configured_installation() -> None:
    installations = FakeInstallations(record(InstallationStatus.AUTHORIZED))

    with pytest.raises(SyncRunningError, match="Save the settings first"):
        request_sync(installations, FakeQueue(), INSTALLATION)


def _save(installations: FakeInstallations, pleo: FakePleoClients, queue: FakeQueue) -> None:
    connection = PlaceholderConnectionSettings.model_validate(
        {"source_url": "https://erp.example.com", "api_token": "token-12345"}
    )
    deps = settings_deps(installations, pleo, queue)
    run(save_settings(deps, INSTALLATION, connection, SyncChoices()))


def test_saving_when_pleo_removed_the_installation_cleans_up_and_asks_to_connect_again() -> None:
    api = FakeInstallationsApi(installation(ACTIVATED))
    api.get_error = NotFoundError("gone", status_code=404)
    installations, pleo = parts(ACTIVATED, api)
    queue = FakeQueue()

    with pytest.raises(NotInstalledError):
        _save(installations, pleo, queue)

    assert installations.deleted == [INSTALLATION]
    assert queue.sent == []


def test_saving_with_a_rejected_credential_marks_the_installation() -> None:
    api = FakeInstallationsApi(installation(ACTIVATED))
    api.get_error = AuthenticationError("rejected", status_code=401)
    installations, pleo = parts(ACTIVATED, api)

    with pytest.raises(NotInstalledError):
        _save(installations, pleo, FakeQueue())

    stored = installations.get(INSTALLATION)
    assert stored is not None
    assert stored.local_error == LocalError.AUTH_ERROR
    assert not stored.schedulable


def test_saving_with_a_revoked_grant_marks_the_installation() -> None:
    api = FakeInstallationsApi(installation(ACTIVATED))
    installations, pleo = parts(ACTIVATED, api, GrantRevokedError("dead"))

    with pytest.raises(NotInstalledError):
        _save(installations, pleo, FakeQueue())

    stored = installations.get(INSTALLATION)
    assert stored is not None
    assert stored.local_error == LocalError.AUTH_ERROR


def test_saving_with_a_credential_that_does_not_decrypt_reports_it_and_marks_nothing() -> None:
    api = FakeInstallationsApi(installation(ACTIVATED))
    installations, pleo = parts(ACTIVATED, api, CredentialDecryptError("moved"))

    with pytest.raises(CredentialDecryptError):
        _save(installations, pleo, FakeQueue())

    stored = installations.get(INSTALLATION)
    assert stored is not None
    assert stored.local_error is None
    assert stored.schedulable


def test_saving_seals_the_secret_and_queues_the_first_sync() -> None:
    api = FakeInstallationsApi(installation(ACTIVATED))
    installations, pleo = parts(ACTIVATED, api)
    queue = FakeQueue()

    _save(installations, pleo, queue)

    stored = installations.get(INSTALLATION)
    assert stored is not None
    assert stored.status == PENDING
    connection = stored.config["connection"]
    assert connection["adapter"] == "placeholder"
    assert "token-12345" not in repr(connection)
    assert set(connection["secrets"]) == {"api_token"}
    (request,) = queue.sent
    assert request.activate_on_success is True
