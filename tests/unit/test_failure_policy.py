"""The one failure policy: each kind of error, in each place, comes to one action, and the action
is done to the installation."""

from __future__ import annotations

import pytest

from pleo_connector.crypto import CredentialDecryptError, CryptoError
from pleo_connector.failure_policy import (
    FailureAction,
    FailureContext,
    FailureKind,
    classify,
    decide,
    handle_failure,
)
from pleo_connector.pleo.errors import (
    APITimeoutError,
    AuthenticationError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from pleo_connector.store.errors import StoreUnavailableError
from pleo_connector.sync_queue import QueueError
from pleo_connector.tokens import (
    CredentialsNotFoundError,
    GrantRevokedError,
    TokenRefreshBusyError,
    WrongCredentialKindError,
)
from pleo_connector.vocabulary import InstallationStatus, LocalError
from tests.unit.connect.fakes import INSTALLATION, FakeInstallations, record

pytestmark = pytest.mark.unit

SYNC, SAVE, DISCONNECT = (
    FailureContext.SYNC,
    FailureContext.SAVE_SETTINGS,
    FailureContext.DISCONNECT,
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AuthenticationError("rejected", status_code=401), FailureKind.CREDENTIAL_DEAD),
        (GrantRevokedError("revoked"), FailureKind.CREDENTIAL_DEAD),
        (CredentialsNotFoundError("none stored"), FailureKind.CREDENTIAL_DEAD),
        (WrongCredentialKindError("api key asked of oauth"), FailureKind.CREDENTIAL_DEAD),
        (CredentialDecryptError("moved"), FailureKind.CREDENTIAL_UNREADABLE),
        (NotFoundError("gone", status_code=404), FailureKind.INSTALLATION_GONE),
        (RateLimitError("slow down", status_code=429), FailureKind.TRANSIENT),
        (InternalServerError("boom", status_code=500), FailureKind.TRANSIENT),
        (APITimeoutError("no answer"), FailureKind.TRANSIENT),
        (StoreUnavailableError("throttled"), FailureKind.TRANSIENT),
        (CryptoError("KMS down"), FailureKind.TRANSIENT),
        (QueueError("not sent"), FailureKind.TRANSIENT),
        (TokenRefreshBusyError("lease held"), FailureKind.TRANSIENT),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_error_has_one_kind(error: Exception, kind: FailureKind) -> None:
    assert classify(error) is kind


def test_an_error_outside_the_policy_is_left_to_raise() -> None:
    assert classify(KeyError("a bug")) is None
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED))

    assert handle_failure(KeyError("a bug"), SYNC, installations, INSTALLATION) is None
    assert installations.get(INSTALLATION) == record(InstallationStatus.ACTIVATED)


@pytest.mark.parametrize(
    ("kind", "context", "action"),
    [
        (FailureKind.CREDENTIAL_DEAD, SYNC, FailureAction.MARK_AUTH_FAILURE),
        (FailureKind.CREDENTIAL_DEAD, SAVE, FailureAction.MARK_AUTH_FAILURE),
        (FailureKind.CREDENTIAL_DEAD, DISCONNECT, FailureAction.CLEAN_UP),
        (FailureKind.CREDENTIAL_UNREADABLE, SYNC, FailureAction.MARK_AUTH_FAILURE),
        (FailureKind.CREDENTIAL_UNREADABLE, SAVE, FailureAction.REPORT),
        (FailureKind.CREDENTIAL_UNREADABLE, DISCONNECT, FailureAction.REPORT),
        (FailureKind.INSTALLATION_GONE, SYNC, FailureAction.CLEAN_UP),
        (FailureKind.INSTALLATION_GONE, SAVE, FailureAction.CLEAN_UP),
        (FailureKind.INSTALLATION_GONE, DISCONNECT, FailureAction.CLEAN_UP),
        (FailureKind.TRANSIENT, SYNC, FailureAction.RETRY_LATER),
        (FailureKind.TRANSIENT, SAVE, FailureAction.RETRY_LATER),
        (FailureKind.TRANSIENT, DISCONNECT, FailureAction.RETRY_LATER),
    ],
)
def test_every_kind_in_every_place_has_its_action(
    kind: FailureKind, context: FailureContext, action: FailureAction
) -> None:
    assert decide(kind, context) is action


def test_marking_takes_the_installation_off_the_schedule() -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED))

    action = handle_failure(GrantRevokedError("dead"), SYNC, installations, INSTALLATION)

    stored = installations.get(INSTALLATION)
    assert action is FailureAction.MARK_AUTH_FAILURE
    assert stored is not None
    assert (stored.status, stored.local_error) == (
        InstallationStatus.INACTIVE,
        LocalError.AUTH_ERROR,
    )
    assert not stored.schedulable


def test_cleaning_up_deletes_the_installation_locally() -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED))

    action = handle_failure(
        NotFoundError("gone", status_code=404), SAVE, installations, INSTALLATION
    )

    assert action is FailureAction.CLEAN_UP
    assert installations.deleted == [INSTALLATION]


@pytest.mark.parametrize(
    "error",
    [RateLimitError("slow down", status_code=429), CredentialDecryptError("moved")],
    ids=["transient", "unreadable on a page"],
)
def test_retry_later_and_report_leave_the_installation_as_it_is(error: Exception) -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED))

    handle_failure(error, SAVE, installations, INSTALLATION)

    assert installations.get(INSTALLATION) == record(InstallationStatus.ACTIVATED)
    assert installations.deleted == []
