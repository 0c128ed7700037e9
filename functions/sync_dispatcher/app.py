"""Scheduled by EventBridge Scheduler: one sync message per schedulable installation, and one
keep-alive message per OAuth grant idle for two weeks, sent in batches of ten."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pleo_connector.connect.wiring import Collaborators
from pleo_connector.observability import logger
from pleo_connector.sync_queue import SyncReason, SyncRequest

# Grants unused for this long are refreshed ahead of time; Pleo promises at least 60 days.
IDLE_GRANT_AFTER_S = 14 * 24 * 3600


@cache
def deps() -> Collaborators:
    return Collaborators.from_environment(queue=True)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    collaborators = deps()
    requests = (
        SyncRequest(installation_id=installation_id, reason=SyncReason.SCHEDULED)
        for installation_id in collaborators.installations.iter_schedulable()
    )
    dispatched = collaborators.sync_queue.send_many(requests)
    idle_before = time.time() - IDLE_GRANT_AFTER_S
    keep_alive = (
        SyncRequest(installation_id=installation_id, reason=SyncReason.KEEP_ALIVE)
        for installation_id in collaborators.credentials.iter_idle_grants(idle_before)
    )
    kept_alive = collaborators.sync_queue.send_many(keep_alive)
    logger.info("sync dispatched", extra={"dispatched": dispatched, "keep_alive": kept_alive})
    return {"dispatched": dispatched, "keep_alive": kept_alive}
