"""Domain errors of the storage layer.

Only the DynamoDB adapter (dynamodb.py) turns botocore's `ClientError` codes into these, so callers
branch on types, never on AWS error codes or message text. Messages name the operation and the
error code, never an item's values (items hold ciphertexts, verifiers and hashes).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pleo_connector.errors import ConnectorError


class StoreError(ConnectorError):
    """DynamoDB refused or failed a request for a reason callers cannot fix by retrying at once."""

    def __init__(self, message: str, *, operation: str = "", code: str = "") -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code


class StoreUnavailableError(StoreError):
    """Throttled or failing for now: the request may succeed later."""

    http_status: ClassVar[int] = 503


class WriteConflictError(StoreError):
    """A conditional write lost: the item changed (or appeared, or vanished) since it was read.

    `current` holds the item as DynamoDB saw it when the condition failed, where it returned one.
    Reaching a page, it is a 409: something else (a sync, another tab) changed it meanwhile.
    """

    http_status: ClassVar[int] = 409
    user_message = "This connection changed while the request ran. Please try again."

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        code: str = "",
        current: dict[str, Any] | None = None,
        reasons: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, operation=operation, code=code)
        self.current = current
        self.reasons = reasons


class IndexUnavailableError(StoreError):
    """A query named an index DynamoDB cannot serve: still backfilling after it was added (hours,
    on a large table), or missing (a table made before the index, DynamoDB Local). Whoever can
    read the table another way (a scan) may fall back to that."""


class InstallationNotFoundError(StoreError):
    """No installation with that id is stored."""


class CompanyAlreadyInstalledError(WriteConflictError):
    """The company already points at another installation: remove that one first (delete_all)."""
