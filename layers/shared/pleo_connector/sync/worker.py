"""One sync request, end to end, with the failure policy around it.

The reconcile itself (plan, apply) lands with the sync engine; until then a run reads nothing and
writes nothing, and this module already holds the contract with the pages: a request with
`activate_on_success` ends in `me:activate` and the installation ACTIVATED, and a dead credential
or a removed installation is handled as the failure policy says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pleo_connector.observability import logger
from pleo_connector.sync_queue import SyncReason, SyncRequest

if TYPE_CHECKING:
    from pleo_connector.connect.wiring import Collaborators


async def run_sync(deps: Collaborators, request: SyncRequest) -> str:
    """Sync one installation; returns what happened (for logs and tests)."""
    from pleo_connector.crypto import CredentialError
    from pleo_connector.pleo.errors import AuthenticationError, NotFoundError

    record = deps.installations.get(request.installation_id)
    if record is None:
        logger.info("installation gone; nothing to sync")
        return "gone"
    if request.reason == SyncReason.KEEP_ALIVE:
        return await keep_grant_alive(deps, record.installation_id)
    if not record.schedulable:
        logger.info("installation not schedulable; skipped", extra={"status": record.status})
        return "skipped"
    try:
        async with deps.pleo_for_installation(record.installation_id, record.auth_method) as pleo:
            if request.activate_on_success and record.status != "ACTIVATED":
                installation = await pleo.installations.activate()
                deps.installations.update_status(
                    record.installation_id, str(installation.status), record.version
                )
                logger.info("installation activated after its first sync")
                return "activated"
            # Touch Pleo so a dead credential or a removed installation shows now, not later.
            await pleo.installations.get()
    except CredentialError as error:
        # A revoked grant, or a stored credential that does not decrypt for this installation:
        # Pleo can no longer be told (no usable credential), so INACTIVE locally, off the schedule.
        deps.installations.mark_auth_failure(record.installation_id, status="INACTIVE")
        logger.warning(
            "credential unusable; installation marked and unscheduled",
            extra={"error_type": type(error).__name__},
        )
        return "auth_failed"
    except AuthenticationError:
        deps.installations.mark_auth_failure(record.installation_id, status="INACTIVE")
        logger.warning("credential rejected; installation marked and unscheduled")
        return "auth_failed"
    except NotFoundError:
        # The customer removed the app in Pleo: clean up as a disconnect would.
        deps.installations.delete_all(record.installation_id)
        logger.info("installation removed in Pleo; local data deleted")
        return "removed"
    return "synced"


async def keep_grant_alive(deps: Collaborators, installation_id: str) -> str:
    """Refresh an idle OAuth grant (re-checked under the lease); a dead one is marked."""
    from pleo_connector.tokens import GrantRevokedError

    try:
        refreshed = await deps.tokens.refresh_if_idle(installation_id)
    except GrantRevokedError:
        deps.installations.mark_auth_failure(installation_id, status="INACTIVE")
        logger.warning("idle grant was revoked; installation marked and unscheduled")
        return "auth_failed"
    return "refreshed" if refreshed else "fresh"
