"""The one failure policy: from an error met while working for an installation to what happens to
that installation.

Every service that talks to Pleo with an installation's credential asks here, so the same error is
never handled two ways. `classify` names what went wrong; `decide` says, for where it happened,
what to do: mark the installation (dead credential: off the schedule until the user reconnects),
clean it up (Pleo says it is gone), retry later (transient), count a failure of the accounting
system, or report it as it is. `handle_failure` does all three steps and performs the action on the
installation store.

A source that cannot be read or validated (`SourceError`) is not retried at once: the run ends,
nothing is written to Pleo, and the failure is counted with its reason. After
`max_source_failures` such runs in a row the action becomes DEACTIVATE, which the sync performs
with `deactivate_after_source_failures` (Pleo first, then locally, so that a failure half-way is
retried rather than leaving Pleo untold). A successful run resets the count.

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

from pleo_connector import metrics
from pleo_connector.adapters.base import SourceError
from pleo_connector.config import DEFAULT_MAX_SOURCE_FAILURES
from pleo_connector.crypto import CredentialDecryptError, CredentialError, CryptoError
from pleo_connector.observability import logger
from pleo_connector.pleo.errors import AuthenticationError, NotFoundError, PleoError
from pleo_connector.store.errors import StoreUnavailableError
from pleo_connector.sync_queue import QueueError
from pleo_connector.tokens import TokenRefreshBusyError
from pleo_connector.vocabulary import InstallationStatus, LocalError

if TYPE_CHECKING:
    from pleo_connector.ports import InstallationsApi, InstallationStore
    from pleo_connector.store.installations import InstallationRecord

MAX_REASON_CHARS = 500


class FailureKind(StrEnum):
    CREDENTIAL_DEAD = "credential_dead"  # Pleo rejected it, or the grant was revoked
    CREDENTIAL_UNREADABLE = "credential_unreadable"  # it does not decrypt for this installation
    INSTALLATION_GONE = "installation_gone"  # the customer removed the app in Pleo
    TRANSIENT = "transient"  # Pleo, DynamoDB, KMS or SQS failing for now
    SOURCE_FAILING = "source_failing"  # the accounting system could not be read or validated


class FailureContext(StrEnum):
    SYNC = "sync"
    SAVE_SETTINGS = "save_settings"
    DISCONNECT = "disconnect"


class FailureAction(StrEnum):
    MARK_AUTH_FAILURE = "mark_auth_failure"
    CLEAN_UP = "clean_up"
    RETRY_LATER = "retry_later"
    REPORT = "report"
    COUNT_SOURCE_FAILURE = "count_source_failure"
    DEACTIVATE = "deactivate"  # counted one source failure too many: INACTIVE in Pleo


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
    # Only a sync counts it: the pages show the problem to the user, who is there to fix it.
    (FailureKind.SOURCE_FAILING, FailureContext.SYNC): FailureAction.COUNT_SOURCE_FAILURE,
    (FailureKind.SOURCE_FAILING, FailureContext.SAVE_SETTINGS): FailureAction.REPORT,
    (FailureKind.SOURCE_FAILING, FailureContext.DISCONNECT): FailureAction.REPORT,
}

# Pleo can no longer be told of a dead credential (nothing authenticates us), so the status
# recorded locally is INACTIVE; the settings page explains it and offers to connect again.
MARKED_STATUS = InstallationStatus.INACTIVE


def classify(error: BaseException) -> FailureKind | None:
    """What went wrong, or None for an error the policy does not cover (a bug: let it raise)."""
    if isinstance(error, SourceError):
        return FailureKind.SOURCE_FAILING
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


def source_failure_reason(error: BaseException) -> str:
    """What is kept (and shown) of a source failure: its message, written for the customer."""
    text = " ".join(str(error).split())
    if not text and isinstance(error, SourceError):
        text = error.user_message
    text = text or "The accounting system could not be read."
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def handle_failure(
    error: BaseException,
    context: FailureContext,
    installations: InstallationStore,
    installation_id: str,
    *,
    max_source_failures: int = DEFAULT_MAX_SOURCE_FAILURES,
) -> FailureAction | None:
    """Classify `error`, decide, and do it to the installation. None: not the policy's to handle
    (the caller re-raises). The caller then answers as its place requires (a page, an outcome);
    DEACTIVATE is the caller's to perform (`deactivate_after_source_failures`), since Pleo must
    be told first."""
    kind = classify(error)
    if kind is None:
        return None
    action = decide(kind, context)
    if action is FailureAction.MARK_AUTH_FAILURE:
        installations.mark_auth_failure(installation_id, status=MARKED_STATUS)
        metrics.installation_stopped()
    elif action is FailureAction.CLEAN_UP:
        installations.delete_all(installation_id)
    elif action is FailureAction.COUNT_SOURCE_FAILURE:
        counted = installations.record_source_failure(installation_id, source_failure_reason(error))
        if counted.failure_count >= max_source_failures:
            action = FailureAction.DEACTIVATE
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


async def deactivate_after_source_failures(
    installations: InstallationStore, installation_id: str, pleo: InstallationsApi
) -> InstallationRecord:
    """INACTIVE in Pleo (its metadata kept: a PUT replaces it), then locally, off the schedule;
    the count and the reason stay for the settings page. Saving working settings brings it back."""
    current = await pleo.get()
    await pleo.update(InstallationStatus.INACTIVE, metadata=current.metadata)
    record = installations.update_status(
        installation_id, InstallationStatus.INACTIVE, local_error=LocalError.SOURCE_FAILING
    )
    metrics.installation_stopped()
    logger.warning(
        "installation deactivated after repeated source failures",
        extra={"installation_id": installation_id, "failures": record.failure_count},
    )
    return record
