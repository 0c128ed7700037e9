"""A create that Pleo committed but whose answer was lost is never sent twice: the emulator keeps
the request's effect and fails its answer (`commit` faults), over a real loopback connection."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from local.services import free_port
from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.errors import (
    APIConnectionError,
    APITimeoutError,
    InternalServerError,
    OutcomeUnknownError,
)
from pleo_connector.pleo.retry import RetryPolicy
from tests.support.emulator import DEFAULT_COMPANY_ID, RunningEmulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.integration.pleo.conftest import Exchanges

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CREATE = "POST /v1/vendors"
GET = "GET /v1/vendors/{id}"
# Short enough to give up on a hanging answer quickly; the hang itself is far longer.
READ_TIMEOUT = httpx.Timeout(0.5, connect=5.0)
HANG_MS = 5_000


@pytest.fixture
async def pleo(
    emulator: RunningEmulator, api_key: str, exchanges: Exchanges
) -> AsyncIterator[PleoClient]:
    async with PleoClient(
        emulator.url,
        ApiKeyAuth(api_key),
        http=exchanges.http(),
        retry=RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05),
        timeout=READ_TIMEOUT,
    ) as client:
        yield client


async def create_vendor(pleo: PleoClient) -> Any:
    # No code or externalId: a second POST would make a second vendor, not a 409.
    return await pleo.vendors.create(DEFAULT_COMPANY_ID, name="Paper Co", default_currency="DKK")


def vendors(emulator: RunningEmulator) -> list[dict[str, Any]]:
    return emulator.control.data(DEFAULT_COMPANY_ID)["vendors"]


def logged(emulator: RunningEmulator, operation: str) -> list[Any]:
    return [entry["fault"] for entry in emulator.control.request_log(operation)]


async def committed(emulator: RunningEmulator, operation: str) -> None:
    """Wait until the emulator has handled the request whose answer it holds back (a wait for
    the server's side of the exchange, not a timing assertion)."""
    give_up = time.monotonic() + 10
    while "timeout-after-commit" not in logged(emulator, operation):
        assert time.monotonic() < give_up, "the emulator never handled the request"
        await asyncio.sleep(0.05)


async def test_a_create_that_times_out_after_pleo_committed_it_is_not_sent_again(
    emulator: RunningEmulator, pleo: PleoClient
) -> None:
    emulator.control.inject_fault(
        "timeout", commit=True, hang_ms=HANG_MS, count=1, operation=CREATE
    )

    with pytest.raises(OutcomeUnknownError) as caught:
        await create_vendor(pleo)

    await committed(emulator, CREATE)
    assert isinstance(caught.value.cause, APITimeoutError)
    assert caught.value.operation == "postVendor"
    assert [vendor["name"] for vendor in vendors(emulator)] == ["Paper Co"]
    assert logged(emulator, CREATE) == ["timeout-after-commit"]


async def test_a_create_answered_502_after_pleo_committed_it_is_not_sent_again(
    emulator: RunningEmulator, pleo: PleoClient
) -> None:
    emulator.control.inject_fault("error", status=502, commit=True, count=1, operation=CREATE)

    with pytest.raises(OutcomeUnknownError) as caught:
        await create_vendor(pleo)

    assert isinstance(caught.value.cause, InternalServerError)
    assert caught.value.status_code == 502
    assert len(vendors(emulator)) == 1
    assert logged(emulator, CREATE) == ["error-after-commit"]


async def test_a_create_answered_503_without_retry_after_is_not_sent_again(
    emulator: RunningEmulator, pleo: PleoClient
) -> None:
    emulator.control.inject_fault("error", status=503, count=1, operation=CREATE)

    with pytest.raises(OutcomeUnknownError):
        await create_vendor(pleo)

    # Here Pleo did not create it, but nothing in a bare 503 says so: the caller re-reads.
    assert vendors(emulator) == []
    assert logged(emulator, CREATE) == ["error"]


async def test_a_read_under_the_same_fault_is_retried_and_succeeds(
    emulator: RunningEmulator, pleo: PleoClient
) -> None:
    [vendor_id] = emulator.control.seed(vendors=[{"name": "Paper Co", "code": "V1"}])["vendors"]
    emulator.control.inject_fault("timeout", commit=True, hang_ms=HANG_MS, count=1, operation=GET)

    vendor = await pleo.vendors.get(vendor_id)

    assert vendor.code == "V1"
    assert logged(emulator, GET) == ["timeout-after-commit", None]


@pytest.mark.parametrize(("status", "retry_after"), [(429, None), (429, 0), (503, 0), (408, None)])
async def test_a_create_refused_before_processing_is_retried_and_creates_one(
    emulator: RunningEmulator, pleo: PleoClient, status: int, retry_after: int | None
) -> None:
    emulator.control.inject_fault(
        "error", status=status, retry_after=retry_after, count=1, operation=CREATE
    )

    vendor = await create_vendor(pleo)

    assert [record["id"] for record in vendors(emulator)] == [vendor.id]
    assert logged(emulator, CREATE) == ["error", None]


async def test_a_create_is_retried_when_the_connection_is_refused(api_key: str) -> None:
    attempts: list[httpx.Request] = []
    waits: list[float] = []

    async def count(request: httpx.Request) -> None:
        attempts.append(request)

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    nothing_listens = f"http://127.0.0.1:{free_port()}"
    async with (
        httpx.AsyncClient(event_hooks={"request": [count]}) as http,
        PleoClient(
            nothing_listens,
            ApiKeyAuth(api_key),
            http=http,
            retry=RetryPolicy(max_attempts=3),
            sleep=no_wait,
        ) as pleo,
    ):
        with pytest.raises(APIConnectionError):  # not OutcomeUnknownError: Pleo never saw it
            await create_vendor(pleo)

    assert [request.method for request in attempts] == ["POST"] * 3
    assert len(waits) == 2
