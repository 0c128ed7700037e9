"""Flow 6, disconnect: delete the installation in Pleo (which revokes its tokens), then every
local item. Refused while a sync runs (Pleo shows PENDING_INTEGRATION, or a run holds the
installation's lease), since Pleo warns that disconnecting during a sync loses data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pleo_connector.connect.errors import PleoUnavailableError, SyncRunningError
from pleo_connector.connect.settings import load_installation
from pleo_connector.failure_policy import FailureAction, FailureContext, handle_failure
from pleo_connector.observability import logger
from pleo_connector.pleo.errors import PleoError
from pleo_connector.vocabulary import InstallationStatus

if TYPE_CHECKING:
    from pleo_connector.ports import InstallationStore, PleoClientFactory, SyncRunStore
    from pleo_connector.store.installations import InstallationRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectDeps:
    installations: InstallationStore
    pleo: PleoClientFactory
    runs: SyncRunStore


def sync_running(deps: DisconnectDeps, record: InstallationRecord) -> bool:
    """Whether a sync may be running: Pleo was told PENDING_INTEGRATION, or a run holds the
    installation's lease."""
    return record.status == InstallationStatus.PENDING_INTEGRATION or deps.runs.lease_held(
        record.installation_id
    )


async def disconnect(deps: DisconnectDeps, installation_id: str, *, force: bool = False) -> None:
    """Delete in Pleo, then locally. When Pleo says the installation is gone already, or can no
    longer be told (a dead credential), the local data still goes; a credential that is not this
    installation's keeps everything (Pleo still has the installation). `force` (the operator's
    admin tool only, never a page) disconnects even while a sync runs."""
    record = load_installation(deps.installations, installation_id)
    if not force and sync_running(deps, record):
        raise SyncRunningError(
            "A sync is running. Disconnect when it has finished, so that no data is lost."
        )
    try:
        async with deps.pleo.for_installation(installation_id, record.auth_method) as pleo:
            await pleo.installations.delete()
    except Exception as error:
        action = handle_failure(
            error, FailureContext.DISCONNECT, deps.installations, installation_id
        )
        if action is FailureAction.CLEAN_UP:
            logger.info("disconnected without Pleo", extra={"installation_id": installation_id})
            return
        if action is FailureAction.RETRY_LATER and isinstance(error, PleoError):
            raise PleoUnavailableError(
                "Pleo could not be reached; the connection was kept."
            ) from None
        raise
    deleted = deps.installations.delete_all(installation_id)
    logger.info("disconnected", extra={"installation_id": installation_id, "items": deleted})
