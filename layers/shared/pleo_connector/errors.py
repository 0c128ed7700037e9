"""The root of every error this package raises on purpose, and what each means over HTTP.

Each family (connect, Pleo, store, crypto, web) derives from `ConnectorError`, and each error class
says, as class attributes, which status a page shows for it and what a user may read. The page
handlers map them in one place (`composition.http`); the exception's own text is for the logs, and
no message ever holds a secret.
"""

from __future__ import annotations

from typing import ClassVar

GENERIC_MESSAGE = "Something went wrong on our side. Please try again in a moment."


class ConnectorError(Exception):
    """Base of the family. `http_status` and `user_message` are what a page shows; `title`,
    `start_again` (offer the ways to connect again; None: only on a 401), `clears_session` (the
    response drops the session cookie) and `back_to` (an app route to link back to) shape it."""

    http_status: ClassVar[int] = 500
    user_message: str = GENERIC_MESSAGE
    title: ClassVar[str | None] = None
    start_again: ClassVar[bool | None] = None
    clears_session: ClassVar[bool] = False
    back_to: ClassVar[str | None] = None


class ConfigurationError(ConnectorError):
    """The function is deployed without something it needs (a setting, a secret, an adapter):
    an operator's problem, shown to users as a plain 500."""
