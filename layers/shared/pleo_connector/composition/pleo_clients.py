"""The real `PleoClientFactory`: Pleo clients for a credential, sharing one rate budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pleo_connector.pleo.auth import ApiKeyAuth, BearerAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.vocabulary import AuthMethod

if TYPE_CHECKING:
    from pleo_connector.pleo.auth import PleoAuth
    from pleo_connector.pleo.ratelimit import RateBudget
    from pleo_connector.ports import CredentialVault


class PleoClients:
    """Builds a `PleoClient` per credential; close each after use (`async with`)."""

    def __init__(self, api_base: str, budget: RateBudget, vault: CredentialVault) -> None:
        self._api_base = api_base
        self._budget = budget
        self._vault = vault

    def client(self, auth: PleoAuth) -> PleoClient:
        return PleoClient(self._api_base, auth, budget=self._budget)

    def with_access_token(self, access_token: str) -> PleoClient:
        async def provide() -> str:
            return access_token

        return self.client(BearerAuth(provide))

    def with_api_key(self, api_key: str) -> PleoClient:
        return self.client(ApiKeyAuth(api_key))

    def for_installation(self, installation_id: str, auth_method: AuthMethod) -> PleoClient:
        if auth_method == AuthMethod.API_KEY:
            return self.with_api_key(self._vault.api_key(installation_id))

        async def provide() -> str:
            return await self._vault.access_token(installation_id)

        return self.client(BearerAuth(provide))
