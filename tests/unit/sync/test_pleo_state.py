"""Pleo's records as entries: the keys and values the planner compares with the source's.

The rate is the one value that crosses a representation: the source holds a Decimal, Pleo a JSON
number. Both must come out as the same text, or every run would rewrite every tax code.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pleo_connector.installation_config import SyncChoices
from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.models import Account, Tag, TagGroup, TaxCode, Vendor
from pleo_connector.sync import normalise
from pleo_connector.sync.model import Kind, match_key, tag_key
from pleo_connector.sync.pleo_state import (
    PAGE_SIZE,
    PAGES_AT_ONCE,
    account_entry,
    read_pleo_entries,
    tag_entry,
    tag_group_entry,
    tax_code_entry,
    vendor_entry,
)

if TYPE_CHECKING:
    from decimal import Decimal

pytestmark = pytest.mark.unit


@given(st.decimals(min_value=0, max_value=1, places=6, allow_nan=False, allow_infinity=False))
def test_a_source_rate_and_the_same_rate_back_from_pleo_read_alike(rate: Decimal) -> None:
    # What the applier sends (a float in JSON) and what Pleo answers with, parsed again.
    from_pleo = json.loads(json.dumps(float(rate)))
    tax_code = tax_code_entry(TaxCode(id="x", code="S", name="n", rate=from_pleo, type="inclusive"))

    assert tax_code.values["rate"] == normalise.rate(rate)


def test_a_tag_is_keyed_within_its_group_case_insensitively() -> None:
    entry = tag_entry(Tag(id="t1", group_id="g1", code=" D-100 ", name="Sales"), "Dept")

    assert (entry.kind, entry.key, entry.parent) == (Kind.TAG, tag_key("dept", "d-100"), "dept")
    assert dict(entry.values) == {"code": "D-100", "name": "Sales"}  # case kept, space not


def test_a_vendor_is_active_only_in_the_active_state() -> None:
    def archived(state: str) -> bool:
        return vendor_entry(Vendor(id="v", external_id="V-1", state=state, name="n")).archived

    # A DRAFT vendor the source has is activated, as an archived one is.
    assert (archived("ACTIVE"), archived("ARCHIVED"), archived("DRAFT")) == (False, True, True)


def test_records_without_a_key_get_the_empty_key_nothing_matches() -> None:
    assert tag_group_entry(TagGroup(id="g", code=None, name="No code")).key == ""
    assert tag_entry(Tag(id="t", code="  "), "G").key == ""
    assert tax_code_entry(TaxCode(id="x", code=None, name="n", rate=0.1)).key == ""
    assert vendor_entry(Vendor(id="v", name="Draft")).key == ""
    assert account_entry(Account(id="a", external_id="", name="n")).key == ""


def test_every_kind_keeps_exactly_the_fields_the_app_writes() -> None:
    group = tag_group_entry(TagGroup(id="g", code="DEPT", name="Departments", archived=True))
    tax = tax_code_entry(
        TaxCode(
            id="x", code="S25", name="VAT", rate=0.25, type="exclusive", ingoing_tax_account="1"
        )
    )
    account = account_entry(
        Account(id="a", external_id="6100", code="61", name="Travel", metadata={"k": {}})
    )

    assert (group.key, dict(group.values), group.archived) == (
        "dept",
        {"code": "DEPT", "name": "Departments"},
        True,
    )
    assert dict(tax.values) == {"code": "S25", "name": "VAT", "rate": "0.25", "type": "exclusive"}
    assert (account.key, dict(account.values)) == (
        match_key("6100"),
        {"externalId": "6100", "code": "61", "name": "Travel", "taxCodeExternalId": None},
    )


class PagedPleo:
    """Pleo answering the reads of a sync from memory: one tag group holding `tags` tags, no
    other records; it counts the tag searches in flight at once."""

    def __init__(self, tags: int) -> None:
        self.tags = [{"id": f"t{n}", "groupId": "g1", "code": f"T-{n}"} for n in range(tags)]
        self.in_flight = 0
        self.most_in_flight = 0
        self.tag_searches = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v0/tag-groups":
            return httpx.Response(200, json={"data": [{"id": "g1", "code": "DEPT", "name": "D"}]})
        records: list[dict[str, str]] = []
        if request.url.path == "/v0/tags:search":
            self.tag_searches += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            for _ in range(3):  # hand the loop back: searches sent together overlap here
                await asyncio.sleep(0)
            self.in_flight -= 1
            records = self.tags
        start = int(request.url.params.get("offset", 0))
        if request.url.params.get("after"):
            start = next(n for n, r in enumerate(records) if r["id"] == request.url.params["after"])
            start += 1
        chunk = records[start : start + int(request.url.params["limit"])]
        info: dict[str, object] = {
            "hasNextPage": start + len(chunk) < len(records),
            "hasPreviousPage": start > 0,
            "endCursor": chunk[-1]["id"] if chunk else None,
            "total": len(records),
            "currentRequestPagination": {"parameters": {}},
        }
        return httpx.Response(200, json={"data": chunk, "pagination": info})


@pytest.mark.anyio
async def test_a_large_kind_is_read_many_pages_at_once_each_page_once() -> None:
    pages = 2 * PAGES_AT_ONCE + 1  # the pages after the first fill the window twice
    pleo_side = PagedPleo(tags=pages * PAGE_SIZE - 7)
    http = httpx.AsyncClient(transport=httpx.MockTransport(pleo_side))

    async with PleoClient("https://pleo.test", ApiKeyAuth("key"), http=http) as pleo:
        entries = await read_pleo_entries(pleo, "c1", SyncChoices())
    await http.aclose()

    tags = [entry.pleo_id for entry in entries if entry.kind is Kind.TAG]
    assert tags == [tag["id"] for tag in pleo_side.tags]
    assert pleo_side.tag_searches == pages
    assert pleo_side.most_in_flight == PAGES_AT_ONCE
