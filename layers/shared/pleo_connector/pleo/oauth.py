"""OAuth 2.0 with Pleo's authorization server: PKCE, the authorize URL, code exchange, refresh.

Every endpoint comes from configuration (a base URL, overridable per endpoint), so the same code
talks to the emulator, staging, production or another RFC 6749 server. The token endpoint is never
retried here: a code is single-use and a refresh token rotates (replaying one revokes the whole
family), so whether to try again is the token store's decision, made with `OAuthError.retryable`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pleo_connector.observability import logger
from pleo_connector.pleo.errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidClientError,
    InvalidGrantError,
    OAuthError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
PKCE_METHOD = "S256"
DEFAULT_TOKEN_TIMEOUT_S = 10.0
# RFC 6749 makes `expires_in` only RECOMMENDED. Without it the token is taken to live 5 minutes:
# short enough that a server with short-lived tokens sees few calls with an expired one, long
# enough that the token store does not refresh on every call.
DEFAULT_EXPIRES_IN_S = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """base64url(SHA-256(verifier)) without padding (RFC 7636 S256)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True)
class PkcePair:
    """A fresh PKCE verifier and its S256 challenge. The verifier never leaves the server."""

    verifier: str = field(repr=False)
    challenge: str
    method: str = PKCE_METHOD

    @classmethod
    def generate(cls) -> PkcePair:
        verifier = _b64url(secrets.token_bytes(64))  # 86 characters of [A-Za-z0-9_-]
        return cls(verifier=verifier, challenge=pkce_challenge(verifier))


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path


def build_authorize_url(
    auth_url: str,
    client_id: str,
    redirect_uri: str,
    scopes: str | list[str] | tuple[str, ...],
    state: str,
    code_challenge: str,
    *,
    authorize_endpoint: str | None = None,
) -> str:
    """The URL to send the browser to: code flow, PKCE S256, state and the exact redirect URI."""
    if not state:
        raise ValueError("state is required")
    endpoint = authorize_endpoint or _join(auth_url, AUTHORIZE_PATH)
    scope = scopes if isinstance(scopes, str) else " ".join(scopes)
    params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("code_challenge", code_challenge),
        ("code_challenge_method", PKCE_METHOD),
    ]
    if scope.strip():
        params.insert(3, ("scope", " ".join(scope.split())))
    parts = urlsplit(endpoint)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@dataclass(frozen=True)
class TokenSet:
    """A token response that has every field it needs; tokens are left out of `repr`.

    `refresh_token` is None only in a refresh answer from a server that does not rotate (RFC 6749
    section 6): the token store then keeps the one it has."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    scope: str | None = None

    def expires_at(self, now: float) -> float:
        """Epoch seconds at which the access token expires, counted from `now`."""
        return now + self.expires_in


class OAuthClient:
    """The token endpoint, with client_secret_basic.

    `client_secret` may be a callable, asked on every token request (and only then): a function
    whose route never calls the token endpoint never reads the secret, and a rotated secret is
    used as soon as the callable returns it (the caller caches it, `composition.roots.SecretCache`).
    """

    def __init__(
        self,
        auth_url: str,
        client_id: str,
        client_secret: str | Callable[[], str],
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT_S,
        token_endpoint: str | None = None,
    ) -> None:
        self.auth_url = auth_url
        self.client_id = client_id
        self.token_endpoint = token_endpoint or _join(auth_url, TOKEN_PATH)
        self._secret_source = client_secret
        self._timeout = float(timeout)
        self._given_http = http

    def __repr__(self) -> str:
        return f"OAuthClient(token_endpoint={self.token_endpoint!r}, client_id={self.client_id!r})"

    def _client_secret(self) -> str:
        source = self._secret_source
        return source if isinstance(source, str) else source()

    @property
    def request_timeout_s(self) -> float:
        """The longest one token request can take, end to end (sizes the refresh lease)."""
        return self._timeout

    @cached_property
    def _http(self) -> httpx.AsyncClient:
        """Made on the first token request: a route that never calls the token endpoint (OAuth
        start) imports no httpx and builds no TLS context."""
        if self._given_http is not None:
            return self._given_http
        import httpx

        return httpx.AsyncClient()

    async def aclose(self) -> None:
        """Closes the HTTP client it made itself, if it made one; a given one is the giver's."""
        if self._given_http is None and "_http" in self.__dict__:
            await self._http.aclose()

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        """Trade an authorization code (and its PKCE verifier) for tokens. The answer must carry
        a refresh token: without one the grant could not outlive its first access token."""
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            "authorization_code",
            (code, code_verifier),
        )

    async def refresh(self, refresh_token: str) -> TokenSet:
        """Trade a refresh token for new tokens. Pleo rotates the refresh token too; a server that
        does not may leave it out of the answer (RFC 6749 section 6): then `refresh_token` is
        None and the old one stays valid."""
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            "refresh_token",
            (refresh_token,),
        )

    async def _token_request(
        self, form: dict[str, str], grant: str, secret_values: tuple[str, ...]
    ) -> TokenSet:
        import httpx

        client_secret = self._client_secret()
        basic = httpx.BasicAuth(quote(self.client_id, safe=""), quote(client_secret, safe=""))
        request = self._http.build_request(
            "POST",
            self.token_endpoint,
            data=form,
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(self._timeout),
        )
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.send(request, auth=basic)
        except (httpx.TimeoutException, TimeoutError) as exc:
            logger.warning("token request timed out", extra={"grant": grant})
            raise APITimeoutError("token endpoint: no response in time", operation=grant) from exc
        except httpx.TransportError as exc:
            logger.warning(
                "token request failed", extra={"grant": grant, "error_type": type(exc).__name__}
            )
            raise APIConnectionError(
                f"token endpoint: connection failed ({type(exc).__name__})", operation=grant
            ) from exc
        logger.info(
            "token request answered", extra={"grant": grant, "status": response.status_code}
        )
        hidden = (*secret_values, client_secret)
        if response.status_code != 200:
            raise _error_of(response, hidden)
        return _token_set_of(response, hidden, needs_refresh_token=grant == "authorization_code")


