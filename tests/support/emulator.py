"""The emulator's client for tests, and what the `pleo_emulator` fixture yields.

`EmulatorControl` (the control API, plus the OAuth consent without a browser) lives in
local/pleo_emulator/control_client.py, standard library only, so the benchmarks and the local world
use the same one; it is re-exported here under the names the tests import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local.pleo_emulator.control_client import (
    EmulatorControl,
    EmulatorError,
    Pkce,
    consent_form_fields,
)
from local.pleo_emulator.state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_COMPANY_ID,
    DEFAULT_REDIRECT_URI,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_COMPANY_ID",
    "DEFAULT_REDIRECT_URI",
    "EmulatorControl",
    "EmulatorError",
    "Pkce",
    "RunningEmulator",
    "consent_form_fields",
]


@dataclass
class RunningEmulator:
    """What the `pleo_emulator` fixture yields: the process, its URL and its control client."""

    url: str
    control: EmulatorControl
    service: Any = None
