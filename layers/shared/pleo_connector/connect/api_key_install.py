"""Flow 2, the API-key install: check the pasted key with a real call, learn the company, create
(or find) the installation in Pleo, store the key encrypted, queue the first sync."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pleo_connector import metrics
from pleo_connector.connect.errors import (
    InvalidApiKeyError,
    KeyForAnotherInstallationError,
    PleoUnavailableError,
)
from pleo_connector.connect.oauth_install import store_installation
from pleo_connector.observability import logger
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import AuthMethod, InstallationStatus, SyncReason

if TYPE_CHECKING:
    from pleo_connector.pleo.models import Installation
    from pleo_connector.ports import (
        CredentialVault,
        InstallationStore,
        PleoApi,
        PleoClientFactory,
        SyncQueuePort,
    )

MIN_KEY_CHARS = 16
MAX_KEY_CHARS = 512


@dataclass(frozen=True, slots=True)
class ApiKeyInstallOutcome:
    installation_id: str
    status: InstallationStatus
    replaced: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyInstallDeps:
    """What the API-key install needs."""

    pleo: PleoClientFactory
    tokens: CredentialVault
    installations: InstallationStore
    sync_queue: SyncQueuePort


def check_api_key_shape(api_key: str | None) -> str:
    """A key is one token of printable ASCII; the message never repeats what was pasted."""
    key = (api_key or "").strip()
    if not key:
        raise InvalidApiKeyError("Paste the API key that Pleo showed you.")
    if not MIN_KEY_CHARS <= len(key) <= MAX_KEY_CHARS or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidApiKeyError("That does not look like a Pleo API key.")
    return key


async def _find_or_create_installation(pleo: PleoApi) -> Installation:
    """The key's installation in Pleo, created when there is none. Pleo has no idempotency key,
    so a create whose outcome is unknown is never sent again: the installation is read back,
    and if it is not there the user is asked to try again (which starts with the read)."""
    from pleo_connector.pleo.errors import NotFoundError, OutcomeUnknownError

    try:
        return await pleo.installations.get()
    except NotFoundError:
        pass
    try:
        return await pleo.installations.create(
            status=InstallationStatus.ACTIVATED,
            metadata={"pleoConnector": {"connectedBy": "api_key"}},
        )
    except OutcomeUnknownError:
        logger.warning("installation create unconfirmed; reading it back")
    try:
        return await pleo.installations.get()
    except NotFoundError:
        raise PleoUnavailableError(
            "Pleo did not confirm the connection. Please try again."
        ) from None


@metrics.counted_install(metrics.InstallMethod.API_KEY)
async def install_with_api_key(
    deps: ApiKeyInstallDeps, api_key: str | None, *, replacing_installation_id: str | None = None
) -> ApiKeyInstallOutcome:
    """Install (or replace the key of) the company's installation. A key Pleo rejects is never
    stored; with `replacing_installation_id`, the key must belong to that installation's company."""
    from pleo_connector.pleo.errors import (
        AuthenticationError,
        PermissionDeniedError,
        PleoError,
    )

    key = check_api_key_shape(api_key)
    try:
        async with deps.pleo.with_api_key(key) as pleo:
            introspection = await pleo.introspect()
            company_id = introspection.company_id
            if not company_id:
                raise InvalidApiKeyError("This key is not for a single company.")
            if replacing_installation_id is not None:
                current = deps.installations.get(replacing_installation_id)
                if current is None or current.company_id != company_id:
                    raise KeyForAnotherInstallationError(
                        "This key belongs to another Pleo company than this connection."
                    )
            installation = await _find_or_create_installation(pleo)
    except (AuthenticationError, PermissionDeniedError):
        raise InvalidApiKeyError("Pleo did not accept this API key.") from None
    except PleoError as error:
        logger.warning("API-key check failed", extra={"error_type": type(error).__name__})
        raise PleoUnavailableError("Pleo could not be reached. Please try again.") from None

    existing = deps.installations.find_by_company(company_id)
    deps.tokens.save_api_key(installation.id, key)
    record = store_installation(
        deps.installations,
        installation_id=installation.id,
        company_id=company_id,
        auth_method=AuthMethod.API_KEY,
        pleo_status=installation.known_status(),
    )
    deps.sync_queue.send(
        SyncRequest(
            installation_id=installation.id,
            reason=SyncReason.FIRST_SYNC,
            activate_on_success=record.status != InstallationStatus.ACTIVATED,
        )
    )
    logger.info("installed with an API key", extra={"installation_id": installation.id})
    return ApiKeyInstallOutcome(installation.id, record.status, replaced=existing is not None)
