"""Scheduled by EventBridge Scheduler: one sync message per schedulable installation, sent in
batches of ten."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pleo_connector.config import QueueSettings, StoreSettings, load_settings
from pleo_connector.connect.wiring import Collaborators
from pleo_connector.observability import logger
from pleo_connector.sync_queue import SyncReason, SyncRequest


@cache
def deps() -> Collaborators:
    return Collaborators(store=load_settings(StoreSettings), queue=load_settings(QueueSettings))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    collaborators = deps()
    requests = (
        SyncRequest(installation_id=installation_id, reason=SyncReason.SCHEDULED)
        for installation_id in collaborators.installations.iter_schedulable()
    )
    dispatched = collaborators.sync_queue.send_many(requests)
    logger.info("sync dispatched", extra={"dispatched": dispatched})
    return {"dispatched": dispatched}
