"""Settings, parsed once from the environment into pydantic models.

Each function composes the parts it needs, so a function is never asked for configuration it does
not use. An explicit argument beats the environment, which beats the default: tests pass values
directly, Lambda passes the environment.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_MAX_SOURCE_FAILURES = 5


class _FromEnvironment(BaseModel):
    """Built on first use (`defer_build`): a function parses two of these models, and building
    the validators of all thirteen at import doubled this module's import time."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class ObservabilitySettings(_FromEnvironment):
    """What every handler's wrapper reads: whether X-Ray tracing is on (the stack's
    `EnableTracing`), so that the X-Ray SDK is imported only then."""

    tracing_enabled: bool = Field(alias="TRACING_ENABLED", default=False)


class StoreSettings(_FromEnvironment):
    """Where installations, credentials and OAuth state live."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    kms_key_id: str = Field(alias="KMS_KEY_ID", min_length=1)


class PleoSettings(_FromEnvironment):
    """How to reach Pleo: never hard-coded, so staging, production and the emulator all work."""

    pleo_auth_url: HttpUrl = Field(alias="PLEO_AUTH_URL")
    pleo_api_url: HttpUrl = Field(alias="PLEO_API_URL")
    pleo_client_id: str = Field(alias="PLEO_CLIENT_ID", min_length=1)
    pleo_client_secret_id: str = Field(alias="PLEO_CLIENT_SECRET_ID", min_length=1)
    pleo_scopes: str = Field(alias="PLEO_SCOPES", default="")
    # RFC 9207: the `iss` the authorization server names itself with on the callback. Unset (or
    # empty): derived from PLEO_AUTH_URL, see `issuer`.
    pleo_issuer: str = Field(alias="PLEO_ISSUER", default="")
    # Whether a callback without `iss` is refused: true for a server that sends it (RFC 9207
    # section 2.4), as Pleo's authorization server is configured; false accepts an absent one.
    pleo_require_iss: bool = Field(alias="PLEO_REQUIRE_ISS", default=True)
    pleo_rate_budget_per_min: int = Field(alias="PLEO_RATE_BUDGET_PER_MIN", default=500, gt=0)

    @property
    def auth_base(self) -> str:
        """The authorization server's base URL without a trailing slash (paths are appended)."""
        return _base(self.pleo_auth_url)

    @property
    def api_base(self) -> str:
        """The API's base URL without a trailing slash."""
        return _base(self.pleo_api_url)

    @property
    def issuer(self) -> str:
        """The issuer identifier a callback's `iss` must equal, character for character.

        Derived, it is PLEO_AUTH_URL without a trailing slash: pydantic writes a bare origin as
        `https://auth.pleo.io/`, while an authorization server names itself `https://auth.pleo.io`
        (RFC 8414 issuers are URLs without query or fragment; the Pleo emulator, and this app's
        endpoint paths, treat the auth URL as a base without its slash). A server whose issuer
        does end in a slash is configured with PLEO_ISSUER, which is used exactly as given.
        """
        return self.pleo_issuer or self.auth_base


class QueueSettings(_FromEnvironment):
    """Where sync work is queued."""

    sync_queue_url: str = Field(alias="SYNC_QUEUE_URL", min_length=1)


class WebSettings(_FromEnvironment):
    """What the pages need: the public base URL builds every redirect URI, never request headers."""

    public_base_url: HttpUrl = Field(alias="PUBLIC_BASE_URL")
    session_secret_id: str = Field(alias="SESSION_SECRET_ID", min_length=1)
    requires_configuration: bool = Field(alias="REQUIRES_CONFIGURATION", default=True)

    @property
    def public_base(self) -> str:
        """The public base URL without a trailing slash: every app URL is built on it."""
        return _base(self.public_base_url)

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_base}/oauth/callback"


