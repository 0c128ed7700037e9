"""The collaborators of the connect flows, built lazily and once per process from settings.

Every property can be replaced (tests pass fakes through the constructor's `overrides`), and
nothing is built until a request needs it, so a handler's cold start pays only for what it uses.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from pleo_connector.config import PleoSettings, QueueSettings, StoreSettings, WebSettings

if TYPE_CHECKING:
    from pleo_connector.crypto import CredentialCipher
    from pleo_connector.pleo.auth import PleoAuth
    from pleo_connector.pleo.client import PleoClient
    from pleo_connector.pleo.oauth import OAuthClient
    from pleo_connector.pleo.ratelimit import RateBudget
    from pleo_connector.store.credentials import CredentialRepository
    from pleo_connector.store.dynamodb import DynamoTable
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.store.oauth_state import OAuthStateStore
    from pleo_connector.sync_queue import SyncQueue
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
        raise RuntimeError("a configured secret is empty or not a string")
    return value


class Collaborators:
    """What the connect flows need. Settings the function does not have are None, and asking
    for a collaborator that needs them fails loudly at that point."""

    def __init__(
        self,
        *,
        store: StoreSettings,
        pleo: PleoSettings | None = None,
        web: WebSettings | None = None,
        queue: QueueSettings | None = None,
        shared_rate_budget: bool = False,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.store_settings = store
        self.shared_rate_budget = shared_rate_budget
        self._pleo = pleo
        self._web = web
        self._queue = queue
        for name, value in (overrides or {}).items():
            setattr(self, name, value)

    @classmethod
    def from_environment(
        cls,
        *,
        pleo: bool = False,
        web: bool = False,
        queue: bool = False,
        shared_rate_budget: bool = False,
    ) -> Collaborators:
        """What one function needs, from its environment: the store always, the other parts
        only when asked, so a function is never required to carry settings it does not use."""
        from pleo_connector.config import load_settings

        return cls(
            store=load_settings(StoreSettings),
            pleo=load_settings(PleoSettings) if pleo else None,
            web=load_settings(WebSettings) if web else None,
            queue=load_settings(QueueSettings) if queue else None,
            shared_rate_budget=shared_rate_budget,
        )

    # --- settings ------------------------------------------------------------------------------

    @property
    def pleo_settings(self) -> PleoSettings:
        if self._pleo is None:
            raise RuntimeError("this function is not configured to call Pleo")
        return self._pleo

    @property
    def web_settings(self) -> WebSettings:
        if self._web is None:
            raise RuntimeError("this function is not configured to serve pages")
        return self._web

    @property
    def public_base_url(self) -> str:
        return str(self.web_settings.public_base_url).rstrip("/")

    # --- storage -------------------------------------------------------------------------------

    @cached_property
    def table(self) -> DynamoTable:
        from pleo_connector.store.dynamodb import DynamoTable

        return DynamoTable(self.store_settings.table_name)

    @cached_property
    def installations(self) -> InstallationRepository:
        from pleo_connector.store.installations import InstallationRepository

        return InstallationRepository(self.table)

    @cached_property
    def states(self) -> OAuthStateStore:
        from pleo_connector.store.oauth_state import OAuthStateStore

        return OAuthStateStore(self.table)

    @cached_property
    def credentials(self) -> CredentialRepository:
        from pleo_connector.store.credentials import CredentialRepository

        return CredentialRepository(self.table)

    @cached_property
    def cipher(self) -> CredentialCipher:
        from pleo_connector.crypto import CredentialCipher

        return CredentialCipher(self.store_settings.kms_key_id)

    @cached_property
    def tokens(self) -> TokenStore:
        from pleo_connector.tokens import TokenStore

        if self._pleo is None:
            return TokenStore(self.credentials, self.cipher)
        oauth = self.oauth_client
        # The lease must outlive the whole token call: size it from the client's own timeout.
        return TokenStore(
            self.credentials,
            self.cipher,
            oauth.refresh,
            refresh_timeout_s=oauth.request_timeout_s,
        )

    @cached_property
    def sync_queue(self) -> SyncQueue:
        from pleo_connector.sync_queue import SyncQueue

        if self._queue is None:
            raise RuntimeError("this function is not configured to queue syncs")
        return SyncQueue(self._queue.sync_queue_url)

    # --- Pleo ----------------------------------------------------------------------------------

    @cached_property
    def client_secret(self) -> str:
        return read_secret(self.pleo_settings.pleo_client_secret_id)

    @cached_property
    def oauth_client(self) -> OAuthClient:
        from pleo_connector.pleo.oauth import OAuthClient

        settings = self.pleo_settings
        return OAuthClient(str(settings.pleo_auth_url), settings.pleo_client_id, self.client_secret)

    @cached_property
    def rate_budget(self) -> RateBudget:
        """Requests a minute to Pleo: shared by every worker through the table when
        `shared_rate_budget` is set (the sync worker), the process's own bucket otherwise (the
        pages make a handful of calls per request)."""
        from pleo_connector.pleo.ratelimit import make_budget

        settings = self.pleo_settings
        table = self.store_settings.table_name if self.shared_rate_budget else None
        return make_budget(settings.pleo_rate_budget_per_min, table_name=table)

    def pleo_client(self, auth: PleoAuth) -> PleoClient:
        """A client for one credential; close it after use (`async with`)."""
        from pleo_connector.pleo.client import PleoClient

        return PleoClient(str(self.pleo_settings.pleo_api_url), auth, budget=self.rate_budget)

    def pleo_with_access_token(self, access_token: str) -> PleoClient:
        from pleo_connector.pleo.auth import BearerAuth

        async def provide() -> str:
            return access_token

        return self.pleo_client(BearerAuth(provide))

    def pleo_with_api_key(self, api_key: str) -> PleoClient:
        from pleo_connector.pleo.auth import ApiKeyAuth

        return self.pleo_client(ApiKeyAuth(api_key))

    def pleo_for_installation(self, installation_id: str, auth_method: str) -> PleoClient:
        """A client that authenticates as the installation: its API key, or its OAuth grant with
        the single-flight refresh behind every request."""
        if auth_method == "api_key":
            return self.pleo_with_api_key(self.tokens.api_key(installation_id))
        from pleo_connector.pleo.auth import BearerAuth

        async def provide() -> str:
            return await self.tokens.access_token(installation_id)

        return self.pleo_client(BearerAuth(provide))

    # --- web -----------------------------------------------------------------------------------

    @cached_property
    def site(self) -> Site:
        from pleo_connector.web.pages import Site

        form_targets = (str(self._pleo.pleo_auth_url).rstrip("/"),) if self._pleo else ()
        return Site.for_base_url(self.public_base_url, form_targets=form_targets)

    @cached_property
    def sessions(self) -> SessionCodec:
        from pleo_connector.web.session import SessionCodec

        secret = read_secret(self.web_settings.session_secret_id)
        return SessionCodec(secret, public_base_url=self.public_base_url)

    @cached_property
    def browser_binding(self) -> BrowserBinding:
        from pleo_connector.web.csrf import BrowserBinding

        return BrowserBinding(self.public_base_url)
