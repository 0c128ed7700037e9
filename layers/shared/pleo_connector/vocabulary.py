"""The words every package shares: installation statuses, auth methods, sync reasons and outcomes.

One enum per idea, so a status or an outcome is never a bare string that a typo can change. Values
are the strings stored in DynamoDB, sent in SQS messages and shown in logs. Reading a stored value
that is not a member is an error (`parse_stored`), never a silent default.
"""

from __future__ import annotations

from enum import StrEnum

from pleo_connector.errors import ConnectorError


class InstallationStatus(StrEnum):
    """Pleo's installation lifecycle (App Marketplace API)."""

    AUTHORIZED = "AUTHORIZED"
    PENDING_INTEGRATION = "PENDING_INTEGRATION"
    ACTIVATED = "ACTIVATED"
    INACTIVE = "INACTIVE"
    ERROR = "ERROR"


# The statuses the dispatcher syncs (a first sync runs while PENDING_INTEGRATION).
SCHEDULABLE_STATUSES = frozenset(
    {InstallationStatus.ACTIVATED, InstallationStatus.PENDING_INTEGRATION}
)


class InstallationErrorCode(StrEnum):
    """Pleo's `errorCode` of an installation in ERROR."""

    NOT_ENTITLED = "NOT_ENTITLED"
    AUTH_ERROR = "AUTH_ERROR"


class LocalError(StrEnum):
    """What this app knows is wrong with an installation, whatever Pleo says of it. Only
    AUTH_ERROR keeps it off the schedule (until the user reconnects); SOURCE_FAILING records that
    the accounting system could not be read, for the failure count and the settings page."""

    AUTH_ERROR = "AUTH_ERROR"
    SOURCE_FAILING = "SOURCE_FAILING"


class AuthMethod(StrEnum):
    """How an installation authenticates to Pleo; also the kind of its stored credential."""

    OAUTH = "oauth"
    API_KEY = "api_key"


class SyncReason(StrEnum):
    """Why a sync message was sent."""

    FIRST_SYNC = "first_sync"
    SCHEDULED = "scheduled"
    SYNC_NOW = "sync_now"
    CONTINUATION = "continuation"
    # Refresh an OAuth grant that nothing used for long (Pleo promises >= 60 days of life).
    KEEP_ALIVE = "keep_alive"
    # A dry run: read both sides and plan, write nothing to Pleo; the plan is kept for the page.
    PREVIEW = "preview"


class SyncOutcome(StrEnum):
    """What one sync request came to (logs, tests, the run record)."""

    SYNCED = "synced"
    ACTIVATED = "activated"
    SKIPPED = "skipped"
    GONE = "gone"
    REMOVED = "removed"
    AUTH_FAILED = "auth_failed"
    REFRESHED = "refreshed"
    FRESH = "fresh"
    BUSY = "busy"  # another run of the installation holds the lease: it does the work
    CONTINUED = "continued"  # stopped at the deadline; a continuation message carries on
    DEFERRED = "deferred"  # too little time left in this invocation to start: queued again
    SOURCE_FAILED = "source_failed"  # the accounting system could not be read: counted
    DEACTIVATED = "deactivated"  # one source failure too many: INACTIVE in Pleo
    FAILED = "failed"  # raised (Pleo, DynamoDB...): the message is retried
    PREVIEWED = "previewed"  # a dry run planned, wrote nothing to Pleo, and kept its plan
    # A scheduled run found the source and the settings as the last full run left them, within
    # the full-reconcile interval: Pleo was not read (`SYNC_FULL_RECONCILE_HOURS`).
    UNCHANGED = "unchanged"


class PreviewState(StrEnum):
    """Where a dry run is, as the settings page shows it. NONE and LOST are never stored: no dry
    run was asked for, or one asked for did not finish in time (its message was lost)."""

    NONE = "none"
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"
    LOST = "lost"

    @property
    def unfinished(self) -> bool:
        """Asked for and not planned yet: the page shows progress, a second request waits."""
        return self in (PreviewState.QUEUED, PreviewState.RUNNING)


class Kind(StrEnum):
    """The kinds of record, in the order a run applies them (a tag needs its group, an account
    may name a tax code)."""

    TAG_GROUP = "tag_group"
    TAG = "tag"
    TAX_CODE = "tax_code"
    VENDOR = "vendor"
    ACCOUNT = "account"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"
    ADOPT = "adopt"  # a record a person made in Pleo whose key the source has: owned from now on


class UnknownStoredValueError(ConnectorError):
    """A stored item holds a value this version of the app does not know: a bug or a newer
    writer, never something to paper over with a default."""


def parse_stored[E: StrEnum](enum: type[E], value: str, *, field: str) -> E:
    """`enum(value)`, or UnknownStoredValueError naming the field (never the item's content)."""
    try:
        return enum(value)
    except ValueError:
        raise UnknownStoredValueError(f"stored {field} is not a known {enum.__name__}") from None
