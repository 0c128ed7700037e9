"""Whole sync runs as the worker makes them: `build_worker` from the worker's environment, on
DynamoDB Local, moto's KMS and SQS and the Pleo emulator, with an API-key installation whose
accounting system is a JSON snapshot on disk (`ADAPTER=json`).

A run may happen in this process or in another one (`run_in_process`, spawned, so that it can be
killed or released by a barrier): both build the worker from the same environment, so they share
only the stand-ins, as two Lambda invocations do.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

from pleo_connector.adapters.json_snapshot import JsonSnapshotSettings
from pleo_connector.aio import run
from pleo_connector.composition.roots import build_worker
from pleo_connector.config import WorkerFunctionSettings, clear_settings_cache, load_settings
from pleo_connector.crypto import CredentialCipher
from pleo_connector.installation_config import seal_connection
from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.retry import Deadline
from pleo_connector.store.credentials import CredentialRepository
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.store.sync_runs import RUN_PREFIX, SyncRunRepository
from pleo_connector.sync.worker import SyncDeps, run_sync
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.tokens import TokenStore
from pleo_connector.vocabulary import AuthMethod, InstallationStatus, SyncOutcome, SyncReason

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from contextlib import AbstractContextManager
    from multiprocessing.synchronize import Barrier
    from pathlib import Path

    from pleo_connector.adapters.base import SourceReader
    from pleo_connector.store.dynamodb import DynamoTable

GROUPS = ("DEPT", "JOBS")
CHOICES = {"tag_groups": list(GROUPS), "tax_codes": True, "vendors": True, "accounts": True}
# A GnuCash book's two dimensions (docs/adapters.md), both chosen.
GNUCASH_CHOICES = {
    "tag_groups": ["JOBS", "CUSTOMERS"],
    "tax_codes": True,
    "vendors": True,
    "accounts": True,
}
SCHEDULED = SyncReason.SCHEDULED


def snapshot(*, tags: int, tax_codes: int, vendors: int, accounts: int) -> dict[str, Any]:
    """A snapshot (format version 1) with `tags` tags in each of the two groups."""
    return {
        "version": 1,
        "tagGroups": [
            {
                "code": group,
                "name": f"Group {group}",
                "archived": False,
                "tags": [
                    {"code": f"{group}-{n}", "name": f"{group} tag {n}", "archived": False}
                    for n in range(tags)
                ],
            }
            for group in GROUPS
        ],
        "taxCodes": [
            {
                "code": f"T{n}",
                "name": f"Tax {n}",
                "rate": round(0.01 * (n + 1), 2),
                "type": "inclusive",
                "archived": False,
            }
            for n in range(tax_codes)
        ],
        "vendors": [
            {
                "externalId": f"V-{n}",
                "code": f"V-{n}",
                "name": f"Vendor {n}",
                "currency": "DKK",
                "country": "DK",
                "registrationNumber": None,
                "taxRegistrationNumber": None,
                "archived": False,
            }
            for n in range(vendors)
        ],
        "accounts": [
            {
                "externalId": str(4000 + n),
                "code": str(4000 + n),
                "name": f"Account {n}",
                "taxCode": "T0" if tax_codes else None,
                "archived": False,
            }
            for n in range(accounts)
        ],
    }


# --- what Pleo holds, by key ---------------------------------------------------------------------


def pleo_keys(data: Mapping[str, list[dict[str, Any]]]) -> Counter[tuple[str, str, str]]:
    """Each record in the emulator's data as (kind, key, name), counted; an archived record's
    name is "(archived)"."""
    return Counter(_pleo_rows(data))


def duplicates(data: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    """The (kind, key) pairs that Pleo holds more than once: records created twice."""
    by_key = Counter((kind, key) for kind, key, _ in _pleo_rows(data))
    return sorted(key for key, count in by_key.items() if count > 1)


def _pleo_rows(data: Mapping[str, list[dict[str, Any]]]) -> Iterator[tuple[str, str, str]]:
    groups = {row["id"]: row["code"].casefold() for row in data["tag_groups"]}
    for kind, rows, key_field in (
        ("tag_group", "tag_groups", "code"),
        ("tax_code", "tax_codes", "code"),
        ("vendor", "vendors", "externalId"),
        ("account", "accounts", "externalId"),
    ):
        for row in data[rows]:
            yield kind, str(row[key_field]).casefold(), _name(row)
    for row in data["tags"]:
        yield "tag", f"{groups[row['groupId']]}/{row['code'].casefold()}", _name(row)


def source_keys(document: Mapping[str, Any]) -> Counter[tuple[str, str, str]]:
    """What Pleo should hold after a complete sync of `document` (none of it archived)."""
    wanted: Counter[tuple[str, str, str]] = Counter()
    for group in document["tagGroups"]:
        code = group["code"].casefold()
        wanted[("tag_group", code, group["name"])] += 1
        for tag in group["tags"]:
            wanted[("tag", f"{code}/{tag['code'].casefold()}", tag["name"])] += 1
    for kind, rows, key_field in (
        ("tax_code", "taxCodes", "code"),
        ("vendor", "vendors", "externalId"),
        ("account", "accounts", "externalId"),
    ):
        for row in document[rows]:
            wanted[(kind, row[key_field].casefold(), row["name"])] += 1
    return wanted


def _name(row: Mapping[str, Any]) -> str:
    archived = bool(row.get("archived")) or row.get("state") == "ARCHIVED"
    return "(archived)" if archived else str(row["name"])


# --- the world -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineWorld:
    """One installation and the worker's environment."""

    env: dict[str, str]
    table: DynamoTable
    installation_id: str
    company_id: str
    source: Path

    def write_source(self, document: Mapping[str, Any]) -> None:
        self.source.write_text(json.dumps(document))

    @property
    def runs(self) -> SyncRunRepository:
        return SyncRunRepository(self.table)

    def record(self) -> InstallationRecord:
        found = InstallationRepository(self.table).get(self.installation_id)
        assert found is not None
        return found

    def run_records(self) -> list[dict[str, Any]]:
        """Every RUN# item of the installation, oldest first."""
        items = self.table.query(
            key_condition="pk = :pk AND begins_with(sk, :prefix)",
            values={
                ":pk": {"S": f"INST#{self.installation_id}"},
                ":prefix": {"S": RUN_PREFIX},
            },
        )
        return [
            {name: next(iter(value.values())) for name, value in item.items()} for item in items
        ]


