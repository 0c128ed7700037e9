"""SQS-triggered sync worker: one installation per message, partial batch failures reported so
only the failed messages come back. Each run stops at a checkpoint before Lambda's own timeout
(the invocation's remaining time less a margin) and continues in a new message."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

from pleo_connector.aio import run
from pleo_connector.composition.roots import build_worker
from pleo_connector.config import WorkerFunctionSettings, load_settings
from pleo_connector.observability import logger, observed
from pleo_connector.sync.worker import SyncDeps, lambda_deadline, new_run_id, run_sync
from pleo_connector.sync_queue import SyncRequest

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

processor = BatchProcessor(event_type=EventType.SQS)


@cache
def deps() -> SyncDeps:
    return build_worker(load_settings(WorkerFunctionSettings))


def sync_one(record: SQSRecord, lambda_context: LambdaContext) -> str:
    """One message: every log line of its run carries the installation and a run id of its own,
    and none of its keys outlive it (the next record of the batch starts clean)."""
    request = SyncRequest.model_validate_json(record.body)
    with logger.append_context_keys(
        installation_id=request.installation_id, run_id=new_run_id(), reason=str(request.reason)
    ):
        worker = deps()
        deadline = lambda_deadline(
            lambda_context.get_remaining_time_in_millis(), worker.deadline_margin_s
        )
        outcome = run(run_sync(worker, request, deadline=deadline))
        logger.info("sync request done", extra={"outcome": str(outcome)})
    return str(outcome)


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=sync_one, processor=processor, context=context
    )
