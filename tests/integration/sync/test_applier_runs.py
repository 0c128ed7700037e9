"""Runs of read, plan and apply that do not go smoothly: cut off by the deadline, or with 30 % of
Pleo's answers failing. What was done stays done and owned, and repeated runs converge on the
source with no record created twice and nothing lost."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from pleo_connector.installation_config import SyncChoices
from pleo_connector.pleo.errors import PleoError
from pleo_connector.pleo.retry import Deadline
from pleo_connector.store.ownership import OwnershipRepository
from pleo_connector.sync.applier import ApplyResult, apply_plan
from pleo_connector.sync.model import Action, Entry, Kind
from pleo_connector.sync.pleo_state import read_pleo_entries
from tests.integration.sync.support import (
    MemoryOwnership,
    account,
    group,
    naive_plan,
    tag,
    tax_code,
    vendor,
)
from tests.support.emulator import DEFAULT_COMPANY_ID, RunningEmulator

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pleo_connector.pleo.client import PleoClient
    from pleo_connector.store.dynamodb import DynamoTable
    from pleo_connector.sync.ports import OwnershipStore

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

COMPANY = DEFAULT_COMPANY_ID
CHOICES = SyncChoices(tag_groups=["DEPT", "JOBS"])
ROWS = {
    Kind.TAG_GROUP: "tag_groups",
    Kind.TAG: "tags",
    Kind.TAX_CODE: "tax_codes",
    Kind.VENDOR: "vendors",
    Kind.ACCOUNT: "accounts",
}


def requests_sent(pleo: PleoClient) -> Callable[[], float]:
    """A clock that moves one step per request sent: a deadline on it falls after a number of
    requests, whatever the machine's speed."""
    return lambda: float(pleo.transport.counts.sent)


async def test_a_run_cut_off_by_the_deadline_has_recorded_all_it_made_and_the_next_finishes(
    emulator: RunningEmulator, pleo: PleoClient, ownership_table: DynamoTable
) -> None:
    installation_id = f"inst-{uuid.uuid4().hex[:10]}"
    wanted = [vendor(f"V-{n}", f"Vendor {n}") for n in range(30)]
    plan = naive_plan(wanted, await read_pleo_entries(pleo, COMPANY, CHOICES), set())
    clock = requests_sent(pleo)

    first = await apply_plan(
        plan,
        pleo,
        COMPANY,
        OwnershipRepository(ownership_table),
        installation_id,
        deadline=Deadline(clock() + 12, clock),
        concurrency=4,
    )

    assert first.complete is False
    assert first.stopped_by is None  # the deadline, not a failure
    made = {row["id"] for row in emulator.control.data(COMPANY)["vendors"]}
    assert 0 < len(made) < 30
    # Read back through a repository of its own: the record is in the table, not in memory.
    durable = OwnershipRepository(ownership_table)
    assert durable.owned(installation_id) == {(Kind.VENDOR, pleo_id) for pleo_id in made}

    replanned = naive_plan(
        wanted, await read_pleo_entries(pleo, COMPANY, CHOICES), durable.owned(installation_id)
    )
    assert Counter(change.action for change in replanned.changes) == {Action.CREATE: 30 - len(made)}
    second = await apply_plan(replanned, pleo, COMPANY, durable, installation_id)

    assert second.complete is True
    vendors = emulator.control.data(COMPANY)["vendors"]
    assert sorted(v["externalId"] for v in vendors) == sorted(f"V-{n}" for n in range(30))
    assert durable.owned(installation_id) == {(Kind.VENDOR, v["id"]) for v in vendors}


def source(jobs: bool, dropped_vendors: int, renamed: bool) -> list[Entry]:
    """The accounting system at one moment; `renamed` changes names and the case of codes."""
    suffix = " (new)" if renamed else ""
    wanted = [group("DEPT", "Departments" + suffix)]
    wanted += [tag("DEPT", f"d-{n}" if renamed else f"D-{n}", f"Dept {n}") for n in range(20)]
    if jobs:
        wanted.append(group("JOBS", "Jobs"))
        wanted += [tag("JOBS", f"J-{n}", f"Job {n}") for n in range(20)]
    wanted += [tax_code(f"T{n}", f"Tax {n}{suffix}", f"0.{n + 1}") for n in range(5)]
    wanted += [vendor(f"V-{n}", f"Vendor {n}{suffix}") for n in range(dropped_vendors, 30)]
    wanted += [account(str(4000 + n), f"Account {n}{suffix}", tax="T1") for n in range(120)]
    return wanted


