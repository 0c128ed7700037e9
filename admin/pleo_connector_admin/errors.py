"""The admin tool's failures: each one a message for the operator and an exit code for scripts."""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_TARGET = 3
EXIT_UNKNOWN_INSTALLATION = 4
EXIT_REFUSED = 5


class AdminError(Exception):
    """Something the operator must know; printed as `error: <message>`, never as a traceback."""

    exit_code: ClassVar[int] = EXIT_FAILED


class UsageError(AdminError):
    exit_code = EXIT_USAGE


class TargetNotFoundError(AdminError):
    """No local world runs, the stack does not exist, or AWS cannot be reached to find it."""

    exit_code = EXIT_NO_TARGET


class UnknownInstallationError(AdminError):
    exit_code = EXIT_UNKNOWN_INSTALLATION


class RefusedError(AdminError):
    """The action is refused in the installation's current state (a sync running, one queued)."""

    exit_code = EXIT_REFUSED
