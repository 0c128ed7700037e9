"""The contract between the pages, the dispatcher and the sync worker: one SQS message per
installation to sync, with the reason it was asked for."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from pleo_connector.errors import ConnectorError
from pleo_connector.vocabulary import SyncReason

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SQS_BATCH_LIMIT = 10


class QueueError(ConnectorError):
    """SQS did not take every message of a batch: the caller's run failed and is retried."""

    http_status: ClassVar[int] = 503


class SyncRequest(BaseModel):
    """The body of one sync message."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    installation_id: str
    reason: SyncReason
    activate_on_success: bool = False
    cursor: dict[str, Any] | None = None


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

    def send_many(self, requests: Iterable[SyncRequest]) -> int:
        """Send in batches of ten; returns how many were sent. A partly failed batch raises."""
        sent = 0
        batch: list[SyncRequest] = []
        for request in requests:
            batch.append(request)
            if len(batch) == SQS_BATCH_LIMIT:
                sent += self._send_batch(batch)
                batch = []
        if batch:
            sent += self._send_batch(batch)
        return sent

    def _send_batch(self, batch: list[SyncRequest]) -> int:
        response = self._client.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[
                {"Id": str(index), "MessageBody": request.model_dump_json()}
                for index, request in enumerate(batch)
            ],
        )
        failed = response.get("Failed", [])
        if failed:
            codes = sorted({entry.get("Code", "unknown") for entry in failed})
            raise QueueError(f"{len(failed)} of {len(batch)} sync messages were not sent: {codes}")
        return len(batch)
