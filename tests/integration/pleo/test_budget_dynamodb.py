"""The shared request budget on the real DynamoDB engine (DynamoDB Local): workers share one
bucket item, never spend the same token twice, and a 429 seen by one slows them all."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from local.resources import LocalResources
from local.services import LOCAL_REGION, Service
from pleo_connector.pleo.errors import DeadlineExceededError
from pleo_connector.pleo.ratelimit import DynamoDBTokenBucket
from pleo_connector.pleo.retry import Deadline

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@dataclass
class FakeClock:
    """Wall-clock stand-in that moves only when a worker sleeps."""

    now: float = 1_800_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def dynamodb_client(service: Service) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=service.url,
        region_name=LOCAL_REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@pytest.fixture
def workers(
    dynamodb_local: Service, local_resources: LocalResources
) -> tuple[FakeClock, list[DynamoDBTokenBucket], str]:
    """Two workers (each with its own DynamoDB client) drawing from one fresh bucket."""
    clock = FakeClock()
    name = f"test-{uuid.uuid4().hex[:8]}"
    table = local_resources.tables["Table"]
    buckets = [
        DynamoDBTokenBucket(
            table,
            name,
            rate_per_min=60,
            burst=3,
            recovery_s=60,
            client=dynamodb_client(dynamodb_local),
            clock=clock,
            sleep=clock.sleep,
        )
        for _ in range(2)
    ]
    return clock, buckets, name


async def test_workers_share_one_bucket(
    workers: tuple[FakeClock, list[DynamoDBTokenBucket], str],
) -> None:
    clock, (first, second), _ = workers

    await first.acquire()
    await second.acquire()
    await first.acquire()
    assert clock.sleeps == []  # the burst of 3, spent by both workers together

    await second.acquire()
    assert clock.sleeps == [1.0]  # the 4th token waits for the refill, 60/min


async def test_bucket_is_one_item_in_the_table(
    workers: tuple[FakeClock, list[DynamoDBTokenBucket], str],
    dynamodb_local: Service,
    local_resources: LocalResources,
) -> None:
    _, (first, _second), name = workers

    await first.acquire()

    item = dynamodb_client(dynamodb_local).get_item(
        TableName=local_resources.tables["Table"],
        Key={"pk": {"S": f"BUDGET#{name}"}, "sk": {"S": "BUDGET"}},
    )["Item"]
    assert float(item["tokens"]["N"]) == 2.0
    assert item["version"]["N"] == "1"


async def test_concurrent_workers_never_spend_a_token_twice(
    workers: tuple[FakeClock, list[DynamoDBTokenBucket], str],
) -> None:
    clock, buckets, _ = workers
    deadline = Deadline.after(0.5, clock)  # too short to wait for any refill

    async def take(bucket: DynamoDBTokenBucket) -> bool:
        try:
            await bucket.acquire(deadline)
        except DeadlineExceededError:
            return False
        return True

    results = await asyncio.gather(*(take(buckets[n % 2]) for n in range(12)))

    assert sum(results) == 3  # exactly the burst, however the conditional writes interleaved


async def test_a_429_seen_by_one_worker_slows_the_other(
    workers: tuple[FakeClock, list[DynamoDBTokenBucket], str],
) -> None:
    clock, (first, second), _ = workers
    await first.acquire()

    await first.on_rate_limited()
    await second.acquire()

    assert clock.sleeps == [2.0]  # no burst left and the rate halved to 30/min


async def test_the_wait_respects_the_deadline(
    workers: tuple[FakeClock, list[DynamoDBTokenBucket], str],
) -> None:
    clock, (first, _second), _ = workers
    for _ in range(3):
        await first.acquire()

    with pytest.raises(DeadlineExceededError):
        await first.acquire(Deadline.after(0.5, clock))

    assert clock.sleeps == []