class AdapterSettings(_FromEnvironment):
    """Which accounting-system adapter this deployment reads (see adapters/registry.py), and
    where its sources may be read from (see adapters/sources.py). A source is what a customer
    typed, so every default is the strict one: no local files, no bucket, tight caps."""

    adapter: str = Field(alias="ADAPTER", default="placeholder", min_length=1)
    # A path on the function's own file system: true only in the local world.
    allow_local_sources: bool = Field(alias="ALLOW_LOCAL_SOURCES", default=False)
    # The one bucket (and key prefix in it) that `s3://` sources may name; empty: none.
    source_bucket: str = Field(alias="SOURCE_BUCKET", default="")
    source_prefix: str = Field(alias="SOURCE_PREFIX", default="")
    source_max_bytes: int = Field(alias="SOURCE_MAX_BYTES", default=50 * 1024 * 1024, gt=0)
    source_connect_timeout_s: float = Field(
        alias="SOURCE_CONNECT_TIMEOUT_S", default=5.0, gt=0, le=60
    )
    # The longest wait for the next piece of the body.
    source_read_timeout_s: float = Field(alias="SOURCE_READ_TIMEOUT_S", default=15.0, gt=0, le=300)
    # The whole read, from the first connection to the last byte.
    source_total_timeout_s: float = Field(
        alias="SOURCE_TOTAL_TIMEOUT_S", default=60.0, gt=0, le=900
    )


# --- one model per function: exactly the settings it needs -------------------------------------


class OAuthFunctionSettings(StoreSettings, PleoSettings, WebSettings, QueueSettings):
    """GET /oauth/start and /oauth/callback."""


class ApiKeyInstallFunctionSettings(StoreSettings, PleoSettings, WebSettings, QueueSettings):
    """GET and POST /install/api-key."""


class SettingsFunctionSettings(
    StoreSettings, PleoSettings, WebSettings, QueueSettings, AdapterSettings
):
    """The settings page and "sync now"."""


class DisconnectFunctionSettings(StoreSettings, PleoSettings, WebSettings):
    """POST /settings/disconnect."""


class DispatcherFunctionSettings(StoreSettings, QueueSettings):
    """The scheduled dispatcher."""

    # The schedule's period (the template's `SyncRateMinutes`, within its bounds).
    sync_rate_minutes: int = Field(alias="SYNC_RATE_MINUTES", default=60, ge=5, le=720)


class WorkerFunctionSettings(StoreSettings, PleoSettings, QueueSettings, AdapterSettings):
    """The sync worker."""

    # After this many runs in a row that could not read the accounting system, the installation
    # becomes INACTIVE in Pleo (the settings page says why); a successful run resets the count.
    sync_max_source_failures: int = Field(
        alias="SYNC_MAX_SOURCE_FAILURES", default=DEFAULT_MAX_SOURCE_FAILURES, ge=1
    )
    # A run stops at a checkpoint this long before Lambda's own timeout: time enough for the
    # requests in flight to end, the run to be recorded and its continuation to be queued.
    sync_deadline_margin_s: float = Field(alias="SYNC_DEADLINE_MARGIN_S", default=20.0, ge=0)
    # The lease outlives the run's deadline and margin by this much, so it never expires under a
    # live run; a crashed run blocks the next one for this long past its invocation's end.
    sync_lease_grace_s: float = Field(alias="SYNC_LEASE_GRACE_S", default=30.0, ge=0)
    # Above 0, a scheduled run skips Pleo when the source and the settings have not changed since
    # a complete run, and Pleo is read in full at least this often (`sync.engine`); 0: always.
    sync_full_reconcile_hours: float = Field(
        alias="SYNC_FULL_RECONCILE_HOURS", default=0.0, ge=0, le=720
    )


def _base(url: HttpUrl) -> str:
    return str(url).rstrip("/")


def load_settings[SettingsT: BaseModel](
    model: type[SettingsT], environ: Mapping[str, str] | None = None
) -> SettingsT:
    """Parse `model` from `environ` (default: the process environment), once per model."""
    if environ is not None:
        return model.model_validate(dict(environ))
    return _cached(model)  # type: ignore[return-value]


@cache
def _cached(model: type[BaseModel]) -> BaseModel:
    return model.model_validate(dict(os.environ))


def clear_settings_cache() -> None:
    """Forget parsed settings (tests that change the environment call this)."""
    _cached.cache_clear()