async def converge(
    pleo: PleoClient, ownership: OwnershipStore, wanted: Sequence[Entry]
) -> list[ApplyResult]:
    """Read, plan and apply until a read succeeds and the plan is empty."""
    results: list[ApplyResult] = []
    for _ in range(40):
        try:
            entries = await read_pleo_entries(pleo, COMPANY, CHOICES)
        except PleoError:
            continue  # the faults outlived the retries: the next run reads again
        plan = naive_plan(wanted, entries, ownership.owned("inst"))
        if not plan.changes:
            return results
        results.append(await apply_plan(plan, pleo, COMPANY, ownership, "inst"))
    raise AssertionError("the runs did not converge")


def check(emulator: RunningEmulator, ownership: MemoryOwnership, wanted: Sequence[Entry]) -> None:
    """Pleo's owned, active records are exactly the source's, each once; the rest archived."""
    now = emulator.control.data(COMPANY)
    owned = ownership.owned("inst")
    groups = {row["id"]: row["code"].casefold() for row in now["tag_groups"]}
    active: set[tuple[Kind, str]] = set()
    for kind, rows in ROWS.items():
        keys: list[str] = []
        for row in rows_of(now, rows):
            key = key_of(kind, row, groups)
            keys.append(key)
            if (kind, row["id"]) in owned and not archived(row):
                active.add((kind, key))
        assert len(keys) == len(set(keys)), f"a {kind} was created twice"
    assert active == {(entry.kind, entry.key) for entry in wanted}


def rows_of(now: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return list(now[name])


def key_of(kind: Kind, row: dict[str, Any], groups: dict[str, str]) -> str:
    if kind is Kind.TAG:
        return f"{groups[row['groupId']]}\x1f{row['code'].casefold()}"
    return str(row["externalId"] if kind in (Kind.VENDOR, Kind.ACCOUNT) else row["code"]).casefold()


def archived(row: dict[str, Any]) -> bool:
    return bool(row.get("archived")) or row.get("state") == "ARCHIVED"


async def test_with_30_percent_of_answers_failing_repeated_runs_converge_without_duplicates(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    hand_made = emulator.control.seed(
        COMPANY,
        tag_groups=[{"code": "HAND", "tags": [{"code": "H-1"}]}],
        vendors=[{"externalId": "P-1", "name": "Made by a person"}],
    )
    emulator.control.update_settings(fault_seed=20240611)
    # Each rule takes 10 % of all requests: 429s, 503s (a create's outcome then unknown) and 502s
    # after Pleo acted on the request (a create made, its answer lost).
    for status, rate, commit in ((429, 0.1, None), (503, 0.1 / 0.9, None), (502, 0.125, True)):
        emulator.control.inject_fault(
            "error", status=status, rate=rate, commit=commit, path_prefix="/v"
        )
    records_before = 0
    for wanted in (
        source(jobs=True, dropped_vendors=0, renamed=False),
        source(jobs=False, dropped_vendors=10, renamed=True),  # removed, renamed, case changed
        source(jobs=True, dropped_vendors=5, renamed=True),  # some come back
    ):
        results = await converge(pleo, ownership, wanted)

        check(emulator, ownership, wanted)
        records = sum(len(rows) for rows in emulator.control.data(COMPANY).values())
        assert records >= records_before  # nothing is ever deleted
        records_before = records
        assert results, "each new source needs at least one run"

    faults = {rule["status"]: rule["applied"] for rule in emulator.control.faults()}
    assert min(faults.values()) > 0  # every kind of failure was met
    now = emulator.control.data(COMPANY)
    assert [v["state"] for v in now["vendors"] if v["id"] in hand_made["vendors"]] == ["ACTIVE"]
    assert [g["archived"] for g in now["tag_groups"] if g["id"] in hand_made["tag_groups"]] == [
        False
    ]
    # The client counted every request the emulator saw, and each 429 among them.
    assert pleo.transport.counts.sent == sum(emulator.control.counters().values())
    assert pleo.transport.counts.rate_limited == faults[429]
