"""The shared request budget on the real DynamoDB engine (DynamoDB Local): workers reserve blocks
of one shared schedule with one write each, never spend a slot twice, stay under the documented
bound together, and a 429 seen by one slows them all.

Time is fake: `FakeClock` for one worker at a time, `VirtualTime` for workers running at once.
DynamoDB calls are counted on each worker's own client, so the counts are exact.
"""

from __future__ import annotations

import asyncio
import uuid
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.services import LOCAL_REGION, Service
from pleo_connector.pleo.errors import DeadlineExceededError
from pleo_connector.pleo.ratelimit import DynamoDBTokenBucket, Sleep
from pleo_connector.pleo.retry import Clock, Deadline
from tests.support.virtual_time import VirtualTime

if TYPE_CHECKING:
    from local.resources import LocalResources

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

START = 1_800_000_000.0


@dataclass
class FakeClock:
    """Wall-clock stand-in that moves only when a worker sleeps (one worker at a time)."""

    now: float = START
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@dataclass
class Calls:
    """DynamoDB API calls made through the clients it is registered on."""

    count: int = 0

    def __call__(self, **_: Any) -> None:
        self.count += 1


def dynamodb_client(service: Service, calls: Calls | None = None) -> Any:
    client = boto3.client(
        "dynamodb",
        endpoint_url=service.url,
        region_name=LOCAL_REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    if calls is not None:
        client.meta.events.register("before-call.dynamodb", calls)
    return client


@dataclass
class Budgets:
    """Builds workers (each its own bucket and client) on one fresh bucket item."""

    dynamodb: Service
    table: str
    calls: Calls = field(default_factory=Calls)
    name: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")

    def worker(
        self, clock: Clock, sleep: Sleep, rate_per_min: float = 60, **options: Any
    ) -> DynamoDBTokenBucket:
        options.setdefault("burst", 3)
        options.setdefault("recovery_s", 60)
        return DynamoDBTokenBucket(
            self.table,
            self.name,
            rate_per_min=rate_per_min,
            client=dynamodb_client(self.dynamodb, self.calls),
            clock=clock,
            sleep=sleep,
            **options,
        )

    def item(self) -> dict[str, Any]:
        answer = dynamodb_client(self.dynamodb).get_item(
            TableName=self.table,
            Key={"pk": {"S": f"BUDGET#{self.name}"}, "sk": {"S": "BUDGET"}},
        )
        item: dict[str, Any] = answer["Item"]
        return item


@pytest.fixture
def budgets(dynamodb_local: Service, local_resources: LocalResources) -> Budgets:
    return Budgets(dynamodb_local, local_resources.tables["Table"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def two(budgets: Budgets, clock: FakeClock) -> tuple[DynamoDBTokenBucket, DynamoDBTokenBucket]:
    """Two workers at 60/min, burst 3, blocks of 4 s (4 tokens), on the fake clock."""
    return budgets.worker(clock, clock.sleep), budgets.worker(clock, clock.sleep)


# --- blocks --------------------------------------------------------------------------------------


async def test_blocks_grow_from_the_burst_to_block_s_of_the_rate_one_write_each(
    budgets: Budgets, clock: FakeClock
) -> None:
    worker = budgets.worker(clock, clock.sleep, rate_per_min=600, burst=10)  # at most 40

    for _ in range(70):  # blocks of 10 (the burst), 20 and 40
        await worker.acquire()

    assert budgets.calls.count == 3
    # The burst at once, then one token per interval, as if each came from the shared bucket.
    assert clock.sleeps == [0.1] * 60
    item = budgets.item()
    assert float(item["full_at"]["N"]) == START + 7.0  # 70 slots of 0.1 s reserved
    assert item["version"]["N"] == "3"


async def test_a_busy_worker_pays_one_call_per_block_of_block_s_at_the_rate(
    budgets: Budgets, clock: FakeClock
) -> None:
    worker = budgets.worker(clock, clock.sleep, rate_per_min=500, burst=10)

    for _ in range(10 + 20 + 9 * 33):
        await worker.acquire()

    assert worker.block_size(500) == 33  # 4 s of 500/min
    assert budgets.calls.count == 11  # 11 blocks: no read, no lost condition


async def test_workers_share_one_schedule(budgets: Budgets, clock: FakeClock) -> None:
    first, second = two(budgets, clock)

    await first.acquire()  # reserves the burst: 3 slots, all due at once
    await second.acquire()

    # The second worker's slots come after the first's block, one a second at 60/min.
    assert clock.sleeps == [1.0]
    await first.acquire()
    await first.acquire()
    assert clock.sleeps == [1.0]  # the first worker's own slots, already due, need no call
    # One write each, and one lost condition: the second worker, with no answer seen yet,
    # guessed an idle bucket.
    assert budgets.calls.count == 3


async def test_concurrent_workers_never_spend_a_slot_twice(
    budgets: Budgets, clock: FakeClock
) -> None:
    buckets = two(budgets, clock)
    deadline = Deadline.after(0.5, clock)  # too short to wait for any refill

    async def take(bucket: DynamoDBTokenBucket) -> bool:
        try:
            await bucket.acquire(deadline)
        except DeadlineExceededError:
            return False
        return True

    results = await asyncio.gather(*(take(buckets[n % 2]) for n in range(12)))

    assert sum(results) == 3  # exactly the burst, however the writes interleaved


async def test_slots_not_spent_within_the_hold_are_dropped(
    budgets: Budgets, clock: FakeClock
) -> None:
    worker = budgets.worker(clock, clock.sleep, hold_s=2)
    await worker.acquire()  # a block of 3 (the burst); 2 of its slots are left
    clock.now += 10  # the worker does something else for a while

    for _ in range(4):
        await worker.acquire()

    # Only the bucket's burst of 3 is at hand now, not 3 more left over from the old block.
    assert clock.sleeps == [1.0]


async def test_a_worker_that_let_slots_expire_reserves_only_what_it_spent(
    budgets: Budgets, clock: FakeClock
) -> None:
    worker = budgets.worker(clock, clock.sleep, hold_s=2)
    await worker.acquire()  # a block of 3 slots (3 s), one spent
    clock.now += 10

    await worker.acquire()

    # The shared schedule is moved on by one slot (1 s at 60/min), not by another 3.
    assert float(budgets.item()["full_at"]["N"]) == START + 10 + 1.0


async def test_the_wait_respects_the_deadline(budgets: Budgets, clock: FakeClock) -> None:
    first, _second = two(budgets, clock)
    for _ in range(3):
        await first.acquire()

    with pytest.raises(DeadlineExceededError):
        await first.acquire(Deadline.after(0.5, clock))

    assert clock.sleeps == []


async def test_a_block_is_not_reserved_when_its_first_slot_is_past_the_deadline(
    budgets: Budgets, clock: FakeClock
) -> None:
    first, second = two(budgets, clock)
    await first.acquire()
    await second.acquire()  # the schedule now runs 6 s ahead
    calls = budgets.calls.count
    third = budgets.worker(clock, clock.sleep)
    third._view = second._view  # it has seen the item (as after any earlier block)

    with pytest.raises(DeadlineExceededError):
        await third.acquire(Deadline.after(1.0, clock))

    assert budgets.calls.count == calls  # nothing reserved that could not be spent in time


# --- 429 -----------------------------------------------------------------------------------------


async def test_a_429_seen_by_one_worker_slows_the_other(budgets: Budgets, clock: FakeClock) -> None:
    first, second = two(budgets, clock)
    await first.acquire()

    await first.on_rate_limited()
    await second.acquire()

    assert clock.sleeps == [2.0]  # no burst left and the rate halved to 30/min
    assert float(budgets.item()["lowered_rate"]["N"]) == 30


async def test_a_429_drops_the_workers_own_block(budgets: Budgets, clock: FakeClock) -> None:
    worker = budgets.worker(clock, clock.sleep)
    await worker.acquire()  # 2 more slots of its block (the burst) are due already

    await worker.on_rate_limited()
    await worker.acquire()

    assert clock.sleeps == [2.0]  # a new block at 30/min, after the emptied bucket
    assert budgets.calls.count == 3  # reserve, lower, reserve


async def test_a_block_reserved_before_a_429_elsewhere_is_repriced_at_the_next_one(
    budgets: Budgets, clock: FakeClock
) -> None:
    first, second = (budgets.worker(clock, clock.sleep, recovery_s=3600) for _ in range(2))
    await first.acquire()
    await second.acquire()  # reserved at 60/min, not knowing what comes
    await first.on_rate_limited()
    calls = budgets.calls.count

    for _ in range(8):
        await second.acquire()

    # Its next blocks are priced at 30/min, 2 s a slot (at 60/min they would come 1 s apart):
    # the lowered rate reached it with its next write, at the cost of one lost condition.
    assert second.current_rate_per_min == pytest.approx(30, abs=0.1)
    assert clock.sleeps[-4:] == pytest.approx([2.0] * 4, abs=0.01)
    # 8 tokens: the 2 left of its block, then 3 blocks of 2 (the most at 30/min).
    assert budgets.calls.count - calls == 1 + 3


# --- many workers at once, on virtual time -------------------------------------------------------


@dataclass
class Spends:
    """The virtual moments at which the workers' requests went out."""

    times: list[float] = field(default_factory=list)

    def most_in_any(self, window_s: float) -> int:
        ordered = sorted(self.times)
        return max(
            (bisect_left(ordered, start + window_s) - index for index, start in enumerate(ordered)),
            default=0,
        )


async def requester(
    budget: DynamoDBTokenBucket,
    time: VirtualTime,
    spends: Spends,
    left: list[int],
    latency_s: float,
) -> None:
    """One of a worker's concurrent request loops: acquire, send (latency_s), until `left` is 0."""
    while left[0] > 0:
        left[0] -= 1
        await budget.acquire()
        spends.times.append(time())
        await time.sleep(latency_s)


async def test_four_busy_workers_stay_under_the_bound_and_pay_under_005_calls_per_request(
    budgets: Budgets,
) -> None:
    time = VirtualTime(START)
    spends = Spends()
    workers = [budgets.worker(time, time.sleep, rate_per_min=500, burst=10) for _ in range(4)]
    loops = []
    for worker in workers:
        left = [250]
        loops += [requester(worker, time, spends, left, latency_s=0.3) for _ in range(3)]

    await time.run(*loops)

    assert len(spends.times) == 1000
    assert spends.most_in_any(60) <= workers[0].max_requests_in(60)  # 528 at 500/min
    assert budgets.calls.count <= 0.05 * 1000
    # The budget is used, not only respected: 1000 requests at 500/min take about 2 minutes.
    duration = max(spends.times) - min(spends.times)
    assert 1000 / duration * 60 >= 0.95 * 500


patterns = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.5, 1.0, 2.5, 7.0]),  # a pause before the burst
            st.integers(min_value=1, max_value=25),  # requests in the burst
            st.booleans(),  # whether the burst ends with a 429
        ),
        min_size=1,
        max_size=5,
    ),
    min_size=2,
    max_size=4,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(patterns=patterns)
async def test_no_pattern_of_workers_exceeds_the_bound(
    dynamodb_local: Service, local_resources: LocalResources, patterns: list[Any]
) -> None:
    budgets = Budgets(dynamodb_local, local_resources.tables["Table"])
    time = VirtualTime(START)
    spends = Spends()

    async def work(budget: DynamoDBTokenBucket, steps: list[tuple[float, int, bool]]) -> None:
        for pause, requests, rate_limited in steps:
            await time.sleep(pause)
            for _ in range(requests):
                await budget.acquire()
                spends.times.append(time())
                await time.sleep(0.0)
            if rate_limited:
                await budget.on_rate_limited()

    workers = [
        budgets.worker(time, time.sleep, rate_per_min=120, burst=5, block_s=4, hold_s=1)
        for _ in patterns
    ]
    await time.run(*(work(worker, steps) for worker, steps in zip(workers, patterns, strict=True)))

    for window_s in (1.0, 5.0, 60.0):
        assert spends.most_in_any(window_s) <= workers[0].max_requests_in(window_s)