def worker_env(
    aws_env: Mapping[str, str],
    *,
    table_name: str,
    kms_key_id: str,
    queue_url: str,
    emulator_url: str,
) -> dict[str, str]:
    """The sync worker's environment: no margin before the deadline and no grace after it, so
    the lease lasts exactly as long as the deadline a test gives the run."""
    return {
        **aws_env,
        "TABLE_NAME": table_name,
        "KMS_KEY_ID": kms_key_id,
        "SYNC_QUEUE_URL": queue_url,
        "PLEO_AUTH_URL": emulator_url,
        "PLEO_API_URL": emulator_url,
        "PLEO_CLIENT_ID": "sync-tests",
        "PLEO_CLIENT_SECRET_ID": "unused-by-api-keys",
        "PLEO_RATE_BUDGET_PER_MIN": "100000",
        "ADAPTER": "json",
        "ALLOW_LOCAL_SOURCES": "true",
        "SYNC_DEADLINE_MARGIN_S": "0",
        "SYNC_LEASE_GRACE_S": "0",
        "POWERTOOLS_SERVICE_NAME": "pleo-connector-test",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


async def _create_in_pleo(api_base: str, api_key: str) -> None:
    async with PleoClient(api_base, ApiKeyAuth(api_key)) as pleo:
        await pleo.installations.create(InstallationStatus.ACTIVATED)


class InstallWorld(Protocol):
    """The `install_world` fixture: an installation whose settings name `source`, read by the
    worker with the adapter named (`json` or `gnucash`)."""

    def __call__(self, source: Path, adapter: str = "json") -> EngineWorld: ...


def install(
    env: Mapping[str, str], table: DynamoTable, company_id: str, api_key: str, source: Path
) -> EngineWorld:
    """An activated API-key installation of `company_id` (a company of its own: the table holds
    one installation per company) whose settings name `source` (in this process's environment,
    which must be `env`)."""
    installation_id = f"inst-{uuid.uuid4().hex[:12]}"
    run(_create_in_pleo(env["PLEO_API_URL"], api_key))
    cipher = CredentialCipher(env["KMS_KEY_ID"])
    TokenStore(CredentialRepository(table), cipher).save_api_key(installation_id, api_key)
    settings = JsonSnapshotSettings(source=SecretStr(str(source)))
    InstallationRepository(table).create_or_update(
        InstallationRecord(
            installation_id=installation_id,
            company_id=company_id,
            auth_method=AuthMethod.API_KEY,
            status=InstallationStatus.ACTIVATED,
            config={"connection": seal_connection(cipher, installation_id, "json", settings)},
            sync_choices=CHOICES,
        )
    )
    return EngineWorld(dict(env), table, installation_id, company_id, source)


def install_gnucash(
    env: Mapping[str, str], table: DynamoTable, company_id: str, api_key: str, book: Path
) -> EngineWorld:
    """`install`, for `ADAPTER=gnucash`: the settings name `book` and choose its two dimensions.
    A book's location is no secret, so the stored settings hold nothing encrypted."""
    from pleo_connector.adapters.gnucash import GnuCashSettings

    found = install(env, table, company_id, api_key, book)
    repository = InstallationRepository(table)
    record = repository.get(found.installation_id)
    assert record is not None
    cipher = CredentialCipher(env["KMS_KEY_ID"])
    sealed = seal_connection(
        cipher, found.installation_id, "gnucash", GnuCashSettings(book=str(book))
    )
    repository.create_or_update(
        replace(record, config={"connection": sealed}, sync_choices=GNUCASH_CHOICES)
    )
    return found


# --- one run -------------------------------------------------------------------------------------


class CountingAdapter:
    """The worker's adapter, counting how often a run opened the source."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.opened = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def open_reader(self, settings: Any) -> AbstractContextManager[SourceReader]:
        self.opened += 1
        reader: AbstractContextManager[SourceReader] = self._inner.open_reader(settings)
        return reader


def worker(env: Mapping[str, str]) -> tuple[SyncDeps, CountingAdapter]:
    """The worker's deps as its handler builds them from `env` (set in this process)."""
    os.environ.update(env)
    clear_settings_cache()
    deps = build_worker(load_settings(WorkerFunctionSettings))
    adapter = CountingAdapter(deps.adapter)
    return replace(deps, adapter=adapter), adapter  # type: ignore[arg-type]


def sync_once(deps: SyncDeps, installation_id: str, deadline_s: float) -> SyncOutcome:
    request = SyncRequest(installation_id=installation_id, reason=SCHEDULED)
    return run(run_sync(deps, request, deadline=Deadline.after(deadline_s)))


def _run_in_child(
    env: dict[str, str],
    installation_id: str,
    deadline_s: float,
    barrier: Barrier | None,
    results: multiprocessing.Queue[tuple[str, int]],
) -> None:
    deps, adapter = worker(env)
    if barrier is not None:
        barrier.wait(timeout=60)
    try:
        outcome = str(sync_once(deps, installation_id, deadline_s))
    except Exception as error:
        outcome = f"raised {type(error).__name__}"
    results.put((outcome, adapter.opened))


@dataclass
class SyncProcess:
    """A run of the worker in a spawned process of its own."""

    process: multiprocessing.process.BaseProcess
    results: multiprocessing.Queue[tuple[str, int]]

    def result(self, timeout_s: float = 60) -> tuple[str, int]:
        """(outcome, times the source was opened), once the run ended."""
        found = self.results.get(timeout=timeout_s)
        self.process.join(timeout=timeout_s)
        return found


def run_in_process(
    world: EngineWorld, deadline_s: float, barrier: Barrier | None = None
) -> SyncProcess:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[str, int]] = context.Queue()
    process = context.Process(
        target=_run_in_child,
        args=(world.env, world.installation_id, deadline_s, barrier, results),
        daemon=True,
    )
    process.start()
    return SyncProcess(process, results)


def barrier(parties: int) -> Barrier:
    return multiprocessing.get_context("spawn").Barrier(parties)
