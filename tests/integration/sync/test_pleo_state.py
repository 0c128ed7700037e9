"""Reading Pleo's side against the emulator: list and search pages only, one page per 100 records
of each kind, every kind whatever the choices, and records normalised as the planner compares
them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest

from pleo_connector.installation_config import SyncChoices
from pleo_connector.sync.model import Entry, Kind, match_key, tag_key
from pleo_connector.sync.pleo_state import read_pleo_entries
from tests.support.emulator import DEFAULT_COMPANY_ID, RunningEmulator

if TYPE_CHECKING:
    from pleo_connector.pleo.client import PleoClient

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

COMPANY = DEFAULT_COMPANY_ID


async def test_a_read_costs_one_page_per_100_records_of_each_kind_and_writes_nothing(
    emulator: RunningEmulator, pleo: PleoClient
) -> None:
    sizes = {"JOBS": 230, "DEPT": 20, "EMPTY": 0}
    emulator.control.seed(
        COMPANY,
        tag_groups=[
            {"code": code, "tags": [{"code": f"{code}-{n}"} for n in range(size)]}
            for code, size in sizes.items()
        ],
        tax_codes=[{"code": f"T{n}", "name": f"Tax {n}", "rate": 0.1} for n in range(5)],
        vendors=[{"externalId": f"V-{n}", "name": f"Vendor {n}"} for n in range(101)],
    )

    # Nothing enabled: every kind is still read (what is owned of a kind switched off is archived).
    entries = await read_pleo_entries(
        pleo, COMPANY, SyncChoices(tax_codes=False, vendors=False, accounts=False)
    )

    kinds = [entry.kind for entry in entries]
    assert kinds.count(Kind.TAG_GROUP) == 3
    assert kinds.count(Kind.TAG) == 250
    assert (kinds.count(Kind.TAX_CODE), kinds.count(Kind.VENDOR)) == (5, 101)
    assert emulator.control.counters() == {
        "GET /v0/tag-groups": 1,
        "POST /v0/tags:search": math.ceil(250 / 100),
        "POST /v0/tax-codes:search": 1,
        "POST /v1/vendors:search": math.ceil(101 / 100),
        "POST /v1/chart-of-accounts:search": 1,
    }
    assert kinds == sorted(kinds, key=list(Kind).index)  # in the order a run applies them


async def test_records_are_normalised_archived_ones_included_keyless_ones_under_the_empty_key(
    emulator: RunningEmulator, pleo: PleoClient
) -> None:
    ids = emulator.control.seed(
        COMPANY,
        tag_groups=[
            {
                "code": "Dept",
                "name": "Departments",
                "archived": True,
                "tags": [{"code": "D-1", "name": "Sales", "archived": True}],
            }
        ],
        tax_codes=[
            {"code": "S25", "name": "VAT", "rate": 0.250, "type": "reverse"},
            {"code": None, "name": "No code", "rate": 0.1},
        ],
        vendors=[
            {
                "externalId": "V-1",
                "code": "C1",
                "name": "Paper",
                "state": "ARCHIVED",
                "country": "DK",
            },
            {"name": "A draft a person started", "state": "DRAFT"},
        ],
        accounts=[
            {"externalId": "6100", "code": "61", "name": "Travel", "taxCodeExternalId": "S25"}
        ],
    )

    entries = await read_pleo_entries(pleo, COMPANY, SyncChoices())

    assert entries == [
        Entry(
            Kind.TAG_GROUP,
            "dept",
            {"code": "Dept", "name": "Departments"},
            archived=True,
            pleo_id=ids["tag_groups"][0],
        ),
        Entry(
            Kind.TAG,
            tag_key("Dept", "D-1"),
            {"code": "D-1", "name": "Sales"},
            archived=True,
            pleo_id=ids["tags"][0],
            parent="dept",
        ),
        Entry(
            Kind.TAX_CODE,
            "s25",
            {"code": "S25", "name": "VAT", "rate": "0.25", "type": "reverse"},
            pleo_id=ids["tax_codes"][0],
        ),
        Entry(
            Kind.TAX_CODE,
            "",
            {"code": "", "name": "No code", "rate": "0.1", "type": "inclusive"},
            pleo_id=ids["tax_codes"][1],
        ),
        Entry(
            Kind.VENDOR,
            match_key("V-1"),
            {
                "externalId": "V-1",
                "code": "C1",
                "name": "Paper",
                "defaultCurrency": "DKK",
                "country": "DK",
                "registrationNumber": None,
                "taxRegistrationNumber": None,
            },
            archived=True,
            pleo_id=ids["vendors"][0],
        ),
        Entry(
            Kind.VENDOR,
            "",
            {
                "externalId": "",
                "code": None,
                "name": "A draft a person started",
                "defaultCurrency": "DKK",
                "country": None,
                "registrationNumber": None,
                "taxRegistrationNumber": None,
            },
            archived=True,  # a DRAFT is not active
            pleo_id=ids["vendors"][1],
        ),
        Entry(
            Kind.ACCOUNT,
            "6100",
            {"externalId": "6100", "code": "61", "name": "Travel", "taxCodeExternalId": "S25"},
            pleo_id=ids["accounts"][0],
        ),
    ]
