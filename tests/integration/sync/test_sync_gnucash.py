"""The demo book synced through the real worker (`ADAPTER=gnucash`, built by `build_worker`) on
DynamoDB Local, moto and the Pleo emulator: the first sync makes Pleo hold exactly what the
mapping of docs/adapters.md says, a second one writes nothing, and the demo's three changes (a
vendor renamed, an account hidden, a job added) are applied as exactly three writes. An awkward
book's notices reach the run's record, and an unreadable book is a counted source failure."""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from local import gnucash_books as books
from local.services import LOCAL_REGION, Service
from pleo_connector.store.dynamodb import DynamoTable
from pleo_connector.vocabulary import Kind, SyncOutcome
from tests.integration.sync.engine_world import (
    EngineWorld,
    install_gnucash,
    sync_once,
    worker,
    worker_env,
)

if TYPE_CHECKING:
    from pathlib import Path

    from local.resources import LocalResources
    from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.integration


@pytest.fixture
def world(
    aws_local_env: dict[str, str],
    dynamodb_local: Service,
    local_resources: LocalResources,
    emulator: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> EngineWorld:
    """An activated API-key installation whose settings name a demo book on disk."""
    env = worker_env(
        aws_local_env,
        table_name=local_resources.tables["Table"],
        kms_key_id=local_resources.keys["CredentialsKey"],
        queue_url=local_resources.queue_urls["SyncQueue"],
        emulator_url=emulator.url,
    )
    env["ADAPTER"] = "gnucash"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = boto3.session.Session(region_name=LOCAL_REGION).client(
        "dynamodb", endpoint_url=dynamodb_local.url
    )
    table = DynamoTable(local_resources.tables["Table"], client=client)
    company_id = str(emulator.control.seed_company()["id"])
    api_key = emulator.control.issue_api_key(company_id)
    book = books.write_demo_book(tmp_path / "nordlys.gnucash")
    return install_gnucash(env, table, company_id, api_key, book)


def expected_pleo(book: Path) -> dict[str, set[tuple[Any, ...]]]:
    """What Pleo must hold after a sync of `book`, by the mapping table, from the book's own
    tables; records archived in the book and never in Pleo are not created."""
    with contextlib.closing(sqlite3.connect(book)) as db, db:
        accounts = {
            (guid, code, name)
            for guid, code, name in db.execute(
                "SELECT guid, code, name FROM accounts WHERE code != '' AND placeholder = 0"
                " AND hidden = 0"
            )
        }
        vendors = {
            (vendor_id, vendor_id, name, currency)
            for vendor_id, name, currency in db.execute(
                "SELECT v.id, v.name, c.mnemonic FROM vendors v JOIN commodities c"
                " ON c.guid = v.currency WHERE v.active = 1"
            )
        }
        tags = {("JOBS", code, name) for code, name in db.execute(
            "SELECT id, name FROM jobs WHERE active = 1"
        )} | {("CUSTOMERS", code, name) for code, name in db.execute(
            "SELECT id, name FROM customers WHERE active = 1"
        )}  # fmt: skip
        tax_codes = set()
        for guid, name in db.execute("SELECT guid, name FROM taxtables WHERE invisible = 0"):
            entries = list(
                db.execute(
                    "SELECT type, amount_num, amount_denom FROM taxtable_entries"
                    " WHERE taxtable = ?",
                    (guid,),
                )
            )
            assert all(kind == books.ENTRY_PERCENTAGE for kind, _, _ in entries)
            rate = sum(Decimal(num) / Decimal(denom) for _, num, denom in entries) / 100
            tax_codes.add((name, name, rate, "inclusive"))
    return {
        "tag_groups": {("JOBS", "Jobs"), ("CUSTOMERS", "Customers")},
        "tags": tags,
        "tax_codes": tax_codes,
        "vendors": vendors,
        "accounts": accounts,
    }


def pleo_now(emulator: RunningEmulator, world: EngineWorld) -> dict[str, set[tuple[Any, ...]]]:
    """The emulator's active records, in the same shape."""
    data = emulator.control.data(world.company_id)
    groups = {row["id"]: row["code"] for row in data["tag_groups"]}
    return {
        "tag_groups": {(r["code"], r["name"]) for r in data["tag_groups"] if not r["archived"]},
        "tags": {
            (groups[r["groupId"]], r["code"], r["name"]) for r in data["tags"] if not r["archived"]
        },
        "tax_codes": {
            (r["code"], r["name"], Decimal(str(r["rate"])), r["type"])
            for r in data["tax_codes"]
            if not r["archived"]
        },
        "vendors": {
            (r["externalId"], r["code"], r["name"], r["defaultCurrency"])
            for r in data["vendors"]
            if r["state"] == "ACTIVE"
        },
        "accounts": {
            (r["externalId"], r["code"], r["name"]) for r in data["accounts"] if not r["archived"]
        },
    }


def writes(emulator: RunningEmulator) -> Counter[str]:
    """The requests that changed Pleo since the log was cleared, per operation."""
    return Counter(
        f"{entry['method']} {entry['operation']}"
        for entry in emulator.control.request_log()
        if entry["method"] != "GET"
        and not str(entry["path"]).endswith(":search")
        and "/installations/" not in str(entry["path"])
    )


def test_the_demo_book_syncs_as_mapped_then_nothing_then_exactly_the_three_changes(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    deps, _ = worker(world.env)

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED
    assert pleo_now(emulator, world) == expected_pleo(world.source)
    first = world.runs.last_run(world.installation_id)
    assert first is not None
    assert first.problems == ()

    emulator.control.clear_request_log()
    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED
    assert writes(emulator) == Counter()

    vendor, name = books.DEMO_CHANGES["rename_vendor"]
    books.rename_vendor(world.source, str(vendor), str(name))
    books.hide_account(world.source, str(books.DEMO_CHANGES["hide_account"]))
    job, job_name, customer = books.DEMO_CHANGES["add_job"]
    books.add_job(world.source, str(job), str(job_name), str(customer))
    emulator.control.clear_request_log()

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED

    assert sum(writes(emulator).values()) == 3
    assert pleo_now(emulator, world) == expected_pleo(world.source)
    latest = world.runs.last_run(world.installation_id)
    assert latest is not None
    assert sum(latest.applied.values()) == 3
    assert {kind for kind, _ in latest.applied} == {Kind.VENDOR, Kind.ACCOUNT, Kind.TAG}


def test_an_awkward_books_notices_reach_the_runs_record(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    books.write_awkward_book(world.source)
    deps, _ = worker(world.env)

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED

    run = world.runs.last_run(world.installation_id)
    assert run is not None
    told = {(problem.kind, problem.reference) for problem in run.problems}
    assert {
        (Kind.TAX_CODE, "Miljøafgift"),
        (Kind.TAX_CODE, "Blandet"),
        (Kind.ACCOUNT, "4330"),
        (Kind.VENDOR, "V3"),
        (Kind.VENDOR, "V1"),  # the planner's duplicate
    } <= told
    assert run.failed[Kind.TAX_CODE] >= 2
    names = {row["name"] for row in emulator.control.data(world.company_id)["accounts"]}
    assert {"Café Müller", "東京 事務所 Kontor", "Søren's Bøger"} <= names


def test_a_locked_book_is_a_counted_source_failure_and_recovers(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    deps, _ = worker(world.env)
    books.make_unreadable(world.source, "locked")

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SOURCE_FAILED

    record = world.record()
    assert record.failure_count == 1
    assert record.failure_reason is not None
    assert "locked" in record.failure_reason
    assert emulator.control.data(world.company_id)["vendors"] == []

    books.restore_readable(world.source)
    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED
    assert world.record().failure_count == 0
