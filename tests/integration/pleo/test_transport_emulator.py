"""The transport against the emulator's injected faults: retries, Retry-After and the deadline
over a real loopback connection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.errors import DeadlineExceededError, NotFoundError
from pleo_connector.pleo.retry import Deadline, RetryPolicy
from tests.integration.pleo.conftest import Exchanges, client_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.support.emulator import RunningEmulator

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

OPERATION = "GET /v1/introspect"


@pytest.fixture
async def fast_retry_client(
    emulator: RunningEmulator, api_key: str, exchanges: Exchanges
) -> AsyncIterator[PleoClient]:
    async with PleoClient(
        emulator.url,
        ApiKeyAuth(api_key),
        http=exchanges.http(),
        retry=RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05),
    ) as client:
        yield client


async def test_server_errors_are_retried(
    emulator: RunningEmulator, fast_retry_client: PleoClient
) -> None:
    emulator.control.inject_fault("error", status=503, count=2, operation=OPERATION)

    introspection = await fast_retry_client.introspect()

    assert introspection.auth_method == "API_KEY"
    assert emulator.control.counters()[OPERATION] == 3


async def test_rate_limit_with_retry_after_is_waited_out(
    emulator: RunningEmulator, api_key: str, exchanges: Exchanges
) -> None:
    emulator.control.inject_fault("error", status=429, retry_after=1, count=1, operation=OPERATION)
    waits: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    async with PleoClient(
        emulator.url,
        ApiKeyAuth(api_key),
        http=exchanges.http(),
        retry=RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05),
        sleep=recording_sleep,
    ) as pleo:
        await pleo.introspect()

    assert emulator.control.counters()[OPERATION] == 2
    assert waits == [1.0]  # the emulator's Retry-After, not the 10 ms backoff


async def test_retry_after_beyond_the_deadline_is_not_waited(
    emulator: RunningEmulator, fast_retry_client: PleoClient
) -> None:
    emulator.control.inject_fault("error", status=429, retry_after=30, count=1, operation=OPERATION)
    fast_retry_client.deadline = Deadline.after(5)

    with pytest.raises(DeadlineExceededError):
        await fast_retry_client.introspect()

    assert emulator.control.counters()[OPERATION] == 1


async def test_errors_carry_the_status_type(
    emulator: RunningEmulator, api_key: str, exchanges: Exchanges
) -> None:
    async with client_for(emulator, ApiKeyAuth(api_key), exchanges) as pleo:
        with pytest.raises(NotFoundError):
            await pleo.installations.get()  # no installation created yet
