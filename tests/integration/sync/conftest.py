"""The applier against the Pleo emulator: a client with the default company's API key and fast
retries, and an in-memory ownership store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import httpx
import pytest

from local.services import LOCAL_REGION, Service
from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.retry import RetryPolicy
from pleo_connector.store.dynamodb import DynamoTable
from tests.integration.sync.support import MemoryOwnership

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from local.resources import LocalResources
    from tests.support.emulator import RunningEmulator

# Long enough for a batch of 1,000 on a busy machine: a lost answer comes from a fault that
# closes the connection.
READ_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


@pytest.fixture
async def pleo(emulator: RunningEmulator) -> AsyncIterator[PleoClient]:
    api_key = emulator.control.issue_api_key()
    async with PleoClient(
        emulator.url,
        ApiKeyAuth(api_key),
        retry=RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05),
        timeout=READ_TIMEOUT,
    ) as client:
        yield client


@pytest.fixture
def ownership() -> MemoryOwnership:
    return MemoryOwnership()


@pytest.fixture
def ownership_table(dynamodb_local: Service, local_resources: LocalResources) -> DynamoTable:
    """The app's table on DynamoDB Local, for ownership that must outlive the run."""
    client = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=LOCAL_REGION
    ).client("dynamodb", endpoint_url=dynamodb_local.url)
    return DynamoTable(local_resources.tables["Table"], client=client)
