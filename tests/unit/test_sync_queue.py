"""Sending many sync requests: batches of ten, a few in flight, pulled from the stream only as
they go out, and a refused batch never silently loses the others."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

from pleo_connector.sync_queue import (
    MAX_FAILED_CALLS_IN_A_ROW,
    SEND_CONCURRENCY,
    SQS_BATCH_LIMIT,
    SyncQueue,
    SyncRequest,
    UnsentRequestsError,
)
from pleo_connector.vocabulary import SyncReason

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.unit

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/sync"


@dataclass
class StubSqs:
    """`send_message_batch` that delivers, refuses or fails by installation id (threads call it
    at once, so it locks)."""

    fail_batches_with: set[str] = field(default_factory=set)  # the whole call raises
    refuse: set[str] = field(default_factory=set)  # refused, sender's fault: not retried
    flaky: set[str] = field(default_factory=set)  # refused once, SQS's fault: retried
    fail_every_call: bool = False
    delivered: list[str] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    calls: int = 0
    on_call: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:
        with self.lock:
            self.calls += 1
            if self.on_call is not None:
                self.on_call(self)
            ids = {
                entry["Id"]: SyncRequest.model_validate_json(entry["MessageBody"])
                for entry in Entries
            }
            names = {request.installation_id for request in ids.values()}
            if self.fail_every_call or names & self.fail_batches_with:
                raise ClientError(
                    {"Error": {"Code": "InternalError", "Message": "try later"}},
                    "SendMessageBatch",
                )
            self.batch_sizes.append(len(Entries))
            failed = []
            for entry_id, request in ids.items():
                name = request.installation_id
                if name in self.refuse:
                    failed.append(
                        {"Id": entry_id, "Code": "InvalidMessageContents", "SenderFault": True}
                    )
                elif name in self.flaky:
                    self.flaky.discard(name)
                    failed.append({"Id": entry_id, "Code": "InternalError", "SenderFault": False})
                else:
                    self.delivered.append(name)
            return {"Successful": [], "Failed": failed}


def requests(count: int) -> Iterator[SyncRequest]:
    for number in range(count):
        yield SyncRequest(installation_id=f"inst-{number:05d}", reason=SyncReason.SCHEDULED)


def queue(stub: StubSqs) -> SyncQueue:
    return SyncQueue(QUEUE_URL, client=cast("Any", stub))


def test_requests_go_out_in_batches_of_ten_each_exactly_once() -> None:
    stub = StubSqs()

    sent = queue(stub).send_many(requests(25))

    assert sent == 25
    assert sorted(stub.batch_sizes) == [5, 10, 10]
    assert sorted(stub.delivered) == [f"inst-{n:05d}" for n in range(25)]


def test_the_stream_is_pulled_only_as_batches_go_out() -> None:
    pulled = 0
    most_outstanding = 0

    def counted() -> Iterator[SyncRequest]:
        nonlocal pulled
        for request in requests(10_000):
            pulled += 1
            yield request

    def on_call(stub: StubSqs) -> None:
        nonlocal most_outstanding
        most_outstanding = max(most_outstanding, pulled - len(stub.delivered))

    stub = StubSqs(on_call=on_call)

    assert queue(stub).send_many(counted()) == 10_000
    # Never more than the batches in flight plus the one being filled: no list of 10,000.
    assert most_outstanding <= SQS_BATCH_LIMIT * (SEND_CONCURRENCY + 1)
    assert len(stub.delivered) == 10_000


def test_a_failed_batch_does_not_stop_the_others_and_is_named_at_the_end() -> None:
    stub = StubSqs(fail_batches_with={"inst-00042"}, refuse={"inst-00013"}, flaky={"inst-00027"})

    with pytest.raises(UnsentRequestsError) as raised:
        queue(stub).send_many(requests(100))

    lost_batch = {f"inst-{n:05d}" for n in range(40, 50)}
    assert set(raised.value.unsent) == lost_batch | {"inst-00013"}
    assert raised.value.sent == 89
    assert not raised.value.abandoned
    # Every other request went out, the flaky one on its second attempt.
    expected = {f"inst-{n:05d}" for n in range(100)} - lost_batch - {"inst-00013"}
    assert sorted(stub.delivered) == sorted(expected)


def test_an_unreachable_queue_stops_the_stream_after_a_few_failed_calls() -> None:
    stub = StubSqs(fail_every_call=True)

    with pytest.raises(UnsentRequestsError) as raised:
        queue(stub).send_many(requests(10_000))

    assert raised.value.abandoned
    assert raised.value.sent == 0
    assert stub.calls <= MAX_FAILED_CALLS_IN_A_ROW + SEND_CONCURRENCY  # not 1,000 calls
