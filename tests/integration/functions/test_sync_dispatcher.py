"""The dispatcher, on DynamoDB Local and moto's SQS: one message per schedulable installation,
a keep-alive for every OAuth grant left idle for two weeks, and the count of installations in
each status printed as a metric."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from pleo_connector.store.credentials import CredentialRepository
from pleo_connector.store.dynamodb import DynamoTable
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import AuthMethod, InstallationStatus, SyncReason
from tests.support.handlers import FakeLambdaContext, load_handler_module
from tests.support.observed_output import read_printed

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local.resources import LocalResources

pytestmark = pytest.mark.integration

DAY_S = 24 * 3600


@pytest.fixture
def dispatcher_env(
    aws_local_env: dict[str, str],
    local_resources: LocalResources,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    env = {
        "TABLE_NAME": local_resources.tables["Table"],
        "KMS_KEY_ID": local_resources.keys["CredentialsKey"],
        "SYNC_QUEUE_URL": local_resources.queue_urls["SyncQueue"],
        "POWERTOOLS_SERVICE_NAME": "pleo-connector-test",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _drain(env["SYNC_QUEUE_URL"])  # the queue is shared by the session's tests
    yield env
    _drain(env["SYNC_QUEUE_URL"])


def _install(table: DynamoTable, status: InstallationStatus) -> str:
    installation_id = str(uuid.uuid4())
    InstallationRepository(table).create_or_update(
        InstallationRecord(
            installation_id=installation_id,
            company_id=str(uuid.uuid4()),
            auth_method=AuthMethod.OAUTH,
            status=status,
        )
    )
    return installation_id


def _grant(table: DynamoTable, installation_id: str, refreshed_at: float) -> None:
    CredentialRepository(table, clock=lambda: refreshed_at).save_oauth(
        installation_id,
        access_token=b"ciphertext-a",
        refresh_token=b"ciphertext-r",
        expires_at=refreshed_at + 3600,
    )


def _drain(queue_url: str) -> list[SyncRequest]:
    sqs = boto3.client("sqs")
    received: list[SyncRequest] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return received
        for message in messages:
            received.append(SyncRequest.model_validate(json.loads(message["Body"])))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_dispatches_schedulable_installations_and_keeps_idle_grants_alive(
    dispatcher_env: dict[str, str],
) -> None:
    # Given: two syncing installations, one awaiting configuration with a grant idle for 20 days
    table = DynamoTable(dispatcher_env["TABLE_NAME"])
    active = [
        _install(table, InstallationStatus.ACTIVATED),
        _install(table, InstallationStatus.PENDING_INTEGRATION),
    ]
    waiting = _install(table, InstallationStatus.AUTHORIZED)
    _grant(table, waiting, refreshed_at=time.time() - 20 * DAY_S)
    fresh = _install(table, InstallationStatus.AUTHORIZED)
    _grant(table, fresh, refreshed_at=time.time() - 1 * DAY_S)
    module: Any = load_handler_module("sync_dispatcher")

    # When
    result = module.handler({"source": "scheduler"}, FakeLambdaContext())

    # Then: the GSI is eventually consistent on DynamoDB, immediate on DynamoDB Local
    messages = _drain(dispatcher_env["SYNC_QUEUE_URL"])
    scheduled = {m.installation_id for m in messages if m.reason == SyncReason.SCHEDULED}
    kept_alive = {m.installation_id for m in messages if m.reason == SyncReason.KEEP_ALIVE}
    assert set(active) <= scheduled
    assert waiting not in scheduled
    assert fresh not in scheduled
    assert waiting in kept_alive
    assert fresh not in kept_alive
    assert result["dispatched"] == len(scheduled)
    assert result["keep_alive"] == len(kept_alive)


def test_a_run_prints_the_installations_of_each_status(
    dispatcher_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given: installations in three statuses (the table is the session's: others may be there),
    # and a schedule of six hours, whose every run is the first of its gauge window
    monkeypatch.setenv("SYNC_RATE_MINUTES", "360")
    table = DynamoTable(dispatcher_env["TABLE_NAME"])
    for status in (
        InstallationStatus.ACTIVATED,
        InstallationStatus.INACTIVE,
        InstallationStatus.INACTIVE,
        InstallationStatus.ERROR,
    ):
        _install(table, status)
    expected = InstallationRepository(table).count_by_status()
    module: Any = load_handler_module("sync_dispatcher")
    capsys.readouterr()

    # When
    module.handler({"source": "scheduler"}, FakeLambdaContext())

    # Then: one point per status that has installations, as the index counts them, with no
    # dimension but the status and the service
    printed = read_printed(capsys.readouterr().out)
    points = {
        dimensions: values
        for (name, dimensions), values in printed.metrics().items()
        if name == "Installations"
    }
    assert points == {
        (("Status", str(status)), ("service", "pleo-connector-test")): [count]
        for status, count in expected.items()
        if count
    }
    assert {"ACTIVATED", "INACTIVE", "ERROR"} <= {dict(d)["Status"] for d in points}
