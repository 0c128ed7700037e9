"""Flow 1, the OAuth install: /oauth/start makes state and PKCE and binds them to the browser;
/oauth/callback consumes the state once, exchanges the code, learns the installation and company,
and stores the installation with its encrypted tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from pleo_connector import metrics
from pleo_connector.connect.errors import (
    AuthorizationDeniedError,
    BadCallbackError,
    GrantExchangeError,
    IssuerMismatchError,
    PleoUnavailableError,
    StateRejectedError,
)
from pleo_connector.observability import logger
from pleo_connector.store.installations import InstallationRecord
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import AuthMethod, InstallationStatus, SyncReason

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pleo_connector.config import PleoSettings, WebSettings
    from pleo_connector.ports import (
        BrowserBindingPort,
        CredentialVault,
        InstallationStore,
        OAuthStates,
        PleoClientFactory,
        SyncQueuePort,
        TokenEndpoint,
    )

STATE_TTL_S = 600
MAX_QUERY_CHARS = 8192
MAX_VALUE_CHARS = 2048
CALLBACK_PARAMETERS = frozenset({"code", "state", "error", "error_description", "error_uri", "iss"})
# Present but empty, these are malformed rather than absent (only the prose parts may be blank).
NON_EMPTY_PARAMETERS = frozenset({"code", "state", "error", "iss"})


@dataclass(frozen=True, slots=True)
class OAuthStart:
    authorize_url: str
    binding_nonce: str


@dataclass(frozen=True, slots=True)
class CallbackParams:
    state: str
    code: str | None
    error: str | None
    error_description: str | None
    iss: str | None

    @classmethod
    def parse(cls, raw_query: str | None) -> CallbackParams:
        """Read the callback's query strictly: bounded, printable ASCII, each parameter once, and
        none but the description and URI empty."""
        raw = raw_query or ""
        if len(raw) > MAX_QUERY_CHARS:
            raise BadCallbackError("The sign-in answer was too long to be genuine.")
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise BadCallbackError("The sign-in answer could not be read.") from None
        values: dict[str, str] = {}
        for name, value in pairs:
            if name not in CALLBACK_PARAMETERS:
                continue
            if name in values:
                raise BadCallbackError(f"The sign-in answer repeats '{name}'.")
            if len(value) > MAX_VALUE_CHARS or not _printable_ascii(value, name):
                raise BadCallbackError(f"The sign-in answer has a malformed '{name}'.")
            if not value and name in NON_EMPTY_PARAMETERS:
                raise BadCallbackError(f"The sign-in answer has an empty '{name}'.")
            values[name] = value
        state = values.get("state")
        if state is None:
            raise BadCallbackError("The sign-in answer has no state.")
        return cls(
            state=state,
            code=values.get("code"),
            error=values.get("error"),
            error_description=values.get("error_description") or None,
            iss=values.get("iss"),
        )


def _printable_ascii(value: str, name: str) -> bool:
    # error_description is prose: spaces allowed; everything else is a token.
    allowed_space = name == "error_description"
    return all(33 <= ord(ch) <= 126 or (allowed_space and ch == " ") for ch in value)


@dataclass(frozen=True, slots=True)
class OAuthInstallOutcome:
    installation_id: str
    status: InstallationStatus
    needs_configuration: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthInstallDeps:
    """What the OAuth install needs: its settings and its ports."""

    pleo_settings: PleoSettings
    web_settings: WebSettings
    states: OAuthStates
    browser_binding: BrowserBindingPort
    oauth_client: TokenEndpoint
    pleo: PleoClientFactory
    tokens: CredentialVault
    installations: InstallationStore
    sync_queue: SyncQueuePort


def start_oauth_install(deps: OAuthInstallDeps) -> OAuthStart:
    """A fresh state, PKCE pair and browser binding; nothing in the request steers any of it."""
    from pleo_connector.pleo.oauth import PkcePair, build_authorize_url

    settings = deps.pleo_settings
    state = secrets.token_urlsafe(32)
    pkce = PkcePair.generate()
    nonce, binding_hash = deps.browser_binding.new()
    redirect_uri = deps.web_settings.redirect_uri
    deps.states.issue(
        state,
        code_verifier=pkce.verifier,
        redirect_uri=redirect_uri,
        browser_binding_hash=binding_hash,
        ttl_s=STATE_TTL_S,
    )
    url = build_authorize_url(
        settings.auth_base,
        settings.pleo_client_id,
        redirect_uri,
        settings.pleo_scopes,
        state,
        pkce.challenge,
    )
    return OAuthStart(authorize_url=url, binding_nonce=nonce)


def idempotency_key(params: CallbackParams, cookies: Iterable[str] | None) -> str:
    """What makes two callbacks "the same": the state and the browser's binding cookie, so only
    a retry from the browser that started the flow can see the first callback's outcome."""
    digest = hashlib.sha256(params.state.encode())
    for cookie in sorted(cookies or ()):
        digest.update(b"\x00" + cookie.encode())
    return digest.hexdigest()


