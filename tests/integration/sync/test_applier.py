"""The applier against the Pleo emulator: each action of each kind, checked in the emulator's data
afterwards, the bulk endpoints counted in its request log, and 409s and lost answers adopted
rather than created twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest

from pleo_connector.installation_config import SyncChoices
from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.errors import AuthenticationError, InternalServerError
from pleo_connector.sync.applier import apply_plan
from pleo_connector.sync.model import Action, Change, Kind, Plan
from pleo_connector.sync.pleo_state import read_pleo_entries
from tests.integration.sync.support import (
    MemoryOwnership,
    account,
    change,
    create,
    group,
    naive_plan,
    tag,
    tax_code,
    vendor,
)
from tests.support.emulator import DEFAULT_COMPANY_ID, RunningEmulator

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

COMPANY = DEFAULT_COMPANY_ID
INST = "inst-1"
ALL_KINDS = SyncChoices(tag_groups=["DEPT"])
# How long a "timeout" fault holds the answer back before it closes the connection unanswered.
HANG_MS = 500


def data(emulator: RunningEmulator) -> dict[str, list[dict[str, Any]]]:
    return emulator.control.data(COMPANY)


def ids_of(rows: list[dict[str, Any]]) -> set[str]:
    return {row["id"] for row in rows}


def by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


async def apply(plan: Plan, pleo: PleoClient, ownership: MemoryOwnership, **options: Any) -> Any:
    return await apply_plan(plan, pleo, COMPANY, ownership, INST, **options)


async def test_a_first_apply_creates_every_kind_with_one_request_each_and_owns_them(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    wanted = [
        group("DEPT", "Departments"),
        tag("DEPT", "D-100", "Sales"),
        tag("DEPT", "D-200", "Support"),
        tax_code("S25", "VAT 25%", "0.25"),
        vendor("V-1", "Paper Co", country="DK", registrationNumber="12345678"),
        account("6100", "Travel", tax="S25"),
        account("6200", "Meals"),
    ]

    result = await apply(Plan(tuple(create(entry) for entry in wanted)), pleo, ownership)

    assert (result.complete, result.failed) == (True, [])
    assert result.applied == {
        (Kind.TAG_GROUP, Action.CREATE): 1,
        (Kind.TAG, Action.CREATE): 2,
        (Kind.TAX_CODE, Action.CREATE): 1,
        (Kind.VENDOR, Action.CREATE): 1,
        (Kind.ACCOUNT, Action.CREATE): 2,
    }
    assert emulator.control.counters() == {
        "POST /v0/tag-groups": 1,
        "POST /v0/tag-groups/{groupId}/tags": 2,
        "POST /v0/tax-codes": 1,
        "POST /v1/vendors": 1,
        "POST /v1/chart-of-accounts/batch": 1,
    }
    assert (result.requests, result.rate_limited) == (6, 0)
    now = data(emulator)
    [dept] = now["tag_groups"]
    assert (dept["code"], dept["name"], dept["archived"]) == ("DEPT", "Departments", False)
    assert {(t["code"], t["name"], t["groupId"]) for t in now["tags"]} == {
        ("D-100", "Sales", dept["id"]),
        ("D-200", "Support", dept["id"]),
    }
    [s25] = now["tax_codes"]
    assert (s25["code"], s25["name"], s25["rate"], s25["type"]) == (
        "S25",
        "VAT 25%",
        0.25,
        "inclusive",
    )
    [paper] = now["vendors"]
    assert (paper["externalId"], paper["code"], paper["country"], paper["state"]) == (
        "V-1",
        "V-1",
        "DK",
        "ACTIVE",
    )
    assert paper["registrationNumber"] == "12345678"
    assert {(a["externalId"], a["taxCodeExternalId"]) for a in now["accounts"]} == {
        ("6100", "S25"),
        ("6200", None),
    }
    assert ownership.owned(INST) == {
        (kind, row["id"])
        for kind, rows in (
            (Kind.TAG_GROUP, now["tag_groups"]),
            (Kind.TAG, now["tags"]),
            (Kind.TAX_CODE, now["tax_codes"]),
            (Kind.VENDOR, now["vendors"]),
            (Kind.ACCOUNT, now["accounts"]),
        )
        for row in rows
    }
    # Read back, Pleo is what was wanted: the same normalisation on both sides, nothing to do.
    entries = await read_pleo_entries(pleo, COMPANY, ALL_KINDS)
    assert naive_plan(wanted, entries, ownership.owned(INST)).changes == ()


def seed_existing(emulator: RunningEmulator) -> dict[str, list[str]]:
    return emulator.control.seed(
        COMPANY,
        tag_groups=[
            {
                "code": "DEPT",
                "name": "Depts",
                "metadata": {"owner": "finance"},
                "tags": [
                    {"code": "D-1", "name": "Old name"},
                    {"code": "D-2", "name": "Two"},
                    {"code": "D-3", "name": "Three", "archived": True},
                ],
            },
            {"code": "OLD", "name": "Old group"},
        ],
        tax_codes=[
            {"code": "S25", "name": "VAT", "rate": 0.25, "ingoingTaxAccount": "2610"},
            {"code": "OLD-T", "name": "Old tax", "rate": 0.1},
        ],
        vendors=[
            {"externalId": "V-1", "code": "V-1", "name": "Old Co"},
            {"externalId": "V-2", "code": "V-2", "name": "Two Co"},
            {"externalId": "V-3", "code": "V-3", "name": "Three Co", "state": "ARCHIVED"},
        ],
        accounts=[
            {"externalId": "6100", "code": "6100", "name": "Old travel", "metadata": {"a": {}}},
            {"externalId": "6200", "code": "6200", "name": "Meals"},
            {"externalId": "6300", "code": "6300", "name": "Gifts", "archived": True},
        ],
    )


async def test_updates_archives_and_unarchives_of_every_kind_keep_what_the_app_does_not_own(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    ids = seed_existing(emulator)
    dept, old = ids["tag_groups"]
    d1, d2, d3 = ids["tags"]
    s25, old_tax = ids["tax_codes"]
    v1, v2, v3 = ids["vendors"]
    a1, a2, a3 = ids["accounts"]
    plan = Plan(
        (
            change(Action.UPDATE, group("DEPT", "Departments"), dept, values=True),
            change(Action.ARCHIVE, group("OLD", "Old group"), old),
            change(Action.UPDATE, tag("DEPT", "D-1", "Sales"), d1, values=True),
            change(Action.ARCHIVE, tag("DEPT", "D-2", "Two"), d2),
            change(Action.UNARCHIVE, tag("DEPT", "D-3", "Three"), d3),
            change(Action.UPDATE, tax_code("S25", "VAT 20%", "0.2"), s25, values=True),
            change(Action.ARCHIVE, tax_code("OLD-T", "Old tax"), old_tax),
            change(Action.UPDATE, vendor("V-1", "Paper Co", country="DK"), v1, values=True),
            change(Action.ARCHIVE, vendor("V-2", "Two Co"), v2),
            change(Action.UNARCHIVE, vendor("V-3", "Three Co"), v3),
            change(Action.UPDATE, account("6100", "Travel", tax="S25"), a1, values=True),
            change(Action.ARCHIVE, account("6200", "Meals"), a2),
            change(Action.UNARCHIVE, account("6300", "Gifts"), a3),
        )
    )

    result = await apply(plan, pleo, ownership)

    assert (result.complete, result.failed) == (True, [])
    assert result.applied == plan.counts()
    now = data(emulator)
    groups = by(now["tag_groups"], "code")
    assert (groups["DEPT"]["name"], groups["DEPT"]["metadata"]) == (
        "Departments",
        {"owner": "finance"},
    )
    assert (groups["DEPT"]["archived"], groups["OLD"]["archived"]) == (False, True)
    tags = by(now["tags"], "code")
    assert (tags["D-1"]["name"], tags["D-1"]["archived"]) == ("Sales", False)
    assert (tags["D-2"]["archived"], tags["D-3"]["archived"]) == (True, False)
    taxes = by(now["tax_codes"], "code")
    assert (taxes["S25"]["name"], taxes["S25"]["rate"], taxes["S25"]["archived"]) == (
        "VAT 20%",
        0.2,
        False,
    )
    assert taxes["S25"]["ingoingTaxAccount"] == "2610"  # a field the app does not manage
    assert taxes["OLD-T"]["archived"] is True
    vendors = by(now["vendors"], "externalId")
    assert (vendors["V-1"]["name"], vendors["V-1"]["country"], vendors["V-1"]["state"]) == (
        "Paper Co",
        "DK",
        "ACTIVE",
    )
    assert (vendors["V-2"]["state"], vendors["V-3"]["state"]) == ("ARCHIVED", "ACTIVE")
    accounts = by(now["accounts"], "externalId")
    assert (accounts["6100"]["name"], accounts["6100"]["taxCodeExternalId"]) == ("Travel", "S25")
    assert accounts["6100"]["metadata"] == {"a": {}}
    assert (accounts["6200"]["archived"], accounts["6300"]["archived"]) == (True, False)
    # A whole-record write is built on the record read back with one list or search page per
    # kind (never a GET per record); tags and vendors carry every field and need no read, but
    # for the vendor unarchived alone, which `:activate` links to its external id as Pleo has it.
    assert emulator.control.counters() == {
        "GET /v0/tag-groups": 1,
        "PUT /v0/tag-groups/{groupId}": 2,
        "PUT /v0/tags/{tagId}": 1,
        "POST /v0/tags/archive": 2,  # one archive, one unarchive
        "POST /v0/tax-codes:search": 1,
        "PUT /v0/tax-codes/{taxCodeId}": 2,
        "PUT /v1/vendors/{id}": 1,
        "POST /v1/vendors/{id}:archive": 1,
        "POST /v1/vendors:search": 1,
        "POST /v1/vendors/{id}:activate": 1,
        "POST /v1/chart-of-accounts:search": 1,
        "PUT /v1/chart-of-accounts/{accountId}": 3,
    }
    # Existing records change owner by ADOPT only.
    assert ownership.owned(INST) == set()


async def test_a_draft_vendor_the_source_has_is_adopted_and_activated(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    [draft] = emulator.control.seed(
        COMPANY, vendors=[{"externalId": "V-7", "name": "Started by a person", "state": "DRAFT"}]
    )["vendors"]
    entry = vendor("V-7", "Started by a person")

    result = await apply(
        Plan((change(Action.ADOPT, entry, draft), change(Action.UNARCHIVE, entry, draft))),
        pleo,
        ownership,
    )

    assert result.applied == {(Kind.VENDOR, Action.ADOPT): 1, (Kind.VENDOR, Action.UNARCHIVE): 1}
    [activated] = data(emulator)["vendors"]
    assert (activated["state"], activated["externalId"]) == ("ACTIVE", "V-7")
    assert ownership.owned(INST) == {(Kind.VENDOR, draft)}


async def test_a_tag_goes_in_its_group_by_the_plans_group_id_or_else_one_list_of_groups(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    [dept] = emulator.control.seed(COMPANY, tag_groups=[{"code": "DEPT"}])["tag_groups"]
    named = create(tag("DEPT", "D-1", "One"))
    unnamed = create(tag("DEPT", "D-2", "Two"))

    await apply(Plan((replace(named, parent_id=dept),)), pleo, ownership)
    assert emulator.control.counters() == {"POST /v0/tag-groups/{groupId}/tags": 1}

    await apply(Plan((unnamed,)), pleo, ownership)
    assert emulator.control.counters() == {
        "POST /v0/tag-groups/{groupId}/tags": 2,
        "GET /v0/tag-groups": 1,
    }
    assert {t["groupId"] for t in data(emulator)["tags"]} == {dept}


async def test_a_record_already_as_wanted_is_not_written_again(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    ids = seed_existing(emulator)
    plan = Plan(
        (change(Action.UPDATE, tax_code("S25", "VAT", "0.25"), ids["tax_codes"][0], values=True),)
    )

    result = await apply(plan, pleo, ownership)

    assert result.applied == {(Kind.TAX_CODE, Action.UPDATE): 1}
    assert emulator.control.counters() == {"POST /v0/tax-codes:search": 1}


async def test_adopting_records_ownership_and_sends_nothing_to_pleo(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    ids = seed_existing(emulator)
    plan = Plan(
        (
            change(Action.ADOPT, group("DEPT", "Depts"), ids["tag_groups"][0]),
            change(Action.ADOPT, tag("DEPT", "D-1", "Old name"), ids["tags"][0]),
            change(Action.ADOPT, vendor("V-1", "Old Co"), ids["vendors"][0]),
        )
    )

    result = await apply(plan, pleo, ownership)

    assert result.applied == plan.counts()
    assert result.requests == 0
    assert emulator.control.request_log() == []
    assert ownership.owned(INST) == {
        (Kind.TAG_GROUP, ids["tag_groups"][0]),
        (Kind.TAG, ids["tags"][0]),
        (Kind.VENDOR, ids["vendors"][0]),
    }


async def test_250_tags_are_archived_and_unarchived_in_three_calls_each(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    tags_in = [{"code": f"T-{n}", "name": f"Tag {n}"} for n in range(250)]
    ids = emulator.control.seed(COMPANY, tag_groups=[{"code": "JOBS", "tags": tags_in}])["tags"]
    entries = [tag("JOBS", t["code"], t["name"]) for t in tags_in]

    archived = await apply(
        Plan(tuple(change(Action.ARCHIVE, e, i) for e, i in zip(entries, ids, strict=True))),
        pleo,
        ownership,
    )

    assert archived.applied == {(Kind.TAG, Action.ARCHIVE): 250}
    assert emulator.control.counters() == {"POST /v0/tags/archive": 3}
    assert all(t["archived"] for t in data(emulator)["tags"])

    back = await apply(
        Plan(tuple(change(Action.UNARCHIVE, e, i) for e, i in zip(entries, ids, strict=True))),
        pleo,
        ownership,
    )

    assert back.applied == {(Kind.TAG, Action.UNARCHIVE): 250}
    assert emulator.control.counters() == {"POST /v0/tags/archive": 6}
    assert not any(t["archived"] for t in data(emulator)["tags"])


async def test_1500_accounts_are_created_in_two_batch_calls_and_all_owned(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    wanted = [account(str(10_000 + n), f"Account {n}") for n in range(1500)]

    result = await apply(Plan(tuple(create(entry) for entry in wanted)), pleo, ownership)

    assert result.applied == {(Kind.ACCOUNT, Action.CREATE): 1500}
    assert emulator.control.counters() == {"POST /v1/chart-of-accounts/batch": 2}
    accounts = data(emulator)["accounts"]
    assert sorted(a["externalId"] for a in accounts) == sorted(
        e.values["externalId"] for e in wanted
    )
    assert ownership.owned(INST) == {(Kind.ACCOUNT, a["id"]) for a in accounts}


async def committed(emulator: RunningEmulator, operation: str) -> None:
    """Wait until the emulator has handled the request whose answer it holds back (a wait for
    the server's side of the exchange, not a timing assertion)."""
    give_up = time.monotonic() + 10
    while not any(
        entry["fault"] == "timeout-after-commit"
        for entry in emulator.control.request_log(operation)
    ):
        assert time.monotonic() < give_up, "the emulator never handled the request"
        await asyncio.sleep(0.05)


async def test_a_vendor_create_whose_answer_was_lost_is_adopted_not_created_twice(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    emulator.control.inject_fault(
        "timeout", commit=True, hang_ms=HANG_MS, count=1, operation="POST /v1/vendors"
    )
    wanted = vendor("V-1", "Paper Co")

    result = await apply(Plan((create(wanted),)), pleo, ownership)

    await committed(emulator, "POST /v1/vendors")
    assert (result.complete, result.failed) == (True, [])
    assert result.applied == {(Kind.VENDOR, Action.ADOPT): 1}
    [created] = data(emulator)["vendors"]
    assert created["externalId"] == "V-1"
    assert len(emulator.control.request_log("POST /v1/vendors")) == 1
    assert ownership.owned(INST) == {(Kind.VENDOR, created["id"])}


async def test_a_create_that_meets_a_409_adopts_the_record_and_brings_it_to_the_source(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    # Made in Pleo by a person after the plan was drawn: the same keys, in another case.
    emulator.control.seed(
        COMPANY,
        tag_groups=[{"code": "dept", "name": "Old", "tags": [{"code": "d-100", "name": "Old"}]}],
        tax_codes=[{"code": "s25", "name": "Old", "rate": 0.25}],
        vendors=[{"externalId": "v-1", "name": "Old"}],
        accounts=[{"externalId": "6100", "name": "Old"}],
    )
    wanted = [
        group("DEPT", "Departments"),
        tag("DEPT", "D-100", "Sales"),
        tax_code("S25", "VAT 25%"),
        vendor("V-1", "Paper Co"),
        account("6100", "Travel"),
    ]

    result = await apply(Plan(tuple(create(entry) for entry in wanted)), pleo, ownership)

    assert (result.complete, result.failed) == (True, [])
    assert result.applied == {
        (kind, action): 1 for kind in Kind for action in (Action.ADOPT, Action.UPDATE)
    }
    now = data(emulator)
    assert [(g["code"], g["name"]) for g in now["tag_groups"]] == [("DEPT", "Departments")]
    assert [(t["code"], t["name"]) for t in now["tags"]] == [("D-100", "Sales")]
    assert [(t["code"], t["name"]) for t in now["tax_codes"]] == [("S25", "VAT 25%")]
    assert [(v["externalId"], v["name"]) for v in now["vendors"]] == [("V-1", "Paper Co")]
    assert [(a["externalId"], a["name"]) for a in now["accounts"]] == [("6100", "Travel")]
    assert len(ownership.owned(INST)) == 5
    entries = await read_pleo_entries(pleo, COMPANY, ALL_KINDS)
    assert naive_plan(wanted, entries, ownership.owned(INST)).changes == ()


async def test_a_create_with_an_unknown_outcome_not_in_pleo_is_reported_and_made_next_run(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    emulator.control.inject_fault("error", status=500, count=1, operation="POST /v0/tax-codes")
    plan = Plan((create(tax_code("S25", "VAT 25%")), create(vendor("V-1", "Paper Co"))))

    first = await apply(plan, pleo, ownership)

    assert first.complete is True
    [problem] = first.failed
    assert (problem.kind, problem.reference) == (Kind.TAX_CODE, "S25")
    assert "next sync" in problem.message
    assert data(emulator)["tax_codes"] == []
    assert first.applied == {(Kind.VENDOR, Action.CREATE): 1}

    second = await apply(Plan(plan.changes[:1]), pleo, ownership)

    assert second.applied == {(Kind.TAX_CODE, Action.CREATE): 1}
    assert [t["code"] for t in data(emulator)["tax_codes"]] == ["S25"]


async def test_records_pleo_refuses_are_reported_one_by_one_and_the_run_goes_on(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    plan = Plan(
        (
            create(vendor("V-1", "Paper Co")),
            create(vendor("V-2", "Bad Co", currency="kroner")),
            create(vendor("V-3", "Ink Co")),
            create(account("6100", "Travel")),
            create(account("6200", "")),
            create(account("6300", "Meals")),
            create(account("6400", "x" * 300)),
        )
    )

    result = await apply(plan, pleo, ownership)

    assert result.complete is True
    problems = {(p.kind, p.reference): p.message for p in result.failed}
    assert set(problems) == {(Kind.VENDOR, "V-2"), (Kind.ACCOUNT, "6200"), (Kind.ACCOUNT, "6400")}
    assert "NAME_EMPTY" in problems[(Kind.ACCOUNT, "6200")]  # Pleo's reason for the batch item
    assert "at most 255" in problems[(Kind.ACCOUNT, "6400")]  # refused before it was sent
    assert "HTTP 400" in problems[(Kind.VENDOR, "V-2")]
    now = data(emulator)
    assert sorted(v["externalId"] for v in now["vendors"]) == ["V-1", "V-3"]
    assert sorted(a["externalId"] for a in now["accounts"]) == ["6100", "6300"]
    assert result.applied == {(Kind.VENDOR, Action.CREATE): 2, (Kind.ACCOUNT, Action.CREATE): 2}


async def test_a_transient_failure_that_outlives_the_retries_stops_the_run_incomplete(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    ids = seed_existing(emulator)
    emulator.control.inject_fault("error", status=503, operation="PUT /v0/tax-codes/{taxCodeId}")
    plan = Plan(
        (
            create(group("NEW", "New")),
            change(
                Action.UPDATE, tax_code("S25", "VAT 20%", "0.2"), ids["tax_codes"][0], values=True
            ),
            create(vendor("V-9", "Later Co")),
        )
    )

    result = await apply(plan, pleo, ownership)

    assert result.complete is False
    assert isinstance(result.stopped_by, InternalServerError)
    assert result.applied == {(Kind.TAG_GROUP, Action.CREATE): 1}
    assert "POST /v1/vendors" not in emulator.control.counters()  # nothing new after the stop
    [created] = [g for g in data(emulator)["tag_groups"] if g["code"] == "NEW"]
    assert ownership.owned(INST) == {(Kind.TAG_GROUP, created["id"])}


async def test_a_dead_credential_raises_after_recording_what_is_owned(
    emulator: RunningEmulator, ownership: MemoryOwnership
) -> None:
    ids = seed_existing(emulator)
    api_key = emulator.control.issue_api_key()
    emulator.control.revoke_api_key(api_key)
    plan = Plan(
        (
            change(Action.ADOPT, vendor("V-1", "Old Co"), ids["vendors"][0]),
            create(vendor("V-9", "New Co")),
        )
    )

    async with PleoClient(emulator.url, ApiKeyAuth(api_key)) as dead:
        with pytest.raises(AuthenticationError):
            await apply_plan(plan, dead, COMPANY, ownership, INST)

    assert ownership.owned(INST) == {(Kind.VENDOR, ids["vendors"][0])}


async def test_a_record_deleted_in_pleo_since_the_plan_is_reported_and_the_run_goes_on(
    emulator: RunningEmulator, pleo: PleoClient, ownership: MemoryOwnership
) -> None:
    plan = Plan(
        (
            Change(Kind.TAX_CODE, Action.ARCHIVE, "gone", pleo_id=str(uuid.uuid4())),
            create(tax_code("S25", "VAT 25%")),
        )
    )

    result = await apply(plan, pleo, ownership)

    [problem] = result.failed
    assert (problem.reference, problem.message) == ("gone", "it is no longer in Pleo")
    assert result.complete is True
    assert result.applied == {(Kind.TAX_CODE, Action.CREATE): 1}
