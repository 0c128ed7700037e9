"""The one error a source raises when it cannot be read or is not a valid document.

Whatever went wrong (refused by the deployment's rules, unreachable, too large, too slow, not
valid), the sync sees a `SourceError` and counts it as a failure of the accounting system. Its
message is written for the customer and never holds the source itself: a URL may carry a token
in its query, and a document's values are the customer's data.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pleo_connector.adapters.base import SourceError as AccountingSystemError


class SourceProblem(StrEnum):
    """What kind of failure it was, for logs and counters (the message says it in words)."""

    REFUSED = "refused"  # the deployment's rules do not allow this source
    NOT_FOUND = "not_found"
    UNREACHABLE = "unreachable"  # DNS, connection, TLS, an HTTP error status, an AWS error
    TOO_LARGE = "too_large"
    TOO_SLOW = "too_slow"
    INVALID = "invalid"  # not JSON, or JSON that breaks the format's schema; not a GnuCash book
    LOCKED = "locked"  # a GnuCash book that GnuCash holds open (its lock table has a row)
    UNSUPPORTED = "unsupported"  # a GnuCash book of a format this connector does not read


class SourceError(AccountingSystemError):
    """The source could not be used; nothing read from it may be applied. A kind of the port's
    `SourceError`, so the sync engine and the failure policy count it as the accounting system's
    failure.

    `location` is the path in the document of the first bad record (`vendors[3].currency`) when
    the document broke the schema. Shown on a page, it reads as the accounting system's side
    failing (a 502), never as this app's.
    """

    http_status: ClassVar[int] = 502
    title: ClassVar[str | None] = "The accounting data could not be read"

    def __init__(
        self, user_message: str, *, problem: SourceProblem, location: str | None = None
    ) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.problem = problem
        self.location = location
