"""Disconnect's guard, saving settings, and their handling of credentials that cannot be used."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pleo_connector.adapters.placeholder import PlaceholderConnectionSettings
from pleo_connector.aio import run
from pleo_connector.connect.disconnect import disconnect
from pleo_connector.connect.errors import (
    NotInstalledError,
    SyncAlreadyQueuedError,
    SyncRunningError,
)
from pleo_connector.connect.settings import (
    SYNC_NOW_WINDOW_S,
    SyncActivity,
    request_sync,
    save_settings,
    sync_activity,
)
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
    FakeRuns,
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
        request_sync(
            settings_deps(installations, FakePleoClients(FakeInstallationsApi(installation()))),
            INSTALLATION,
        )


def test_sync_now_of_a_paused_installation_says_it_is_paused_and_queues_nothing() -> None:
    installations = FakeInstallations(replace(record(ACTIVATED), paused=True))
    queue = FakeQueue()

    with pytest.raises(SyncRunningError, match="Syncing is paused"):
        request_sync(
            settings_deps(
                installations, FakePleoClients(FakeInstallationsApi(installation())), queue
            ),
            INSTALLATION,
        )

    assert queue.sent == []


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


def test_disconnect_is_refused_while_a_run_holds_the_lease() -> None:
    api = FakeInstallationsApi(installation(ACTIVATED))
    installations, pleo = parts(ACTIVATED, api)

    with pytest.raises(SyncRunningError, match="A sync is running"):
        run(
            disconnect(
                disconnect_deps(installations, pleo, FakeRuns(held_by_other=True)), INSTALLATION
            )
        )

    assert api.deleted == 0
    assert installations.deleted == []


def _sync_now_parts(
    runs: FakeRuns | None = None, queue: FakeQueue | None = None
) -> tuple[FakeInstallations, FakeQueue, FakeRuns]:
    installations, _ = parts(ACTIVATED, FakeInstallationsApi(installation(ACTIVATED)))
    return installations, queue or FakeQueue(), runs or FakeRuns()


def _press(installations: FakeInstallations, queue: FakeQueue, runs: FakeRuns) -> None:
    pleo = FakePleoClients(FakeInstallationsApi(installation(ACTIVATED)))
    request_sync(settings_deps(installations, pleo, queue, runs), INSTALLATION)


def test_sync_now_queues_one_run_and_a_second_press_says_one_is_queued() -> None:
    installations, queue, runs = _sync_now_parts()

    _press(installations, queue, runs)
    with pytest.raises(SyncAlreadyQueuedError, match="already queued or running") as second:
        _press(installations, queue, runs)

    assert second.value.http_status == 409
    assert second.value.back_to == "/settings"
    assert [request.reason for request in queue.sent] == ["sync_now"]
    stored = installations.get(INSTALLATION)
    assert stored is not None
    assert stored.sync_requested_at is not None


def test_sync_now_while_another_run_holds_the_lease_is_taken_and_marked() -> None:
    installations, queue, runs = _sync_now_parts(FakeRuns(held_by_other=True))

    _press(installations, queue, runs)  # the running run sees the mark and queues one more

    assert [request.reason for request in queue.sent] == ["sync_now"]
    stored = installations.get(INSTALLATION)
    assert stored is not None
    assert stored.sync_requested_at is not None


def test_a_press_whose_message_could_not_be_sent_may_be_pressed_again() -> None:
    from pleo_connector.sync_queue import QueueError

    installations, queue, runs = _sync_now_parts(queue=FakeQueue(QueueError("not sent")))

    with pytest.raises(QueueError):
        _press(installations, queue, runs)

    stored = installations.get(INSTALLATION)
    assert stored is not None
    assert stored.sync_requested_at is None


def test_the_page_sees_a_queued_press_until_its_window_ends_and_a_running_sync() -> None:
    installations, queue, runs = _sync_now_parts()
    pleo = FakePleoClients(FakeInstallationsApi(installation(ACTIVATED)))
    pressed_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    stored = replace(record(ACTIVATED), sync_requested_at=pressed_at)

    def seen(seconds_after: float) -> SyncActivity:
        deps = replace(
            settings_deps(installations, pleo, queue, runs),
            clock=lambda: pressed_at.timestamp() + seconds_after,
        )
        return sync_activity(deps, stored)

    assert seen(60) == SyncActivity(running=False, queued=True, last_run=None)
    assert not seen(SYNC_NOW_WINDOW_S + 1).queued  # its run never started: press again
    assert not sync_activity(settings_deps(installations, pleo), record(ACTIVATED)).queued
    runs.held_by_other = True
    assert seen(60).running


def test_saving_new_settings_drops_the_old_source_problem_but_keeps_the_count() -> None:
    api = FakeInstallationsApi(installation(InstallationStatus.INACTIVE))
    installations = FakeInstallations(
        replace(
            record(InstallationStatus.INACTIVE),
            local_error=LocalError.SOURCE_FAILING,
            failure_count=5,
            failure_reason="unreachable",
        )
    )

    _save(installations, FakePleoClients(api), FakeQueue())

    stored = installations.get(INSTALLATION)
    assert stored is not None
    assert (stored.status, stored.local_error, stored.failure_reason, stored.failure_count) == (
        PENDING,
        None,
        None,
        5,
    )
    assert stored.schedulable
