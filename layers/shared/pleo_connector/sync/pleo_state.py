"""Pleo's side of a sync: the company's records, read from list and search pages only, reduced to
the `Entry` values the planner compares with the source's.

Every kind is read, whatever the choices enable: a kind or tag group the customer switched off
must still be seen, so that what this installation owns of it is archived, and which records are
owned is not known here. That costs a few pages for a kind that is off; it never costs a write.

The per-kind functions below (`tag_group_entry` ... `account_entry`) are the one definition of
how a Pleo record is normalised. The planner normalises a source record to the same field names
with the same rules, so that equal values mean "no write needed":

| kind | key | values |
|---|---|---|
| tag group | `match_key(code)` | code, name |
| tag | `tag_key(group code, code)`, parent `match_key(group code)` | code, name |
| tax code | `match_key(code)` | code, name, rate (`rate_text`), type |
| vendor | `match_key(externalId)` | externalId, code, name, defaultCurrency, country, |
| | | registrationNumber, taxRegistrationNumber |
| account | `match_key(externalId)` | externalId, code, name, taxCodeExternalId |

`archived` is kept apart (a vendor is archived when its state is ARCHIVED). A record without a
code (or external id, for vendors and accounts) has no key to match: it is left out, so it is
never touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from pleo_connector.pleo.models import Account, Tag, TagGroup, TaxCode, Vendor, VendorState
from pleo_connector.sync.model import Entry, Kind, match_key, tag_key

if TYPE_CHECKING:
    from pleo_connector.installation_config import SyncChoices
    from pleo_connector.pleo.client import PleoClient

# The largest page Pleo's lists are known to serve: fewer pages, fewer requests.
PAGE_SIZE = 100


async def read_pleo_entries(pleo: PleoClient, company_id: str, choices: SyncChoices) -> list[Entry]:
    """Every tag group (archived ones too), every tag of every group, tax code, vendor and
    account of the company, as entries in `Kind` order. `choices` does not narrow the read (see
    the module's docstring). The four kinds are read at the same time."""
    del choices  # every kind is read: what was switched off may still be owned
    tags, tax_codes, vendors, accounts = await asyncio.gather(
        _read_tags(pleo, company_id),
        _collect(pleo.tax_codes.search(company_id, page_size=PAGE_SIZE), tax_code_entry),
        _collect(pleo.vendors.search(company_id, page_size=PAGE_SIZE), vendor_entry),
        _collect(pleo.accounts.search(company_id, page_size=PAGE_SIZE), account_entry),
    )
    return [*tags, *tax_codes, *vendors, *accounts]


async def _read_tags(pleo: PleoClient, company_id: str) -> list[Entry]:
    """The groups (one unpaginated list), then the tags of all of them in one search."""
    groups = await pleo.tag_groups.list(company_id, include_archived=True)
    entries = [entry for group in groups if (entry := tag_group_entry(group)) is not None]
    group_codes = {group.id: group.code for group in groups if group.code}
    async for tag in pleo.tags.search(company_id, include_archived=True, page_size=PAGE_SIZE):
        group_code = group_codes.get(tag.group_id or "")
        if group_code is not None and (entry := tag_entry(tag, group_code)) is not None:
            entries.append(entry)
    return entries


async def _collect[RecordT](
    records: AsyncIterator[RecordT], normalise: Callable[[RecordT], Entry | None]
) -> list[Entry]:
    entries: list[Entry] = []
    async for record in records:
        entry = normalise(record)
        if entry is not None:
            entries.append(entry)
    return entries


# --- Pleo records as entries: the planner's source side normalises to the same values ----------


def rate_text(rate: Decimal | float | str) -> str:
    """A rate as the text both sides compare: its shortest decimal form, no exponent and no
    trailing zeros ("0.25", "0.1", "0"). A float goes through its shortest repr, so 0.1 is
    "0.1", not the binary expansion."""
    if isinstance(rate, float):
        rate = repr(rate)
    text = format(Decimal(rate).normalize(), "f")
    return "0" if text in ("-0", "0") else text


def tag_group_entry(group: TagGroup) -> Entry | None:
    if not group.code:
        return None
    return Entry(
        kind=Kind.TAG_GROUP,
        key=match_key(group.code),
        values={"code": group.code, "name": group.name},
        archived=group.archived,
        pleo_id=group.id,
    )


def tag_entry(tag: Tag, group_code: str) -> Entry | None:
    if not tag.code:
        return None
    return Entry(
        kind=Kind.TAG,
        key=tag_key(group_code, tag.code),
        values={"code": tag.code, "name": tag.name},
        archived=tag.archived,
        pleo_id=tag.id,
        parent=match_key(group_code),
    )


def tax_code_entry(tax_code: TaxCode) -> Entry | None:
    if not tax_code.code:
        return None
    return Entry(
        kind=Kind.TAX_CODE,
        key=match_key(tax_code.code),
        values={
            "code": tax_code.code,
            "name": tax_code.name,
            "rate": None if tax_code.rate is None else rate_text(tax_code.rate),
            "type": None if tax_code.type is None else str(tax_code.type),
        },
        archived=tax_code.archived,
        pleo_id=tax_code.id,
    )


def vendor_entry(vendor: Vendor) -> Entry | None:
    if not vendor.external_id:
        return None
    return Entry(
        kind=Kind.VENDOR,
        key=match_key(vendor.external_id),
        values={
            "externalId": vendor.external_id,
            "code": vendor.code,
            "name": vendor.name,
            "defaultCurrency": vendor.default_currency,
            "country": vendor.country,
            "registrationNumber": vendor.registration_number,
            "taxRegistrationNumber": vendor.tax_registration_number,
        },
        archived=vendor.state == VendorState.ARCHIVED,
        pleo_id=vendor.id,
    )


def account_entry(account: Account) -> Entry | None:
    if not account.external_id:
        return None
    return Entry(
        kind=Kind.ACCOUNT,
        key=match_key(account.external_id),
        values={
            "externalId": account.external_id,
            "code": account.code,
            "name": account.name,
            "taxCodeExternalId": account.tax_code_external_id,
        },
        archived=account.archived,
        pleo_id=account.id,
    )
