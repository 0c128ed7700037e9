"""Pleo's side of a sync: the company's records, read from list and search pages only, reduced to
the `Entry` values the planner compares with the source's.

Every kind is read, whatever the choices enable: a kind or tag group the customer switched off
must still be seen, so that what this installation owns of it is archived, and which records are
owned is not known here. That costs a few pages for a kind that is off; it never costs a write.

The per-kind functions below (`tag_group_entry` ... `account_entry`) turn one Pleo record into
its entry. Its values are built with `sync.normalise`, the functions the planner builds the
source's with, so equal values mean "no write needed"; its key with `sync.model`'s `match_key`
and `tag_key`. A record without a code (or external id, for vendors and accounts) gets the key
`""`, which no source record matches. `archived` is kept apart; a vendor counts as archived in
any state but ACTIVE (a DRAFT one is activated when the source has it).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pleo_connector.pleo.models import Account, Tag, TagGroup, TaxCode, Vendor, VendorState
from pleo_connector.sync import normalise
from pleo_connector.sync.model import Entry, Kind, match_key, tag_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from pleo_connector.installation_config import SyncChoices
    from pleo_connector.pleo.client import PleoClient

# The largest page Pleo's lists are known to serve: fewer pages, fewer requests.
PAGE_SIZE = 100
# Pages of one kind fetched at once (by offset, once the first page gave the total): a cursor
# read waits Pleo's latency per page, 10 s for 50 pages at 200 ms, whatever the budget allows.
# As for the applier's writes, rate x latency must stay in flight to use the budget.
PAGES_AT_ONCE = 16


async def read_pleo_entries(pleo: PleoClient, company_id: str, choices: SyncChoices) -> list[Entry]:
    """Every tag group (archived ones too), every tag of every group, tax code, vendor and
    account of the company, as entries in `Kind` order. `choices` does not narrow the read (see
    the module's docstring). The four kinds are read at the same time, each `PAGES_AT_ONCE`
    pages at once."""
    del choices  # every kind is read: what was switched off may still be owned
    tags, tax_codes, vendors, accounts = await asyncio.gather(
        _read_tags(pleo, company_id),
        _collect(
            pleo.tax_codes.search(company_id, page_size=PAGE_SIZE, pages_at_once=PAGES_AT_ONCE),
            tax_code_entry,
        ),
        _collect(
            pleo.vendors.search(company_id, page_size=PAGE_SIZE, pages_at_once=PAGES_AT_ONCE),
            vendor_entry,
        ),
        _collect(
            pleo.accounts.search(company_id, page_size=PAGE_SIZE, pages_at_once=PAGES_AT_ONCE),
            account_entry,
        ),
    )
    return [*tags, *tax_codes, *vendors, *accounts]


async def _read_tags(pleo: PleoClient, company_id: str) -> list[Entry]:
    """The groups (one unpaginated list), then the tags of all of them in one search."""
    groups = await pleo.tag_groups.list(company_id, include_archived=True)
    entries = [tag_group_entry(group) for group in groups]
    group_codes = {group.id: group.code or "" for group in groups}
    async for tag in pleo.tags.search(
        company_id, include_archived=True, page_size=PAGE_SIZE, pages_at_once=PAGES_AT_ONCE
    ):
        group_code = group_codes.get(tag.group_id or "")
        if group_code is not None:  # a tag of a group the list did not show has no key
            entries.append(tag_entry(tag, group_code))
    return entries


async def _collect[RecordT](
    records: AsyncIterator[RecordT], entry_of: Callable[[RecordT], Entry]
) -> list[Entry]:
    return [entry_of(record) async for record in records]


# --- Pleo records as entries: the values through `sync.normalise`, as the source's are ----------


def tag_group_entry(group: TagGroup) -> Entry:
    return Entry(
        kind=Kind.TAG_GROUP,
        key=match_key(group.code or ""),
        values=normalise.tag_group_values(code=group.code, name=group.name),
        archived=group.archived,
        pleo_id=group.id,
    )


def tag_entry(tag: Tag, group_code: str) -> Entry:
    values = normalise.tag_values(code=tag.code, name=tag.name)
    return Entry(
        kind=Kind.TAG,
        key=tag_key(group_code, values["code"]) if values["code"] else "",
        values=values,
        archived=tag.archived,
        pleo_id=tag.id,
        parent=match_key(group_code),
    )


def tax_code_entry(tax_code: TaxCode) -> Entry:
    return Entry(
        kind=Kind.TAX_CODE,
        key=match_key(tax_code.code or ""),
        values=normalise.tax_code_values(
            code=tax_code.code,
            name=tax_code.name,
            rate_value=tax_code.rate or 0,
            type=str(tax_code.type or ""),
        ),
        archived=tax_code.archived,
        pleo_id=tax_code.id,
    )


def vendor_entry(vendor: Vendor) -> Entry:
    return Entry(
        kind=Kind.VENDOR,
        key=match_key(vendor.external_id or ""),
        values=normalise.vendor_values(
            external_id=vendor.external_id,
            code=vendor.code,
            name=vendor.name,
            default_currency=vendor.default_currency,
            country_code=vendor.country,
            registration_number=vendor.registration_number,
            tax_registration_number=vendor.tax_registration_number,
        ),
        archived=vendor.state != VendorState.ACTIVE,
        pleo_id=vendor.id,
    )


def account_entry(account: Account) -> Entry:
    return Entry(
        kind=Kind.ACCOUNT,
        key=match_key(account.external_id or ""),
        values=normalise.account_values(
            external_id=account.external_id,
            code=account.code,
            name=account.name,
            tax_code_external_id=account.tax_code_external_id,
        ),
        archived=account.archived,
        pleo_id=account.id,
    )
