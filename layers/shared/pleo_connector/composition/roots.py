"""One builder per Lambda function: its settings model in, its collaborators out.

Each builder imports only what its function uses, and nothing here does I/O: boto3 clients are
built on first use (`aws.aws_client`), and secrets are read when a request first needs them
(`SecretCache` behind the OAuth client's secret and the session codec), so a function's cold
start pays only for its own route. Handlers call their builder once per process (`@cache`); the
secrets are read again every `SECRET_MAX_AGE_S`, so a rotated value reaches every warm function
without a restart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING

from pleo_connector.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pleo_connector.composition.pleo_clients import PleoClients
    from pleo_connector.config import (
        ApiKeyInstallFunctionSettings,
        DisconnectFunctionSettings,
        DispatcherFunctionSettings,
        OAuthFunctionSettings,
        PleoSettings,
        SettingsFunctionSettings,
        StoreSettings,
        WebSettings,
        WorkerFunctionSettings,
    )
    from pleo_connector.connect.api_key_install import ApiKeyInstallDeps
    from pleo_connector.connect.disconnect import DisconnectDeps
    from pleo_connector.connect.oauth_install import OAuthInstallDeps
    from pleo_connector.connect.settings import SettingsDeps
    from pleo_connector.pleo.oauth import OAuthClient
    from pleo_connector.ports import PleoApi
    from pleo_connector.store.dynamodb import DynamoTable
    from pleo_connector.sync.dispatcher import DispatchDeps
    from pleo_connector.sync.worker import SyncDeps
    from pleo_connector.tokens import TokenStore
    from pleo_connector.vocabulary import AuthMethod
    from pleo_connector.web.csrf import BrowserBinding
    from pleo_connector.web.pages import Site
    from pleo_connector.web.session import SessionCodec

SECRET_MAX_AGE_S = 300


def fetch_secret(secret_id: str) -> str:
    """A Secrets Manager secret's value, read now: the caching is `SecretCache`'s alone, so a
    value is never held by two caches one after the other (which would double its age)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_id, force_fetch=True)
    if not isinstance(value, str) or not value:
        raise ConfigurationError("a configured secret is empty or not a string")
    return value


