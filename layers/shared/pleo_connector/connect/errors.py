"""Errors of the connect flows. Each carries the message a user may see and the HTTP status it
maps to; the detail for operators goes to the logs, never a secret."""

from __future__ import annotations

from typing import ClassVar

from pleo_connector.errors import ConnectorError


class ConnectError(ConnectorError):
    """A connect flow refused the request; its message is written for the user."""

    http_status: ClassVar[int] = 400

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class SignInError(ConnectError):
    """A failed sign-in can only be retried from the start: its page offers that."""

    start_again: ClassVar[bool | None] = True


class BadCallbackError(SignInError):
    """The callback's parameters are missing, malformed, oversized or repeated."""


class StateRejectedError(SignInError):
    """Unknown, used or expired state, or one that came back to another browser."""


class IssuerMismatchError(SignInError):
    """The callback's `iss` is not the configured authorization server (RFC 9207)."""


class GrantExchangeError(SignInError):
    """The code could not be exchanged (expired, used, or minted for another verifier)."""


class AuthorizationDeniedError(ConnectError):
    """Pleo sent `error=` back (the user declined, or Pleo refused): shown on its own page."""

    def __init__(self, error: str, description: str | None) -> None:
        super().__init__("Pleo did not authorize the connection.")
        self.error = error
        self.description = description


class PleoUnavailableError(ConnectError):
    """Pleo could not be reached or answered with something unusable; nothing was stored."""

    http_status: ClassVar[int] = 502


class InvalidApiKeyError(ConnectError):
    """The pasted key is malformed or Pleo does not accept it. Never carries the key."""


class KeyForAnotherInstallationError(InvalidApiKeyError):
    """A replacement key that belongs to another company than the session's installation."""

    http_status: ClassVar[int] = 403


class SyncRunningError(ConnectError):
    """Disconnecting while Pleo shows PENDING_INTEGRATION would lose data."""

    http_status: ClassVar[int] = 409


class SyncAlreadyQueuedError(ConnectError):
    """ "Sync now" pressed again while a sync is queued or running."""

    http_status: ClassVar[int] = 409
    back_to: ClassVar[str | None] = "/settings"


class PreviewAlreadyQueuedError(ConnectError):
    """A dry run asked for while the last one is still being planned."""

    http_status: ClassVar[int] = 409
    back_to: ClassVar[str | None] = "/settings"


class NothingToPreviewError(ConnectError):
    """A dry run of the saved settings when none are saved yet."""

    back_to: ClassVar[str | None] = "/settings"


class NotInstalledError(ConnectError):
    """The session's installation no longer exists here (disconnected or removed in Pleo)."""

    http_status: ClassVar[int] = 401
