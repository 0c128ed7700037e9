"""The contract between the pages, the dispatcher and the sync worker: one SQS message per
installation to sync, with the reason it was asked for."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from pleo_connector.errors import ConnectorError
from pleo_connector.observability import logger
from pleo_connector.vocabulary import SyncReason

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from mypy_boto3_sqs import SQSClient

SQS_BATCH_LIMIT = 10
# Batches in flight at once: a SendMessageBatch takes ~20 ms, so 10,000 requests (1,000 batches)
# go out in a few seconds instead of twenty.
SEND_CONCURRENCY = 8
ENTRY_ATTEMPTS = 3
RETRY_PAUSE_S = 0.05
MAX_FAILED_CALLS_IN_A_ROW = 5


class QueueError(ConnectorError):
    """SQS did not take a message: the caller's run failed and is retried."""

    http_status: ClassVar[int] = 503


class UnsentRequestsError(QueueError):
    """Some requests of `send_many` were not sent; `sent` were. `unsent` holds the installation
    ids of those tried and refused; `abandoned` means SQS stopped answering and the rest of the
    stream was not tried at all."""

    def __init__(self, sent: int, unsent: list[str], *, abandoned: bool = False) -> None:
        rest = "; the rest was not tried (SQS unreachable)" if abandoned else ""
        super().__init__(f"{len(unsent)} sync messages not sent, {sent} sent{rest}")
        self.sent = sent
        self.unsent = unsent
        self.abandoned = abandoned


class SyncRequest(BaseModel):
    """The body of one sync message."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    installation_id: str
    reason: SyncReason
    activate_on_success: bool = False
    cursor: dict[str, Any] | None = None
    # A dry run's id (reason PREVIEW): the worker plans only when it is still the one asked for.
    preview_id: str | None = None


class SyncQueue:
    """Sends sync requests; the boto3 client is built on first use and injectable for tests."""

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self._queue_url = queue_url
        self._injected = client

    @cached_property
    def _client(self) -> SQSClient:
        if self._injected is not None:
            return self._injected
        from pleo_connector.aws import aws_client

        client: SQSClient = aws_client("sqs")
        return client

    def send(self, request: SyncRequest) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=request.model_dump_json())

    def send_many(
        self, requests: Iterable[SyncRequest], *, concurrency: int = SEND_CONCURRENCY
    ) -> int:
        """Send in batches of ten, up to `concurrency` batches in flight; returns how many were
        sent. `requests` is pulled only as batches go out, so a long stream never sits in memory.

        A failed batch does not stop the others. Entries SQS refuses for a fault of its own are
        sent again (three attempts in all); when every batch has been tried, UnsentRequestsError
        names the requests still unsent. Only when `MAX_FAILED_CALLS_IN_A_ROW` batch calls fail
        in a row (SQS unreachable) is the rest of the stream left untried, and the error says so.
        """
        client = self._client  # built once, before the threads share it (boto3 clients may)
        tally = _Tally()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sync-queue") as pool:
            in_flight: deque[Future[_BatchOutcome]] = deque()
            for batch in _batches(requests):
                in_flight.append(pool.submit(_send_batch, client, self._queue_url, batch))
                if len(in_flight) >= concurrency:
                    tally.add(in_flight.popleft().result())
                    if tally.failed_calls_in_a_row >= MAX_FAILED_CALLS_IN_A_ROW:
                        tally.abandoned = True
                        break
            while in_flight:
                tally.add(in_flight.popleft().result())
        if tally.unsent or tally.abandoned:
            raise UnsentRequestsError(tally.sent, tally.unsent, abandoned=tally.abandoned)
        return tally.sent


@dataclass(frozen=True, slots=True)
class _BatchOutcome:
    sent: int
    unsent: list[str]
    call_failed: bool = False


@dataclass
class _Tally:
    sent: int = 0
    unsent: list[str] = field(default_factory=list)
    failed_calls_in_a_row: int = 0
    abandoned: bool = False

    def add(self, outcome: _BatchOutcome) -> None:
        self.sent += outcome.sent
        self.unsent += outcome.unsent
        self.failed_calls_in_a_row = self.failed_calls_in_a_row + 1 if outcome.call_failed else 0


def _batches(requests: Iterable[SyncRequest]) -> Iterator[list[SyncRequest]]:
    batch: list[SyncRequest] = []
    for request in requests:
        batch.append(request)
        if len(batch) == SQS_BATCH_LIMIT:
            yield batch
            batch = []
    if batch:
        yield batch


def _send_batch(client: SQSClient, queue_url: str, batch: list[SyncRequest]) -> _BatchOutcome:
    """One batch, with its refused entries sent again while SQS says the fault was its own."""
    from pleo_connector.aws import aws_errors

    pending = dict(enumerate(batch))
    sent = 0
    attempt = 0
    while True:
        attempt += 1
        try:
            response = client.send_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(index), "MessageBody": request.model_dump_json()}
                    for index, request in pending.items()
                ],
            )
        except aws_errors() as error:  # botocore has retried already
            logger.warning("sync messages not sent", extra={"error_type": type(error).__name__})
            return _BatchOutcome(sent, [r.installation_id for r in pending.values()], True)
        failed = {int(entry["Id"]): entry for entry in response.get("Failed", [])}
        sent += len(pending) - len(failed)
        retry = {i: pending[i] for i, entry in failed.items() if not entry.get("SenderFault")}
        refused = [pending[i].installation_id for i, e in failed.items() if e.get("SenderFault")]
        if failed:
            codes = sorted({entry.get("Code", "unknown") for entry in failed.values()})
            logger.warning(
                "sync messages refused",
                extra={"refused": len(failed), "sent_in_batch": len(pending), "codes": codes},
            )
        if not retry or attempt == ENTRY_ATTEMPTS:
            return _BatchOutcome(sent, refused + [r.installation_id for r in retry.values()])
        pending = retry
        time.sleep(RETRY_PAUSE_S * attempt)
