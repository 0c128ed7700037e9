"""One builder per Lambda function: its settings model in, its collaborators out.

Each builder imports only what its function uses, and nothing here does I/O: boto3 clients are
built on first use (`aws.aws_client`), and secrets are read when a request first needs them
(`read_secret` behind the OAuth client's and the session codec's providers), so a function's cold
start pays only for its own route. Handlers call their builder once per process (`@cache`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from pleo_connector.errors import ConfigurationError

if TYPE_CHECKING:
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
    from pleo_connector.store.dynamodb import DynamoTable
    from pleo_connector.sync.dispatcher import DispatchDeps
    from pleo_connector.sync.worker import SyncDeps
    from pleo_connector.tokens import TokenStore
    from pleo_connector.web.csrf import BrowserBinding
    from pleo_connector.web.pages import Site
    from pleo_connector.web.session import SessionCodec

SECRET_MAX_AGE_S = 300


def read_secret(secret_id: str) -> str:
    """A Secrets Manager secret through Powertools' cached parameters (five minutes)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE_S)
    if not isinstance(value, str) or not value:
        raise ConfigurationError("a configured secret is empty or not a string")
    return value


class WebParts:
    """What every page handler needs besides its service: the site (links, headers), the session
    codec (its signing secret read on first use) and the OAuth browser binding."""

    def __init__(self, web: WebSettings, pleo: PleoSettings | None = None) -> None:
        self.settings = web
        self._form_targets = (pleo.auth_base,) if pleo is not None else ()

    @property
    def public_base_url(self) -> str:
        return self.settings.public_base

    @cached_property
    def site(self) -> Site:
        from pleo_connector.web.pages import Site

        return Site.for_base_url(self.public_base_url, form_targets=self._form_targets)

    @cached_property
    def sessions(self) -> SessionCodec:
        from pleo_connector.web.session import SessionCodec

        secret = read_secret(self.settings.session_secret_id)
        return SessionCodec(secret, public_base_url=self.public_base_url)

    @cached_property
    def browser_binding(self) -> BrowserBinding:
        from pleo_connector.web.csrf import BrowserBinding

        return BrowserBinding(self.public_base_url)


# --- the parts the builders share ----------------------------------------------------------------


def _table(store: StoreSettings) -> DynamoTable:
    from pleo_connector.store.dynamodb import DynamoTable

    return DynamoTable(store.table_name)


def _oauth_client(pleo: PleoSettings) -> OAuthClient:
    from pleo_connector.pleo.oauth import OAuthClient

    return OAuthClient(
        pleo.auth_base,
        pleo.pleo_client_id,
        lambda: read_secret(pleo.pleo_client_secret_id),
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


def _pleo_clients(
    pleo: PleoSettings, tokens: TokenStore, *, shared_budget_table: str | None = None
) -> PleoClients:
    """Clients that draw from the process's own budget, or, for the sync worker, from the one
    every worker shares through the table."""
    from pleo_connector.composition.pleo_clients import PleoClients
    from pleo_connector.pleo.ratelimit import make_budget

    budget = make_budget(pleo.pleo_rate_budget_per_min, table_name=shared_budget_table)
    return PleoClients(pleo.api_base, budget, tokens)


# --- one per function ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OAuthFunction:
    web: WebParts
    install: OAuthInstallDeps
    idempotency_table: str


def build_oauth_function(settings: OAuthFunctionSettings) -> OAuthFunction:
    from pleo_connector.connect.oauth_install import OAuthInstallDeps
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.store.oauth_state import OAuthStateStore
    from pleo_connector.sync_queue import SyncQueue

    web = WebParts(settings, settings)
    table = _table(settings)
    oauth = _oauth_client(settings)
    tokens = _token_store(settings, table, oauth)
    install = OAuthInstallDeps(
        pleo_settings=settings,
        web_settings=settings,
        states=OAuthStateStore(table),
        browser_binding=web.browser_binding,
        oauth_client=oauth,
        pleo=_pleo_clients(settings, tokens),
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
    settings: ApiKeyInstallFunctionSettings,
) -> ApiKeyInstallFunction:
    from pleo_connector.connect.api_key_install import ApiKeyInstallDeps
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.sync_queue import SyncQueue

    table = _table(settings)
    tokens = _token_store(settings, table)
    install = ApiKeyInstallDeps(
        pleo=_pleo_clients(settings, tokens),
        tokens=tokens,
        installations=InstallationRepository(table),
        sync_queue=SyncQueue(settings.sync_queue_url),
    )
    return ApiKeyInstallFunction(WebParts(settings, settings), install, settings.table_name)


@dataclass(frozen=True, slots=True)
class SettingsFunction:
    web: WebParts
    settings: SettingsDeps


def build_settings_function(settings: SettingsFunctionSettings) -> SettingsFunction:
    from pleo_connector.adapters.registry import load_adapter
    from pleo_connector.connect.settings import SettingsDeps
    from pleo_connector.crypto import CredentialCipher
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.store.previews import PreviewRepository
    from pleo_connector.store.sync_runs import SyncRunRepository
    from pleo_connector.sync_queue import SyncQueue

    table = _table(settings)
    tokens = _token_store(settings, table, _oauth_client(settings))
    deps = SettingsDeps(
        installations=InstallationRepository(table),
        pleo=_pleo_clients(settings, tokens),
        sync_queue=SyncQueue(settings.sync_queue_url),
        cipher=CredentialCipher(settings.kms_key_id),
        adapter=load_adapter(settings.adapter),
        runs=SyncRunRepository(table),
        previews=PreviewRepository(table),
    )
    return SettingsFunction(WebParts(settings, settings), deps)


@dataclass(frozen=True, slots=True)
class DisconnectFunction:
    web: WebParts
    disconnect: DisconnectDeps


def build_disconnect_function(settings: DisconnectFunctionSettings) -> DisconnectFunction:
    from pleo_connector.connect.disconnect import DisconnectDeps
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.store.sync_runs import SyncRunRepository

    table = _table(settings)
    tokens = _token_store(settings, table, _oauth_client(settings))
    deps = DisconnectDeps(
        installations=InstallationRepository(table),
        pleo=_pleo_clients(settings, tokens),
        runs=SyncRunRepository(table),
    )
    return DisconnectFunction(WebParts(settings, settings), deps)


def build_dispatcher(settings: DispatcherFunctionSettings) -> DispatchDeps:
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.sync.dispatcher import DispatchDeps
    from pleo_connector.sync_queue import SyncQueue

    table = _table(settings)
    return DispatchDeps(
        installations=InstallationRepository(table),
        tokens=_token_store(settings, table),
        sync_queue=SyncQueue(settings.sync_queue_url),
    )


def build_worker(settings: WorkerFunctionSettings) -> SyncDeps:
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
    tokens = _token_store(settings, table, _oauth_client(settings))
    return SyncDeps(
        installations=InstallationRepository(table),
        pleo=_pleo_clients(settings, tokens, shared_budget_table=settings.table_name),
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
