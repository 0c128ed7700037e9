"""Errors of the connect flows. Each carries the message a user may see and the HTTP status it
maps to; the detail for operators goes to the logs, never a secret."""

from __future__ import annotations


class ConnectError(Exception):
    status_code = 400
    title: str | None = None

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class BadCallbackError(ConnectError):
    """The callback's parameters are missing, malformed, oversized or repeated."""


class StateRejectedError(ConnectError):
    """Unknown, used or expired state, or one that came back to another browser."""


class IssuerMismatchError(ConnectError):
    """The callback's `iss` is not the configured authorization server (RFC 9207)."""


class AuthorizationDeniedError(ConnectError):
    """Pleo sent `error=` back (the user declined, or Pleo refused)."""

    def __init__(self, error: str, description: str | None) -> None:
        super().__init__("Pleo did not authorize the connection.")
        self.error = error
        self.description = description


class GrantExchangeError(ConnectError):
    """The code could not be exchanged (expired, used, or minted for another verifier)."""


class PleoUnavailableError(ConnectError):
    """Pleo could not be reached or answered with something unusable; nothing was stored."""

    status_code = 502


class InvalidApiKeyError(ConnectError):
    """The pasted key is malformed or Pleo does not accept it. Never carries the key."""


class KeyForAnotherInstallationError(InvalidApiKeyError):
    """A replacement key that belongs to another company than the session's installation."""

    status_code = 403


class SyncRunningError(ConnectError):
    """Disconnecting while Pleo shows PENDING_INTEGRATION would lose data."""

    status_code = 409


class NotInstalledError(ConnectError):
    """The session's installation no longer exists here (disconnected or removed in Pleo)."""

    status_code = 401
