"""Feed a function from an SQS queue with Lambda's event source mapping semantics.

What it keeps from Lambda:
- batches of up to the template's `BatchSize`, one poller thread per unit of
  `ScalingConfig.MaximumConcurrency`;
- a function error leaves the whole batch on the queue; with `ReportBatchItemFailures` only the
  messages listed in `batchItemFailures` stay, the rest are deleted (an invalid response fails the
  whole batch, as Lambda does);
- what stays becomes visible again after the visibility timeout, and after `maxReceiveCount`
  receives moto's SQS moves it to the dead-letter queue (redrive happens on the queue, as in AWS).

The one local liberty: a failed message waits `visibility_timeout_s` seconds before its retry
(`LOCAL_SQS_VISIBILITY_TIMEOUT`) instead of the rest of the queue's visibility timeout (720 s in
template.yaml), so a retry takes seconds, not twelve minutes. While a message is being processed
it stays hidden for the queue's own timeout, so it is never handed to two workers at once.
Needs boto3 (both virtualenvs have it).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local.services import LOCAL_REGION

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.function_spec import FunctionSpec
    from local.invoker import Invocation, Invoker

VISIBILITY_OVERRIDE_ENV = "LOCAL_SQS_VISIBILITY_TIMEOUT"


@dataclass
class BatchOutcome:
    """What one poll did: how many messages went in, which were deleted, which stay."""

    invocation: Invocation
    message_ids: list[str]
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "source": "sqs",
            "function": self.invocation.function_name,
            "request_id": self.invocation.request_id,
            "messages": len(self.message_ids),
            "deleted": len(self.deleted),
            "failed": len(self.failed),
            "error": self.invocation.error_type,
            "cold_start": self.invocation.cold_start,
        }


@dataclass(frozen=True)
class SqsSource:
    """One SQS event of the template, bound to a local queue."""

    function_name: str
    queue_url: str
    queue_arn: str
    batch_size: int
    max_concurrency: int
    report_batch_item_failures: bool


def sqs_sources(
    specs: dict[str, FunctionSpec], queue_urls_by_arn: dict[str, str]
) -> list[SqsSource]:
    """Every SQS event of the template whose queue exists locally."""
    sources = []
    for spec in specs.values():
        for event in spec.events_of_type("SQS").values():
            properties = event.get("Properties", {})
            arn = str(properties.get("Queue", ""))
            if arn not in queue_urls_by_arn:
                continue
            scaling = properties.get("ScalingConfig") or {}
            sources.append(
                SqsSource(
                    function_name=spec.name,
                    queue_url=queue_urls_by_arn[arn],
                    queue_arn=arn,
                    batch_size=int(properties.get("BatchSize", 10)),
                    max_concurrency=int(scaling.get("MaximumConcurrency", 2)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (properties.get("FunctionResponseTypes") or []),
                )
            )
    return sources


def visibility_override_from_env() -> int | None:
    value = os.environ.get(VISIBILITY_OVERRIDE_ENV, "").strip()
    return int(value) if value else None


def _sqs_client(endpoint_url: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the stand-ins accept anything
        region_name=LOCAL_REGION,
    ).client("sqs", endpoint_url=endpoint_url)


def _failed_ids(outcome_payload: Any, message_ids: list[str]) -> list[str] | None:
    """The message IDs a partial batch response names; None when the response is invalid."""
    if outcome_payload is None or not isinstance(outcome_payload, dict):
        return [] if outcome_payload is None else None
    failures = outcome_payload.get("batchItemFailures")
    if failures is None:
        return []
    if not isinstance(failures, list):
        return None
    failed = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in message_ids:
            return None
        failed.append(str(identifier))
    return failed


class SqsPoller:
    """Polls one queue for one function."""

    def __init__(
        self,
        invoker: Invoker,
        source: SqsSource,
        sqs_endpoint_url: str,
        visibility_timeout_s: int | None = None,
        wait_time_s: int = 1,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.invoker = invoker
        self.source = source
        self.endpoint_url = sqs_endpoint_url
        self.visibility_timeout_s = visibility_timeout_s
        self.wait_time_s = wait_time_s
        self.on_batch = on_batch
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._client = _sqs_client(sqs_endpoint_url)

    def poll_once(self, client: Any = None) -> BatchOutcome | None:
        """Receive one batch, invoke the function once, delete what succeeded."""
        client = client or self._client
        request: dict[str, Any] = {
            "QueueUrl": self.source.queue_url,
            "MaxNumberOfMessages": min(self.source.batch_size, 10),
            "WaitTimeSeconds": self.wait_time_s,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        messages = client.receive_message(**request).get("Messages", [])
        if not messages:
            return None
        event = {"Records": [self._record(message) for message in messages]}
        message_ids = [message["MessageId"] for message in messages]
        invocation = self.invoker.invoke(self.source.function_name, event)
        outcome = BatchOutcome(invocation, message_ids)
        if invocation.is_error:
            failed: list[str] | None = message_ids
        elif self.source.report_batch_item_failures:
            failed = _failed_ids(invocation.payload, message_ids)
        else:
            failed = []
        outcome.failed = message_ids if failed is None else failed
        succeeded = [m for m in messages if m["MessageId"] not in outcome.failed]
        if succeeded:
            client.delete_message_batch(
                QueueUrl=self.source.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(succeeded)
                ],
            )
        outcome.deleted = [m["MessageId"] for m in succeeded]
        failed_messages = [m for m in messages if m["MessageId"] in outcome.failed]
        if failed_messages and self.visibility_timeout_s is not None:
            # In flight, a message stayed hidden for the queue's own timeout (never handed out
            # twice while it runs); only its retry comes sooner.
            client.change_message_visibility_batch(
                QueueUrl=self.source.queue_url,
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": message["ReceiptHandle"],
                        "VisibilityTimeout": self.visibility_timeout_s,
                    }
                    for index, message in enumerate(failed_messages)
                ],
            )
        if self.on_batch is not None:
            self.on_batch(outcome)
        return outcome

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                key: attributes[key]
                for key in (
                    "ApproximateReceiveCount",
                    "SentTimestamp",
                    "SenderId",
                    "ApproximateFirstReceiveTimestamp",
                    "MessageGroupId",
                    "MessageDeduplicationId",
                    "SequenceNumber",
                )
                if key in attributes
            },
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType"),
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.source.queue_arn,
            "awsRegion": LOCAL_REGION,
        }

    def start(self) -> None:
        """Poll in the background, one thread per unit of maximum concurrency."""
        for index in range(max(1, self.source.max_concurrency)):
            thread = threading.Thread(
                target=self._loop,
                name=f"sqs-poller-{self.source.function_name}-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def _loop(self) -> None:
        client = _sqs_client(self.endpoint_url)
        while not self._stop.is_set():
            try:
                self.poll_once(client)
            except Exception:  # the stand-in went away (shutdown) or a transient error
                if self._stop.wait(1.0):
                    return

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            with contextlib.suppress(RuntimeError):
                thread.join(timeout=self.wait_time_s + 5)
