"""Flow 3, settings and activation: the accounting system's connection settings and the sync
choices, stored locally (secrets encrypted) and in Pleo's installation metadata; saving sets
PENDING_INTEGRATION and queues the first sync, which activates the installation when it succeeds.
Also "sync now" and flow 6, disconnect."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from pleo_connector.connect.errors import (
    NotInstalledError,
    PleoUnavailableError,
    SyncRunningError,
)
from pleo_connector.connect.wiring import Collaborators
from pleo_connector.observability import logger
from pleo_connector.sync.adapters.base import PlaceholderAdapter
from pleo_connector.sync_queue import SyncReason, SyncRequest

if TYPE_CHECKING:
    from pleo_connector.store.installations import InstallationRecord
    from pleo_connector.web.forms import SyncChoices

PENDING = "PENDING_INTEGRATION"
ADAPTER = PlaceholderAdapter
METADATA_KEY = "pleoConnector"


def load_installation(deps: Collaborators, installation_id: str) -> InstallationRecord:
    record = deps.installations.get(installation_id)
    if record is None:
        raise NotInstalledError("This connection no longer exists. Please connect again.")
    return record


def saved_connection_settings(deps: Collaborators, record: InstallationRecord) -> BaseModel | None:
    """The stored connection settings with their secrets decrypted (server side only)."""
    stored = record.config.get("connection")
    if not isinstance(stored, dict):
        return None
    values: dict[str, Any] = dict(stored.get("values", {}))
    for name, ciphertext in dict(stored.get("secrets", {})).items():
        plaintext = deps.cipher.decrypt(record.installation_id, base64.b64decode(ciphertext))
        values[name] = plaintext.decode("utf-8")
    try:
        return ADAPTER.settings_model.model_validate(values)
    except ValueError:
        return None


def _stored_connection(
    deps: Collaborators, installation_id: str, settings: BaseModel
) -> dict[str, Any]:
    """Split the settings: secrets encrypted with the installation as context, the rest plain."""
    values: dict[str, Any] = {}
    encrypted: dict[str, str] = {}
    for name, value in settings:
        if isinstance(value, SecretStr):
            ciphertext = deps.cipher.encrypt(installation_id, value.get_secret_value().encode())
            encrypted[name] = base64.b64encode(ciphertext).decode("ascii")
        else:
            values[name] = settings.model_dump(mode="json", include={name})[name]
    return {"adapter": ADAPTER.name, "values": values, "secrets": encrypted}


def available_tag_groups(settings: BaseModel | None) -> list[tuple[str, str]]:
    """(code, name) of the accounting system's dimensions the user may pick from."""
    adapter = ADAPTER(settings)  # type: ignore[arg-type]
    return [(group.code, group.name) for group in adapter.tag_groups()]


@dataclass(frozen=True, slots=True)
class SavedSettings:
    installation_id: str
    status: str


async def save_settings(
    deps: Collaborators,
    installation_id: str,
    connection: BaseModel,
    choices: SyncChoices,
) -> SavedSettings:
    """Store locally and in Pleo's metadata (read-modify-write: a PUT replaces the metadata), set
    PENDING_INTEGRATION, and queue the first sync with activation on success."""
    from pleo_connector.pleo.errors import AuthenticationError, NotFoundError, PleoError
    from pleo_connector.tokens import GrantRevokedError

    record = load_installation(deps, installation_id)
    summary = {
        "adapter": ADAPTER.name,
        "syncChoices": choices.model_dump(mode="json"),
        "configuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        async with deps.pleo_for_installation(installation_id, record.auth_method) as pleo:
            current = await pleo.installations.get()
            ours = current.metadata.get(METADATA_KEY)
            kept = ours if isinstance(ours, dict) else {}
            metadata = {**current.metadata, METADATA_KEY: {**kept, **summary}}
            await pleo.installations.update(PENDING, metadata=metadata)
    except NotFoundError:
        # The customer removed the app in Pleo: clean up as a disconnect would.
        deps.installations.delete_all(installation_id)
        logger.info("installation removed in Pleo; local data deleted")
        raise NotInstalledError(
            "This connection was removed in Pleo. Please connect again."
        ) from None
    except (AuthenticationError, GrantRevokedError):
        # The failure policy: mark it and stop scheduling it until the user reconnects. (A
        # credential that does not decrypt is reported as it is, by its own page.)
        deps.installations.mark_auth_failure(installation_id, status="INACTIVE")
        logger.warning("credential no longer accepted; installation marked")
        raise NotInstalledError(
            "Pleo no longer accepts this connection. Please connect again."
        ) from None
    except PleoError as error:
        logger.warning("saving settings to Pleo failed", extra={"error_type": type(error).__name__})
        raise PleoUnavailableError("Pleo could not be reached; nothing was changed.") from None

    config = {**record.config, "connection": _stored_connection(deps, installation_id, connection)}
    stored = deps.installations.create_or_update(
        replace(
            record,
            config=config,
            sync_choices=choices.model_dump(mode="json"),
            status=PENDING,
            error_code=None,
        )
    )
    deps.sync_queue.send(
        SyncRequest(
            installation_id=installation_id,
            reason=SyncReason.FIRST_SYNC,
            activate_on_success=True,
        )
    )
    logger.info("settings saved", extra={"installation_id": installation_id})
    return SavedSettings(installation_id, stored.status)


def request_sync(deps: Collaborators, installation_id: str) -> None:
    """ "Sync now": queue a sync of a configured installation."""
    record = load_installation(deps, installation_id)
    if not record.schedulable:
        raise SyncRunningError(
            "Save the settings first: this connection is not ready to sync."
            if record.status == "AUTHORIZED"
            else "This connection cannot sync until it is connected again."
        )
    deps.sync_queue.send(SyncRequest(installation_id=installation_id, reason=SyncReason.SYNC_NOW))


async def disconnect(deps: Collaborators, installation_id: str) -> None:
    """Delete the installation in Pleo (which revokes its tokens), then every local item. Refused
    while a sync runs, since Pleo warns that disconnecting during PENDING_INTEGRATION loses data."""
    from pleo_connector.crypto import CredentialDecryptError
    from pleo_connector.pleo.errors import AuthenticationError, NotFoundError, PleoError
    from pleo_connector.tokens import CredentialError

    record = load_installation(deps, installation_id)
    if record.status == PENDING:
        raise SyncRunningError(
            "A sync is running. Disconnect when it has finished, so that no data is lost."
        )
    try:
        async with deps.pleo_for_installation(installation_id, record.auth_method) as pleo:
            await pleo.installations.delete()
    except NotFoundError:
        logger.info("installation already gone in Pleo", extra={"installation_id": installation_id})
    except CredentialDecryptError:
        # Not a dead grant but a credential that is not this installation's: keep everything and
        # report the auth problem, rather than forget an installation Pleo still has.
        raise
    except (AuthenticationError, CredentialError):
        # The credential is dead: Pleo can no longer be told, the local data still goes.
        logger.warning("disconnecting without Pleo", extra={"installation_id": installation_id})
    except PleoError as error:
        logger.warning("disconnect failed", extra={"error_type": type(error).__name__})
        raise PleoUnavailableError("Pleo could not be reached; the connection was kept.") from None
    deleted = deps.installations.delete_all(installation_id)
    logger.info("disconnected", extra={"installation_id": installation_id, "items": deleted})
