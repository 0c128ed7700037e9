"""What the GnuCash sync tests check against: what Pleo must hold after a sync of a book, read from
the book's own tables by the mapping of docs/adapters.md, what Pleo holds, and a book that could
not be read. The installation
whose settings name the book is the `install_world` fixture (conftest.py)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from local import gnucash_books as books

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.sync.engine_world import EngineWorld
    from tests.support.emulator import RunningEmulator


def expected_pleo(book: Path) -> dict[str, set[tuple[Any, ...]]]:
    """What Pleo must hold after a sync of `book`, by the mapping table, from the book's own
    tables; records archived in the book and never in Pleo are not created, and a tax table
    with an amount entry is not synced."""
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
            if any(kind != books.ENTRY_PERCENTAGE for kind, _, _ in entries):
                continue
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


def assert_counted_source_failure(
    world: EngineWorld, emulator: RunningEmulator, reason_says: str
) -> None:
    """The run was a source failure: counted once, with a reason that says `reason_says`, and
    nothing of the book reached Pleo."""
    record = world.record()
    assert record.failure_count == 1
    assert record.failure_reason is not None
    assert reason_says in record.failure_reason
    assert emulator.control.data(world.company_id)["vendors"] == []


def writes(emulator: RunningEmulator) -> Counter[str]:
    """The requests that changed Pleo since the log was cleared, per operation."""
    return Counter(
        f"{entry['method']} {entry['operation']}"
        for entry in emulator.control.request_log()
        if entry["method"] != "GET"
        and not str(entry["path"]).endswith(":search")
        and "/installations/" not in str(entry["path"])
    )