def _json_object(response: httpx.Response) -> dict[str, object] | None:
    try:
        payload = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _scrub(text: str | None, hidden: tuple[str, ...]) -> str | None:
    if text is None:
        return None
    for value in hidden:
        if value:
            text = text.replace(value, "[redacted]")
    return text


def _error_of(response: httpx.Response, hidden: tuple[str, ...]) -> OAuthError:
    """An RFC 6749 section 5.2 error body, or a generic one when the server sent something else."""
    status = response.status_code
    payload = _json_object(response)
    error = payload.get("error") if payload else None
    if not isinstance(error, str) or not error:
        kind = "server_error" if status >= 500 else "invalid_response"
        return OAuthError(kind, f"HTTP {status} without an OAuth error body", status)
    raw_description = payload.get("error_description") if payload else None
    description = _scrub(raw_description if isinstance(raw_description, str) else None, hidden)
    error = _scrub(error, hidden) or "invalid_response"
    if error == "invalid_grant":
        return InvalidGrantError(error, description, status)
    if error == "invalid_client":
        return InvalidClientError(error, description, status)
    return OAuthError(error, description, status)


def _token_set_of(
    response: httpx.Response, hidden: tuple[str, ...], *, needs_refresh_token: bool
) -> TokenSet:
    """A complete TokenSet, or OAuthError: never half of one. Lenient only where RFC 6749 section
    5.1 is: `expires_in` may be absent, `token_type` is case-insensitive, and a refresh answer
    may omit the refresh token."""
    payload = _json_object(response)
    if payload is None:
        raise OAuthError("invalid_response", "the token response is not a JSON object", 200)
    if isinstance(payload.get("error"), str):
        raise _error_of(response, hidden)
    access_token = payload.get("access_token")
    refresh_token = payload.get("refresh_token")
    expires_in = payload.get("expires_in")
    token_type = payload.get("token_type", "Bearer")
    scope = payload.get("scope")
    missing = []
    if not isinstance(access_token, str) or not access_token:
        missing.append("access_token")
    # Left out of a refresh answer, the refresh token was not rotated: the caller keeps its own.
    left_out = refresh_token is None and not needs_refresh_token
    if not left_out and (not isinstance(refresh_token, str) or not refresh_token):
        missing.append("refresh_token")
    if missing:
        raise OAuthError("invalid_response", f"the token response lacks {', '.join(missing)}", 200)
    lifetime = DEFAULT_EXPIRES_IN_S if expires_in is None else _positive_int(expires_in)
    if lifetime is None:
        raise OAuthError("invalid_response", "the token response has no valid expires_in", 200)
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise OAuthError("invalid_response", "the token type is not Bearer", 200)
    assert isinstance(access_token, str)
    return TokenSet(
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) else None,
        expires_in=lifetime,
        token_type="Bearer",  # noqa: S106 - a token type
        scope=scope if isinstance(scope, str) else None,
    )


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, float) and value.is_integer() and value > 0:
        return int(value)
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return None
