"""A whole engine run (`sync.engine`) as the worker builds it (`composition.roots.build_worker`), on
DynamoDB Local, moto and the Pleo emulator, with the JSON snapshot adapter: a sync with nothing to
change costs Pleo its list and search pages and one installation read, with no write (and its
record counts them), and costs DynamoDB at most 6 writes (lease taken and released, the run's
record, the shared budget's block).
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pleo_connector.adapters.json_snapshot import JsonSnapshotSettings
from pleo_connector.aws import aws_client, forget_clients
from pleo_connector.composition.roots import build_worker
from pleo_connector.config import WorkerFunctionSettings, _cached, load_settings
from pleo_connector.installation_config import seal_connection
from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.store.installations import InstallationRecord
from pleo_connector.sync.engine import SyncDeps, sync_installation
from pleo_connector.sync.pleo_state import PAGE_SIZE
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import AuthMethod, InstallationStatus, SyncOutcome, SyncReason
from tests.support.snapshots import generated, pleo_view, snapshot_view

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from local.resources import LocalResources
    from tests.support.emulator import EmulatorControl, RunningEmulator

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

# Every DynamoDB operation that writes.
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
MAX_NO_OP_WRITES = 6
# 200 tags fill exactly two pages (a full last page must not cost a third), 101 vendors spill
# one record onto a second page, and every other count needs one page.
TAGS = {"DEPT": 150, "PROJ": 50}
SNAPSHOT = generated(TAGS, tax_codes=3, vendors=101, accounts=120)


@pytest.fixture
def worker_deps(
    aws_local_env: dict[str, str],
    local_resources: LocalResources,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SyncDeps]:
    """The worker's collaborators, from the environment the template gives it."""
    env = {
        "TABLE_NAME": local_resources.tables["Table"],
        "KMS_KEY_ID": local_resources.keys["CredentialsKey"],
        "SYNC_QUEUE_URL": local_resources.queue_urls["SyncQueue"],
        "PLEO_AUTH_URL": emulator.url,
        "PLEO_API_URL": emulator.url,
        "PLEO_CLIENT_ID": "local-client",
        "PLEO_CLIENT_SECRET_ID": local_resources.secrets["PleoClientSecret"],
        "ADAPTER": "json",
        "ALLOW_LOCAL_SOURCES": "true",
        # The first sync's ~300 writes in seconds, not at the template's 500 a minute.
        "PLEO_RATE_BUDGET_PER_MIN": "12000",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _cached.cache_clear()  # the adapter reads its source policy from the environment once
    forget_clients()
    yield build_worker(load_settings(WorkerFunctionSettings, {**aws_local_env, **env}))
    _cached.cache_clear()
    forget_clients()


async def _installed(deps: SyncDeps, control: EmulatorControl, source: Path) -> InstallationRecord:
    """An API-key installation, ACTIVATED in Pleo and here, with the snapshot and every kind and
    tag group chosen, as the settings page saves them."""
    company_id = str(control.seed_company(f"Company {uuid.uuid4().hex[:8]} A/S")["id"])
    api_key = control.issue_api_key(company_id)
    async with PleoClient(control.base_url, ApiKeyAuth(api_key)) as pleo:
        installation = await pleo.installations.create(status=InstallationStatus.ACTIVATED)
    deps.tokens.save_api_key(installation.id, api_key)
    settings = JsonSnapshotSettings.model_validate({"source": str(source)})
    return deps.installations.create_or_update(
        InstallationRecord(
            installation_id=installation.id,
            company_id=company_id,
            auth_method=AuthMethod.API_KEY,
            status=InstallationStatus.ACTIVATED,
            config={"connection": seal_connection(deps.cipher, installation.id, "json", settings)},
            sync_choices={
                "tag_groups": sorted(TAGS),
                "tax_codes": True,
                "vendors": True,
                "accounts": True,
            },
        )
    )


class DynamoCalls:
    """Counts the operations the process's DynamoDB client makes (every repository of the run
    and the shared budget use it), by botocore's before-call event."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    @property
    def writes(self) -> dict[str, int]:
        return {name: count for name, count in self.calls.items() if name in WRITES}


def _pages(count: int) -> int:
    """Pages of a list or search that holds `count` records: an empty one still costs one."""
    return max(1, math.ceil(count / PAGE_SIZE))


async def test_a_sync_with_nothing_to_change_reads_only_the_pages_and_writes_at_most_six_items(
    worker_deps: SyncDeps, emulator: RunningEmulator, tmp_path: Path
) -> None:
    control = emulator.control
    source = tmp_path / "snapshot.json"
    source.write_text(json.dumps(SNAPSHOT), encoding="utf-8")
    record = await _installed(worker_deps, control, source)
    request = SyncRequest(installation_id=record.installation_id, reason=SyncReason.SCHEDULED)
    first = await sync_installation(worker_deps, record, request)
    assert first is SyncOutcome.SYNCED
    assert pleo_view(control.data(record.company_id)) == snapshot_view(SNAPSHOT, TAGS)
    control.clear_request_log()
    counted = DynamoCalls()
    events = aws_client("dynamodb").meta.events
    events.register("before-call.dynamodb", counted)
    try:
        again = worker_deps.installations.get(record.installation_id)
        assert again is not None
        second = await sync_installation(worker_deps, again, request)
    finally:
        events.unregister("before-call.dynamodb", counted)

    assert second is SyncOutcome.SYNCED
    reads = {
        "GET /v1/installations/me": 1,
        "GET /v0/tag-groups": 1,  # one unpaginated list, archived groups included
        "POST /v0/tags:search": _pages(sum(TAGS.values())),
        "POST /v0/tax-codes:search": _pages(len(SNAPSHOT["taxCodes"])),
        "POST /v1/vendors:search": _pages(len(SNAPSHOT["vendors"])),
        "POST /v1/chart-of-accounts:search": _pages(len(SNAPSHOT["accounts"])),
    }
    assert control.counters() == reads, control.counters()
    assert sum(reads.values()) == 2 + 2 + 1 + 2 + 2  # the same sum, from the counts by hand
    # The run's record (and its PleoRequests metric) counts every request it sent, reads too.
    last = worker_deps.runs.last_run(record.installation_id)
    assert last is not None
    assert (last.requests, last.rate_limited) == (sum(reads.values()), 0)
    assert sum(counted.writes.values()) <= MAX_NO_OP_WRITES, counted.calls
    assert counted.writes, "the counter saw none of the run's writes (the lease's, at least)"
    assert pleo_view(control.data(record.company_id)) == snapshot_view(SNAPSHOT, TAGS)


async def test_an_unchanged_source_costs_no_pleo_request_one_decrypt_and_one_write(
    worker_deps: SyncDeps, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """With a full-reconcile interval, a scheduled run after a clean one asks the file "changed
    since?" and ends without Pleo; a change to the file is synced by the next run."""
    deps = replace(worker_deps, full_reconcile_s=24 * 3600.0)
    control = emulator.control
    source = tmp_path / "snapshot.json"
    source.write_text(json.dumps(SNAPSHOT), encoding="utf-8")
    record = await _installed(deps, control, source)
    request = SyncRequest(installation_id=record.installation_id, reason=SyncReason.SCHEDULED)
    assert await sync_installation(deps, record, request) is SyncOutcome.SYNCED
    control.clear_request_log()
    dynamodb, kms = DynamoCalls(), DynamoCalls()
    aws_client("dynamodb").meta.events.register("before-call.dynamodb", dynamodb)
    aws_client("kms").meta.events.register("before-call.kms", kms)
    try:
        again = deps.installations.get(record.installation_id)
        assert again is not None
        second = await sync_installation(deps, again, request)
    finally:
        aws_client("dynamodb").meta.events.unregister("before-call.dynamodb", dynamodb)
        aws_client("kms").meta.events.unregister("before-call.kms", kms)

    assert second is SyncOutcome.UNCHANGED
    assert control.counters() == {}
    assert dict(kms.calls) == {"Decrypt": 1}  # the connection settings; no credential
    assert dynamodb.writes == {"PutItem": 1}  # its record: it takes no lease

    changed = json.loads(json.dumps(SNAPSHOT))
    changed["vendors"][0]["name"] = "Renamed Vendor ApS"
    source.write_text(json.dumps(changed), encoding="utf-8")
    latest = deps.installations.get(record.installation_id)
    assert latest is not None
    assert await sync_installation(deps, latest, request) is SyncOutcome.SYNCED
    assert pleo_view(control.data(record.company_id)) == snapshot_view(changed, TAGS)
