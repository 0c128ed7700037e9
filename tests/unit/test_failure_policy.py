"""The one failure policy: each kind of error, in each place, comes to one action, and the action
is done to the installation."""

from __future__ import annotations

import pytest

from pleo_connector.adapters.base import SourceError
from pleo_connector.aio import run
from pleo_connector.crypto import CredentialDecryptError, CryptoError
from pleo_connector.failure_policy import (
    FailureAction,
    FailureContext,
    FailureKind,
    classify,
    deactivate_after_source_failures,
    decide,
    handle_failure,
    source_failure_reason,
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
from tests.unit.connect.fakes import (
    INSTALLATION,
    FakeInstallations,
    FakeInstallationsApi,
    installation,
    record,
)

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
        (SourceError("not valid JSON"), FailureKind.SOURCE_FAILING),
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
        (FailureKind.SOURCE_FAILING, SYNC, FailureAction.COUNT_SOURCE_FAILURE),
        (FailureKind.SOURCE_FAILING, SAVE, FailureAction.REPORT),
        (FailureKind.SOURCE_FAILING, DISCONNECT, FailureAction.REPORT),
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


def test_a_source_failure_in_a_sync_is_counted_with_its_reason() -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED))
    error = SourceError("The source answered 404 Not Found.")

    action = handle_failure(error, SYNC, installations, INSTALLATION)

    stored = installations.get(INSTALLATION)
    assert action is FailureAction.COUNT_SOURCE_FAILURE
    assert stored is not None
    assert (stored.failure_count, stored.local_error, stored.failure_reason) == (
        1,
        LocalError.SOURCE_FAILING,
        "The source answered 404 Not Found.",
    )
    assert stored.status == InstallationStatus.ACTIVATED  # the status is not the count's


def test_the_failure_that_reaches_the_limit_deactivates() -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED))
    error = SourceError("unreachable")

    actions = [
        handle_failure(error, SYNC, installations, INSTALLATION, max_source_failures=3)
        for _ in range(3)
    ]

    assert actions == [
        FailureAction.COUNT_SOURCE_FAILURE,
        FailureAction.COUNT_SOURCE_FAILURE,
        FailureAction.DEACTIVATE,
    ]


def test_a_source_failure_on_a_page_is_reported_not_counted() -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED))

    action = handle_failure(SourceError("unreachable"), SAVE, installations, INSTALLATION)

    assert action is FailureAction.REPORT
    assert installations.get(INSTALLATION) == record(InstallationStatus.ACTIVATED)


def test_deactivating_tells_pleo_first_keeping_its_metadata_then_unschedules() -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED))
    installations.record_source_failure(INSTALLATION, "unreachable")
    api = FakeInstallationsApi(installation(InstallationStatus.ACTIVATED))

    stored = run(deactivate_after_source_failures(installations, INSTALLATION, api))

    assert api.updates == [(InstallationStatus.INACTIVE, {"kept": {"by": "someone else"}})]
    assert (stored.status, stored.local_error, stored.failure_reason) == (
        InstallationStatus.INACTIVE,
        LocalError.SOURCE_FAILING,
        "unreachable",
    )
    assert not stored.schedulable


def test_a_deactivation_pleo_refuses_changes_nothing_here() -> None:
    installations = FakeInstallations(record(InstallationStatus.ACTIVATED))
    api = FakeInstallationsApi(installation(InstallationStatus.ACTIVATED))
    api.get_error = RateLimitError("slow down", status_code=429)

    with pytest.raises(RateLimitError):
        run(deactivate_after_source_failures(installations, INSTALLATION, api))

    assert installations.get(INSTALLATION) == record(InstallationStatus.ACTIVATED)


def test_the_reason_kept_is_the_message_on_one_line_and_bounded() -> None:
    assert source_failure_reason(SourceError("line one\n  line two")) == "line one line two"
    assert source_failure_reason(SourceError()) == SourceError.user_message
    assert len(source_failure_reason(SourceError("x" * 5000))) == 500
