"""The one failure policy: from an error met while working for an installation to what happens to
that installation.

Every service that talks to Pleo with an installation's credential asks here, so the same error is
never handled two ways. `classify` names what went wrong; `decide` says, for where it happened,
what to do: mark the installation (dead credential: off the schedule until the user reconnects),
clean it up (Pleo says it is gone), retry later (transient), or report it as it is. `handle_failure`
does all three steps and performs the action on the installation store.

What differs by place is deliberate and visible in `_ACTIONS`: a credential that does not decrypt
is marked by a sync (nobody is watching), but only reported by the pages, where the user sees the
problem and may fix it by connecting again; a disconnect with a dead credential still forgets the
installation locally, since Pleo can no longer be told.

A `NotFoundError` is taken to mean the installation is gone: callers pass only errors of calls
about the installation itself (the sync engine handles a missing record of its own).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pleo_connector.crypto import CredentialDecryptError, CredentialError, CryptoError
from pleo_connector.observability import logger
from pleo_connector.pleo.errors import AuthenticationError, NotFoundError, PleoError
from pleo_connector.store.errors import StoreUnavailableError
from pleo_connector.sync_queue import QueueError
from pleo_connector.tokens import TokenRefreshBusyError
from pleo_connector.vocabulary import InstallationStatus

if TYPE_CHECKING:
    from pleo_connector.ports import InstallationStore


class FailureKind(StrEnum):
    CREDENTIAL_DEAD = "credential_dead"  # Pleo rejected it, or the grant was revoked
    CREDENTIAL_UNREADABLE = "credential_unreadable"  # it does not decrypt for this installation
    INSTALLATION_GONE = "installation_gone"  # the customer removed the app in Pleo
    TRANSIENT = "transient"  # Pleo, DynamoDB, KMS or SQS failing for now


class FailureContext(StrEnum):
    SYNC = "sync"
    SAVE_SETTINGS = "save_settings"
    DISCONNECT = "disconnect"


class FailureAction(StrEnum):
    MARK_AUTH_FAILURE = "mark_auth_failure"
    CLEAN_UP = "clean_up"
    RETRY_LATER = "retry_later"
    REPORT = "report"


_ACTIONS: dict[tuple[FailureKind, FailureContext], FailureAction] = {
    (FailureKind.CREDENTIAL_DEAD, FailureContext.SYNC): FailureAction.MARK_AUTH_FAILURE,
    (FailureKind.CREDENTIAL_DEAD, FailureContext.SAVE_SETTINGS): FailureAction.MARK_AUTH_FAILURE,
    (FailureKind.CREDENTIAL_DEAD, FailureContext.DISCONNECT): FailureAction.CLEAN_UP,
    (FailureKind.CREDENTIAL_UNREADABLE, FailureContext.SYNC): FailureAction.MARK_AUTH_FAILURE,
    (FailureKind.CREDENTIAL_UNREADABLE, FailureContext.SAVE_SETTINGS): FailureAction.REPORT,
    (FailureKind.CREDENTIAL_UNREADABLE, FailureContext.DISCONNECT): FailureAction.REPORT,
    (FailureKind.INSTALLATION_GONE, FailureContext.SYNC): FailureAction.CLEAN_UP,
    (FailureKind.INSTALLATION_GONE, FailureContext.SAVE_SETTINGS): FailureAction.CLEAN_UP,
    (FailureKind.INSTALLATION_GONE, FailureContext.DISCONNECT): FailureAction.CLEAN_UP,
    (FailureKind.TRANSIENT, FailureContext.SYNC): FailureAction.RETRY_LATER,
    (FailureKind.TRANSIENT, FailureContext.SAVE_SETTINGS): FailureAction.RETRY_LATER,
    (FailureKind.TRANSIENT, FailureContext.DISCONNECT): FailureAction.RETRY_LATER,
}

# Pleo can no longer be told of a dead credential (nothing authenticates us), so the status
# recorded locally is INACTIVE; the settings page explains it and offers to connect again.
MARKED_STATUS = InstallationStatus.INACTIVE


def classify(error: BaseException) -> FailureKind | None:
    """What went wrong, or None for an error the policy does not cover (a bug: let it raise)."""
    if isinstance(error, CredentialDecryptError):
        return FailureKind.CREDENTIAL_UNREADABLE
    if isinstance(error, CredentialError | AuthenticationError):
        return FailureKind.CREDENTIAL_DEAD
    if isinstance(error, NotFoundError):
        return FailureKind.INSTALLATION_GONE
    if isinstance(
        error, PleoError | StoreUnavailableError | CryptoError | QueueError | TokenRefreshBusyError
    ):
        return FailureKind.TRANSIENT
    return None


def decide(kind: FailureKind, context: FailureContext) -> FailureAction:
    return _ACTIONS[(kind, context)]


def handle_failure(
    error: BaseException,
    context: FailureContext,
    installations: InstallationStore,
    installation_id: str,
) -> FailureAction | None:
    """Classify `error`, decide, and do it to the installation. None: not the policy's to handle
    (the caller re-raises). The caller then answers as its place requires (a page, an outcome)."""
    kind = classify(error)
    if kind is None:
        return None
    action = decide(kind, context)
    if action is FailureAction.MARK_AUTH_FAILURE:
        installations.mark_auth_failure(installation_id, status=MARKED_STATUS)
    elif action is FailureAction.CLEAN_UP:
        installations.delete_all(installation_id)
    logger.warning(
        "installation failure handled",
        extra={
            "installation_id": installation_id,
            "failure": str(kind),
            "action": str(action),
            "context": str(context),
            "error_type": type(error).__name__,
        },
    )
    return action
