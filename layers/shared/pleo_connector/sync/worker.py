"""One sync request, end to end, with the failure policy around it.

The reconcile itself (plan, apply) lands with the sync engine; until then a run reads nothing and
writes nothing, and this module already holds the contract with the pages: a request with
`activate_on_success` ends in `me:activate` and the installation ACTIVATED, and a dead credential
or a removed installation is handled as the failure policy says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pleo_connector.failure_policy import FailureAction, FailureContext, handle_failure
from pleo_connector.observability import logger
from pleo_connector.vocabulary import InstallationStatus, SyncOutcome, SyncReason

if TYPE_CHECKING:
    from pleo_connector.adapters.base import AdapterDescriptor
    from pleo_connector.ports import CredentialVault, InstallationStore, PleoClientFactory
    from pleo_connector.sync_queue import SyncRequest

_OUTCOME_OF_ACTION = {
    FailureAction.MARK_AUTH_FAILURE: SyncOutcome.AUTH_FAILED,
    FailureAction.CLEAN_UP: SyncOutcome.REMOVED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDeps:
    """What one sync needs."""

    installations: InstallationStore
    pleo: PleoClientFactory
    tokens: CredentialVault
    adapter: AdapterDescriptor


async def run_sync(deps: SyncDeps, request: SyncRequest) -> SyncOutcome:
    """Sync one installation; returns what happened (for logs and tests). A transient failure
    raises, so the message comes back and is retried."""
    record = deps.installations.get(request.installation_id)
    if record is None:
        logger.info("installation gone; nothing to sync")
        return SyncOutcome.GONE
    if request.reason == SyncReason.KEEP_ALIVE:
        return await keep_grant_alive(deps, record.installation_id)
    if not record.schedulable:
        logger.info("installation not schedulable; skipped", extra={"status": record.status})
        return SyncOutcome.SKIPPED
    try:
        async with deps.pleo.for_installation(record.installation_id, record.auth_method) as pleo:
            if request.activate_on_success and record.status != InstallationStatus.ACTIVATED:
                installation = await pleo.installations.activate()
                deps.installations.update_status(
                    record.installation_id, installation.known_status(), record.version
                )
                logger.info("installation activated after its first sync")
                return SyncOutcome.ACTIVATED
            # Touch Pleo so a dead credential or a removed installation shows now, not later.
            await pleo.installations.get()
    except Exception as error:
        return _after_failure(deps, record.installation_id, error)
    return SyncOutcome.SYNCED


async def keep_grant_alive(deps: SyncDeps, installation_id: str) -> SyncOutcome:
    """Refresh an idle OAuth grant (re-checked under the lease); a dead one is marked."""
    try:
        refreshed = await deps.tokens.refresh_if_idle(installation_id)
    except Exception as error:
        return _after_failure(deps, installation_id, error)
    return SyncOutcome.REFRESHED if refreshed else SyncOutcome.FRESH


def _after_failure(deps: SyncDeps, installation_id: str, error: Exception) -> SyncOutcome:
    """The failure policy's verdict as this run's outcome; what it does not settle (a transient
    failure, a bug) is raised again, so the message is retried."""
    action = handle_failure(error, FailureContext.SYNC, deps.installations, installation_id)
    outcome = _OUTCOME_OF_ACTION.get(action) if action is not None else None
    if outcome is None:
        raise error
    return outcome
