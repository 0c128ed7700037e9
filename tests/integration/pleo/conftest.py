"""Fixtures for driving the Pleo client against the emulator while recording every exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest

from pleo_connector.pleo.auth import ApiKeyAuth, PleoAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.support.emulator import RunningEmulator


@dataclass
class Exchanges:
    """Every request/response pair the client made, with bodies read, in order."""

    responses: list[httpx.Response] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def record(self, response: httpx.Response) -> None:
        await response.aread()
        self.responses.append(response)

    def http(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(event_hooks={"response": [self.record]}, timeout=10)
        self.clients.append(client)
        return client


@pytest.fixture
async def exchanges() -> AsyncIterator[Exchanges]:
    recorded = Exchanges()
    yield recorded
    for client in recorded.clients:
        await client.aclose()


@pytest.fixture
def api_key(emulator: RunningEmulator) -> str:
    return emulator.control.issue_api_key()


@pytest.fixture
async def pleo(
    emulator: RunningEmulator, api_key: str, exchanges: Exchanges
) -> AsyncIterator[PleoClient]:
    """The client with the emulator's default company's API key, recording its exchanges."""
    async with client_for(emulator, ApiKeyAuth(api_key), exchanges) as client:
        yield client


def client_for(emulator: RunningEmulator, auth: PleoAuth, exchanges: Exchanges) -> PleoClient:
    return PleoClient(
        emulator.url,
        auth,
        http=exchanges.http(),
        retry=RetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=0.2),
    )
