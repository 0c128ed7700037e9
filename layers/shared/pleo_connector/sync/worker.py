"""One sync request, end to end, with the failure policy around it.

A keep-alive request refreshes an idle OAuth grant and nothing else; a dry run (`sync.preview`)
plans with reads only and keeps its plan for the settings page; an installation that is not
schedulable (not configured yet, stopped, or with a dead credential) is skipped; any other request
is one run of the sync engine (`sync.engine`), under the installation's lease and within the
invocation's deadline. A request with `activate_on_success` ends in `me:activate` and the
installation ACTIVATED, and a dead credential or a removed installation is handled as the failure
policy says.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from pleo_connector import metrics
from pleo_connector.observability import logger
from pleo_connector.sync.engine import (
    SyncDeps,
    lambda_deadline,
    outcome_after_failure,
    sync_installation,
)
from pleo_connector.vocabulary import SyncOutcome, SyncReason

if TYPE_CHECKING:
    from pleo_connector.pleo.retry import Deadline
    from pleo_connector.sync_queue import SyncRequest

__all__ = ["SyncDeps", "keep_grant_alive", "lambda_deadline", "new_run_id", "run_sync"]


def new_run_id() -> str:
    """The id that ties together the log lines of one sync request's run."""
    return uuid.uuid4().hex


async def run_sync(
    deps: SyncDeps, request: SyncRequest, *, deadline: Deadline | None = None
) -> SyncOutcome:
    """Sync one installation; returns what happened (for logs, metrics and tests). A transient
    failure raises, so the message comes back and is retried. `deadline`: when the run must stop
    at a checkpoint (the worker derives it from Lambda's remaining time)."""
    try:
        outcome = await _run_sync(deps, request, deadline)
    except BaseException:
        metrics.sync_done(SyncOutcome.FAILED)
        raise
    metrics.sync_done(outcome)
    return outcome


async def _run_sync(deps: SyncDeps, request: SyncRequest, deadline: Deadline | None) -> SyncOutcome:
    record = deps.installations.get(request.installation_id)
    if record is None:
        logger.info("installation gone; nothing to sync")
        return SyncOutcome.GONE
    if request.reason == SyncReason.KEEP_ALIVE:
        return await keep_grant_alive(deps, record.installation_id)
    if request.reason == SyncReason.PREVIEW:
        # Reads only, so a dry run is allowed before the first save and while syncing is paused.
        from pleo_connector.sync.preview import preview_installation

        return await preview_installation(deps, record, request)
    if not record.schedulable:
        logger.info("installation not schedulable; skipped", extra={"status": record.status})
        return SyncOutcome.SKIPPED
    return await sync_installation(deps, record, request, deadline=deadline)


async def keep_grant_alive(deps: SyncDeps, installation_id: str) -> SyncOutcome:
    """Refresh an idle OAuth grant (re-checked under the lease); a dead one is marked."""
    try:
        refreshed = await deps.tokens.refresh_if_idle(installation_id)
    except Exception as error:
        return outcome_after_failure(deps, installation_id, error)
    return SyncOutcome.REFRESHED if refreshed else SyncOutcome.FRESH
