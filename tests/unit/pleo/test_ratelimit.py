"""The in-process request budget, on a fake clock: it waits, honours the deadline, and slows
down after a 429."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from pleo_connector.pleo.errors import DeadlineExceededError
from pleo_connector.pleo.ratelimit import InProcessTokenBucket
from tests.unit.pleo.conftest import FakeClock, PinnedJitter, Recorder, installation_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from pleo_connector.pleo.client import PleoClient

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


def bucket(clock: FakeClock, rate_per_min: float = 60, burst: float = 2) -> InProcessTokenBucket:
    return InProcessTokenBucket(
        rate_per_min, burst=burst, recovery_s=60, clock=clock, sleep=clock.sleep
    )


async def test_burst_passes_then_requests_wait_for_the_rate(clock: FakeClock) -> None:
    budget = bucket(clock, rate_per_min=60, burst=2)

    for _ in range(4):
        await budget.acquire()

    assert clock.sleeps == [1.0, 1.0]  # two free, then one per second


async def test_bucket_refills_while_idle(clock: FakeClock) -> None:
    budget = bucket(clock, rate_per_min=60, burst=2)
    await budget.acquire()
    await budget.acquire()

    clock.now += 5
    await budget.acquire()
    await budget.acquire()

    assert clock.sleeps == []


async def test_budget_refuses_a_wait_past_the_deadline(clock: FakeClock) -> None:
    budget = bucket(clock, rate_per_min=6, burst=1)  # one token every 10 s
    await budget.acquire()

    with pytest.raises(DeadlineExceededError):
        await budget.acquire(clock.deadline_in(5))

    assert clock.sleeps == []
    await budget.acquire(clock.deadline_in(11))  # the refused wait did not spend a token
    assert clock.sleeps == [10.0]


async def test_rate_limited_halves_the_rate_and_empties_the_bucket(clock: FakeClock) -> None:
    budget = bucket(clock, rate_per_min=60, burst=2)

    await budget.on_rate_limited()
    assert budget.current_rate_per_min == 30
    await budget.acquire()

    assert clock.sleeps == [2.0]  # no burst left, and a token now takes 2 s


async def test_lowered_rate_recovers_over_time(clock: FakeClock) -> None:
    budget = bucket(clock, rate_per_min=60, burst=2)
    await budget.on_rate_limited()

    clock.now += 30
    halfway = budget.current_rate_per_min
    clock.now += 30

    assert halfway == 45
    assert budget.current_rate_per_min == 60


async def test_transport_draws_from_the_budget(
    make_client: Callable[..., PleoClient], clock: FakeClock
) -> None:
    recorder = Recorder(handler=lambda request: httpx.Response(200, json=installation_json()))
    budget = bucket(clock, rate_per_min=60, burst=1)

    async with make_client(recorder, budget=budget) as pleo:
        for _ in range(3):
            await pleo.installations.get()

    assert clock.sleeps == [1.0, 1.0]
    assert len(recorder.requests) == 3


async def test_a_429_lowers_the_budget_of_the_transport(
    make_client: Callable[..., PleoClient], clock: FakeClock
) -> None:
    recorder = Recorder(
        [
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(200, json=installation_json()),
        ]
    )
    budget = bucket(clock, rate_per_min=60, burst=5)

    async with make_client(recorder, budget=budget, retry=PinnedJitter(max_attempts=2)) as pleo:
        await pleo.installations.get()

    assert budget.current_rate_per_min < 60
    assert clock.sleeps[-1] == 2.0  # the retry waited for a token at the halved rate


def test_make_budget_shares_one_bucket_per_process_unless_a_table_is_given() -> None:
    from pleo_connector.pleo.ratelimit import DynamoDBTokenBucket, make_budget

    shared = make_budget(123)
    dynamodb = make_budget(123, table_name="app-table", name="pleo")

    assert make_budget(123) is shared
    assert isinstance(shared, InProcessTokenBucket)
    assert isinstance(dynamodb, DynamoDBTokenBucket)
    assert dynamodb.key == {"pk": {"S": "BUDGET#pleo"}, "sk": {"S": "BUDGET"}}
