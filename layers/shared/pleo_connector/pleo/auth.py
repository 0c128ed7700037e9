"""How requests to Pleo's API prove who they are: an OAuth bearer token or an API key.

Both are httpx auth flows, so the transport never sees or logs a credential; `secret_values()`
tells the transport what to mask should Pleo ever echo a credential back in an error.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import httpx

from pleo_connector.errors import ConfigurationError

TokenProvider = Callable[[], Awaitable[str]]


class PleoAuth(httpx.Auth):
    """Base of the client's auth strategies."""

    def secret_values(self) -> tuple[str, ...]:
        """The credential values that must never appear in a message."""
        return ()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise ConfigurationError("the Pleo client is async only")
        yield request  # pragma: no cover - makes this a generator


class ApiKeyAuth(PleoAuth):
    """An API key: HTTP Basic with the key as username and an empty password."""

    def __init__(self, api_key: str) -> None:
        if not api_key:
            raise ValueError("an API key is required")
        self._api_key = api_key
        encoded = base64.b64encode(f"{api_key}:".encode()).decode("ascii")
        self._header = f"Basic {encoded}"

    def __repr__(self) -> str:
        return "ApiKeyAuth(api_key=***)"

    def secret_values(self) -> tuple[str, ...]:
        return (self._api_key, self._header.removeprefix("Basic "))

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = self._header
        yield request


class BearerAuth(PleoAuth):
    """An OAuth access token, asked from `token_provider` before each request.

    The provider is the token store's hook: it returns a fresh token and refreshes it when it is
    about to expire, so a retried request never goes out with a token that expired meanwhile.
    """

    def __init__(self, token_provider: TokenProvider) -> None:
        self._token_provider = token_provider
        self._last_token = ""

    def __repr__(self) -> str:
        return "BearerAuth(token_provider=...)"

    def secret_values(self) -> tuple[str, ...]:
        return (self._last_token,) if self._last_token else ()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._token_provider()
        if not token:
            raise ValueError("the token provider returned no access token")
        self._last_token = token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request