@metrics.counted_install(metrics.InstallMethod.OAUTH)
async def complete_oauth_install(
    deps: OAuthInstallDeps, params: CallbackParams, cookies: Iterable[str] | None
) -> OAuthInstallOutcome:
    """Consume the state (once, whatever happens next), check the browser and issuer, exchange the
    code, and store the installation. Nothing is stored unless every Pleo call succeeded."""
    from pleo_connector.pleo.errors import InvalidGrantError, OAuthError, PleoError
    from pleo_connector.store.oauth_state import StateExpiredError, StateNotFoundError
    from pleo_connector.web.csrf import BrowserBindingError

    try:
        state = deps.states.consume(params.state)
    except StateExpiredError:
        raise StateRejectedError("This sign-in took too long. Please start again.") from None
    except StateNotFoundError:
        raise StateRejectedError("This sign-in link is unknown or was already used.") from None
    try:
        deps.browser_binding.verify(cookies, state.browser_binding_hash)
    except BrowserBindingError:
        raise StateRejectedError(
            "The sign-in did not come back to the browser that started it."
        ) from None
    # RFC 9207: an answer from another authorization server is refused, an error one too. The
    # issuer is compared as an exact string (section 2.4: no normalisation), and an answer
    # without one is refused from a server that sends it.
    settings = deps.pleo_settings
    if params.iss is None:
        if settings.pleo_require_iss:
            raise IssuerMismatchError("The sign-in answer did not say which server it came from.")
    elif params.iss != settings.issuer:
        raise IssuerMismatchError("The sign-in answer came from an unexpected server.")
    if params.error:
        raise AuthorizationDeniedError(params.error, params.error_description)
    if not params.code:
        raise BadCallbackError("The sign-in answer has no authorization code.")

    try:
        token_set = await deps.oauth_client.exchange_code(
            params.code, state.code_verifier, state.redirect_uri
        )
    except InvalidGrantError:
        raise GrantExchangeError("Pleo did not accept this sign-in. Please start again.") from None
    except (OAuthError, PleoError) as error:
        logger.warning("token exchange failed", extra={"error_type": type(error).__name__})
        raise PleoUnavailableError(
            "Pleo could not complete the sign-in. Please try again."
        ) from None

    needs_configuration = deps.web_settings.requires_configuration
    try:
        async with deps.pleo.with_access_token(token_set.access_token) as pleo:
            installation = await pleo.installations.get()
            introspection = await pleo.introspect()
            if not needs_configuration and installation.status == InstallationStatus.AUTHORIZED:
                # Pleo's client is registered as needing configuration, this app is not: start
                # the first sync now, as Pleo's lifecycle has it (the worker activates it).
                installation = await pleo.installations.update(
                    InstallationStatus.PENDING_INTEGRATION, metadata=installation.metadata
                )
    except PleoError as error:
        logger.warning("installation lookup failed", extra={"error_type": type(error).__name__})
        raise PleoUnavailableError(
            "Pleo could not complete the sign-in. Please try again."
        ) from None
    company_id = introspection.company_id or installation.company_id
    if not company_id:
        raise PleoUnavailableError("Pleo did not say which company this connection is for.")

    # Credentials first: without its installation item a credential is unreachable, while an
    # installation without credentials would be scheduled and fail.
    deps.tokens.save_oauth_tokens(installation.id, token_set)
    record = store_installation(
        deps.installations,
        installation_id=installation.id,
        company_id=company_id,
        auth_method=AuthMethod.OAUTH,
        pleo_status=installation.known_status(),
    )
    if not needs_configuration:
        deps.sync_queue.send(
            SyncRequest(
                installation_id=installation.id,
                reason=SyncReason.FIRST_SYNC,
                activate_on_success=record.status != InstallationStatus.ACTIVATED,
            )
        )
    logger.info(
        "installed with OAuth",
        extra={"installation_id": installation.id, "status": record.status},
    )
    return OAuthInstallOutcome(installation.id, record.status, needs_configuration)


def store_installation(
    installations: InstallationStore,
    *,
    installation_id: str,
    company_id: str,
    auth_method: AuthMethod,
    pleo_status: InstallationStatus,
) -> InstallationRecord:
    """Create or update the company's one installation. If Pleo replaced the installation (a new
    id for the same company), the old one's local data goes first."""
    existing = installations.find_by_company(company_id)
    if existing is not None and existing.installation_id != installation_id:
        installations.delete_all(existing.installation_id)
        existing = None
    if existing is None:
        # An installation item whose company pointer is gone (say, a disconnect that stopped
        # half-way) is updated rather than created again, which its version would refuse.
        existing = installations.get(installation_id)
    if existing is None:
        record = InstallationRecord(
            installation_id=installation_id,
            company_id=company_id,
            auth_method=auth_method,
            status=pleo_status,
        )
    else:
        record = replace(
            existing,
            company_id=company_id,
            auth_method=auth_method,
            status=pleo_status,
            error_code=None,
            local_error=None,
            failure_count=0,
            failure_reason=None,
        )
    return installations.create_or_update(record)