class SecretCache:
    """Secrets read on first use and read again once their value is `max_age_s` old: a value put
    into Secrets Manager reaches every warm function within that time, and a request between two
    reads costs one clock reading."""

    def __init__(
        self,
        fetch: Callable[[str], str] = fetch_secret,
        *,
        max_age_s: float = SECRET_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max_age_s = max_age_s
        self._clock = clock
        self._values: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"SecretCache(max_age_s={self._max_age_s}, held={len(self._values)})"

    def get(self, secret_id: str) -> str:
        now = self._clock()
        held = self._values.get(secret_id)
        if held is not None and now - held[1] < self._max_age_s:
            return held[0]
        value = self._fetch(secret_id)
        self._values[secret_id] = (value, now)
        return value

    def reader(self, secret_id: str) -> Callable[[], str]:
        """A provider of the secret's current value (the OAuth client asks it per token call)."""
        return partial(self.get, secret_id)


# One per process: every builder of a function reads its secrets through it.
PROCESS_SECRETS = SecretCache()


class WebParts:
    """What every page handler needs besides its service: the site (links, headers), the session
    codec (built from the signing secret's current value) and the OAuth browser binding."""

    def __init__(
        self,
        web: WebSettings,
        pleo: PleoSettings | None = None,
        *,
        secrets: SecretCache = PROCESS_SECRETS,
    ) -> None:
        self.settings = web
        self._form_targets = (pleo.auth_base,) if pleo is not None else ()
        self._secrets = secrets
        self._sessions: SessionCodec | None = None
        self._sessions_secret: str | None = None

    @property
    def public_base_url(self) -> str:
        return self.settings.public_base

    @cached_property
    def site(self) -> Site:
        from pleo_connector.web.pages import Site

        return Site.for_base_url(self.public_base_url, form_targets=self._form_targets)

    @property
    def sessions(self) -> SessionCodec:
        """The codec for the signing secret's value as last read (at most `SECRET_MAX_AGE_S`
        ago): built again only when that value has changed, e.g. a key added or promoted."""
        value = self._secrets.get(self.settings.session_secret_id)
        codec = self._sessions
        if codec is None or value != self._sessions_secret:
            from pleo_connector.web.session import SessionCodec, signing_secrets

            codec = SessionCodec(signing_secrets(value), public_base_url=self.public_base_url)
            self._sessions, self._sessions_secret = codec, value
        return codec

    @cached_property
    def browser_binding(self) -> BrowserBinding:
        from pleo_connector.web.csrf import BrowserBinding

        return BrowserBinding(self.public_base_url)


# --- the parts the builders share ----------------------------------------------------------------


def _table(store: StoreSettings) -> DynamoTable:
    from pleo_connector.store.dynamodb import DynamoTable

    return DynamoTable(store.table_name)


def _oauth_client(pleo: PleoSettings, secrets: SecretCache) -> OAuthClient:
    """The client asks `secrets` on every token call, so a rotated client secret is used within
    `SECRET_MAX_AGE_S` of being put."""
    from pleo_connector.pleo.oauth import OAuthClient

    return OAuthClient(
        pleo.auth_base, pleo.pleo_client_id, secrets.reader(pleo.pleo_client_secret_id)
    )


def _token_store(
    store: StoreSettings, table: DynamoTable, oauth: OAuthClient | None = None
) -> TokenStore:
    from pleo_connector.crypto import CredentialCipher
    from pleo_connector.store.credentials import CredentialRepository
    from pleo_connector.tokens import TokenStore

    cipher = CredentialCipher(store.kms_key_id)
    if oauth is None:
        return TokenStore(CredentialRepository(table), cipher)
    # The lease must outlive the whole token call: size it from the client's own timeout.
    return TokenStore(
        CredentialRepository(table),
        cipher,
        oauth.refresh,
        refresh_timeout_s=oauth.request_timeout_s,
    )


class PleoClientsOnFirstUse:
    """A function's Pleo client factory, built when a request first talks to Pleo: the pages that
    only read the table (the settings page, the form pages, OAuth start) and the sync runs that
    find their source unchanged then never import httpx or the Pleo client, which was most of a
    first request's imports."""

    def __init__(self, build: Callable[[], PleoClients]) -> None:
        self._build = build

    def __repr__(self) -> str:
        return f"PleoClientsOnFirstUse(built={'_clients' in self.__dict__})"

    @cached_property
    def _clients(self) -> PleoClients:
        return self._build()

    def for_installation(self, installation_id: str, auth_method: AuthMethod) -> PleoApi:
        return self._clients.for_installation(installation_id, auth_method)

    def with_access_token(self, access_token: str) -> PleoApi:
        return self._clients.with_access_token(access_token)

    def with_api_key(self, api_key: str) -> PleoApi:
        return self._clients.with_api_key(api_key)


def _pleo_clients(
    pleo: PleoSettings, tokens: TokenStore, *, shared_budget_table: str | None = None
) -> PleoClients:
    """Clients that draw from the process's own budget, or, for the sync worker, from the one
    every worker shares through the table."""
    from pleo_connector.composition.pleo_clients import PleoClients
    from pleo_connector.pleo.ratelimit import make_budget

    budget = make_budget(pleo.pleo_rate_budget_per_min, table_name=shared_budget_table)
    return PleoClients(pleo.api_base, budget, tokens)


def _oauth_pleo_clients_on_first_use(
    settings: SettingsFunctionSettings | DisconnectFunctionSettings,
    table: DynamoTable,
    secrets: SecretCache,
) -> PleoClientsOnFirstUse:
    """Pleo clients of a page that refreshes OAuth grants, all of it built on first use."""
    return PleoClientsOnFirstUse(
        lambda: _pleo_clients(
            settings, _token_store(settings, table, _oauth_client(settings, secrets))
        )
    )


# --- one per function ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OAuthFunction:
    web: WebParts
    install: OAuthInstallDeps
    idempotency_table: str


def build_oauth_function(
    settings: OAuthFunctionSettings, *, secrets: SecretCache = PROCESS_SECRETS
) -> OAuthFunction:
    from pleo_connector.connect.oauth_install import OAuthInstallDeps
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.store.oauth_state import OAuthStateStore
    from pleo_connector.sync_queue import SyncQueue

    web = WebParts(settings, settings, secrets=secrets)
    table = _table(settings)
    oauth = _oauth_client(settings, secrets)
    tokens = _token_store(settings, table, oauth)
    install = OAuthInstallDeps(
        pleo_settings=settings,
        web_settings=settings,
        states=OAuthStateStore(table),
        browser_binding=web.browser_binding,
        oauth_client=oauth,
        pleo=PleoClientsOnFirstUse(lambda: _pleo_clients(settings, tokens)),
        tokens=tokens,
        installations=InstallationRepository(table),
        sync_queue=SyncQueue(settings.sync_queue_url),
    )
    return OAuthFunction(web, install, settings.table_name)


@dataclass(frozen=True, slots=True)
class ApiKeyInstallFunction:
    web: WebParts
    install: ApiKeyInstallDeps
    idempotency_table: str


def build_api_key_install_function(
    settings: ApiKeyInstallFunctionSettings, *, secrets: SecretCache = PROCESS_SECRETS
) -> ApiKeyInstallFunction:
    from pleo_connector.connect.api_key_install import ApiKeyInstallDeps
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.sync_queue import SyncQueue

    table = _table(settings)
    tokens = _token_store(settings, table)
    install = ApiKeyInstallDeps(
        pleo=PleoClientsOnFirstUse(lambda: _pleo_clients(settings, tokens)),
        tokens=tokens,
        installations=InstallationRepository(table),
        sync_queue=SyncQueue(settings.sync_queue_url),
    )
    return ApiKeyInstallFunction(
        WebParts(settings, settings, secrets=secrets), install, settings.table_name
    )


@dataclass(frozen=True, slots=True)
class SettingsFunction:
    web: WebParts
    settings: SettingsDeps


def build_settings_function(
    settings: SettingsFunctionSettings, *, secrets: SecretCache = PROCESS_SECRETS
) -> SettingsFunction:
    from pleo_connector.adapters.registry import load_adapter
    from pleo_connector.connect.settings import SettingsDeps
    from pleo_connector.crypto import CredentialCipher
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.store.previews import PreviewRepository
    from pleo_connector.store.sync_runs import SyncRunRepository
    from pleo_connector.sync_queue import SyncQueue

    table = _table(settings)
    deps = SettingsDeps(
        installations=InstallationRepository(table),
        pleo=_oauth_pleo_clients_on_first_use(settings, table, secrets),
        sync_queue=SyncQueue(settings.sync_queue_url),
        cipher=CredentialCipher(settings.kms_key_id),
        adapter=load_adapter(settings.adapter),
        runs=SyncRunRepository(table),
        previews=PreviewRepository(table),
    )
    return SettingsFunction(WebParts(settings, settings, secrets=secrets), deps)


@dataclass(frozen=True, slots=True)
class DisconnectFunction:
    web: WebParts
    disconnect: DisconnectDeps


def build_disconnect_function(
    settings: DisconnectFunctionSettings, *, secrets: SecretCache = PROCESS_SECRETS
) -> DisconnectFunction:
    from pleo_connector.connect.disconnect import DisconnectDeps
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.store.sync_runs import SyncRunRepository

    table = _table(settings)
    deps = DisconnectDeps(
        installations=InstallationRepository(table),
        pleo=_oauth_pleo_clients_on_first_use(settings, table, secrets),
        runs=SyncRunRepository(table),
    )
    return DisconnectFunction(WebParts(settings, settings, secrets=secrets), deps)


def build_dispatcher(settings: DispatcherFunctionSettings) -> DispatchDeps:
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.sync.dispatcher import DispatchDeps
    from pleo_connector.sync_queue import SyncQueue

    table = _table(settings)
    return DispatchDeps(
        installations=InstallationRepository(table),
        tokens=_token_store(settings, table),
        sync_queue=SyncQueue(settings.sync_queue_url),
        schedule_period_s=settings.sync_rate_minutes * 60,
    )


def build_worker(
    settings: WorkerFunctionSettings, *, secrets: SecretCache = PROCESS_SECRETS
) -> SyncDeps:
    from pleo_connector.adapters.registry import load_adapter
    from pleo_connector.crypto import CredentialCipher
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.store.ownership import OwnershipRepository
    from pleo_connector.store.previews import PreviewRepository
    from pleo_connector.store.sync_runs import SyncRunRepository
    from pleo_connector.sync.engine import PleoSyncSteps
    from pleo_connector.sync.worker import SyncDeps
    from pleo_connector.sync_queue import SyncQueue

    table = _table(settings)
    tokens = _token_store(settings, table, _oauth_client(settings, secrets))
    return SyncDeps(
        installations=InstallationRepository(table),
        pleo=PleoClientsOnFirstUse(
            lambda: _pleo_clients(settings, tokens, shared_budget_table=settings.table_name)
        ),
        tokens=tokens,
        adapter=load_adapter(settings.adapter),
        runs=SyncRunRepository(table),
        ownership=OwnershipRepository(table),
        cipher=CredentialCipher(settings.kms_key_id),
        sync_queue=SyncQueue(settings.sync_queue_url),
        previews=PreviewRepository(table),
        steps=PleoSyncSteps(),
        max_source_failures=settings.sync_max_source_failures,
        deadline_margin_s=settings.sync_deadline_margin_s,
        lease_grace_s=settings.sync_lease_grace_s,
        full_reconcile_s=settings.sync_full_reconcile_hours * 3600,
    )
