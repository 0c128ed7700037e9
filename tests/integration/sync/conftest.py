"""The applier against the Pleo emulator: a client with the default company's API key and fast
retries, and an in-memory ownership store; and, for the runs of the real worker, an installation
whose settings name a source (`install_world`)."""

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
from tests.integration.sync.engine_world import (
    EngineWorld,
    InstallWorld,
    install,
    install_gnucash,
    worker_env,
)
from tests.integration.sync.support import MemoryOwnership

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

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


@pytest.fixture
def install_world(
    aws_local_env: dict[str, str],
    dynamodb_local: Service,
    local_resources: LocalResources,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> InstallWorld:
    """Installs a source: an activated API-key installation of a new company whose settings
    name it (a JSON snapshot, or with `adapter="gnucash"` a book), for the real worker (its
    environment set for the test)."""

    def install_source(source: Path, adapter: str = "json") -> EngineWorld:
        env = worker_env(
            aws_local_env,
            table_name=local_resources.tables["Table"],
            kms_key_id=local_resources.keys["CredentialsKey"],
            queue_url=local_resources.queue_urls["SyncQueue"],
            emulator_url=emulator.url,
        )
        env["ADAPTER"] = adapter
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        client = boto3.session.Session(region_name=LOCAL_REGION).client(
            "dynamodb", endpoint_url=dynamodb_local.url
        )
        table = DynamoTable(local_resources.tables["Table"], client=client)
        company_id = str(emulator.control.seed_company()["id"])
        api_key = emulator.control.issue_api_key(company_id)
        installer = install_gnucash if adapter == "gnucash" else install
        return installer(env, table, company_id, api_key, source)

    return install_source
