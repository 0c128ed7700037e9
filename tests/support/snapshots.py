"""Snapshot documents for the JSON adapter's tests: the published example, generated ones, a sink
that records what a reader hands it, and both sides of a sync in one shape, to compare."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pleo_connector.pleo.models import Account, Tag, TagGroup, TaxCode, Vendor, VendorState

if TYPE_CHECKING:
    from collections.abc import Collection

    from pleo_connector.adapters.snapshot_v1 import (
        AccountV1,
        TagGroupV1,
        TagV1,
        TaxCodeV1,
        VendorV1,
    )

# The example of docs/adapters.md (and of the format's issue), as a Python value.
EXAMPLE: dict[str, Any] = {
    "version": 1,
    "tagGroups": [
        {
            "code": "DEPT",
            "name": "Departments",
            "archived": False,
            "tags": [{"code": "D-100", "name": "Sales", "archived": False}],
        }
    ],
    "taxCodes": [
        {"code": "S25", "name": "VAT 25%", "rate": 0.25, "type": "inclusive", "archived": False}
    ],
    "vendors": [
        {
            "externalId": "V-1",
            "code": "V-1",
            "name": "Paper Co",
            "currency": "DKK",
            "country": "DK",
            "registrationNumber": None,
            "taxRegistrationNumber": None,
            "archived": False,
        }
    ],
    "accounts": [
        {
            "externalId": "6100",
            "code": "6100",
            "name": "Travel",
            "taxCode": "S25",
            "archived": False,
        }
    ],
}


def example() -> dict[str, Any]:
    """A fresh copy of the example, for a test to change."""
    return copy.deepcopy(EXAMPLE)


def encoded(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


class RecordingSink:
    """A `SnapshotSink` that keeps everything, in order."""

    def __init__(self) -> None:
        self.groups: list[tuple[int, TagGroupV1]] = []
        self.tags: list[tuple[int, TagV1]] = []
        self.tax_codes: list[TaxCodeV1] = []
        self.vendors: list[VendorV1] = []
        self.accounts: list[AccountV1] = []

    def tag_group(self, index: int, group: TagGroupV1) -> None:
        self.groups.append((index, group))

    def tag(self, group_index: int, tag: TagV1) -> None:
        self.tags.append((group_index, tag))

    def tax_code(self, tax_code: TaxCodeV1) -> None:
        self.tax_codes.append(tax_code)

    def vendor(self, vendor: VendorV1) -> None:
        self.vendors.append(vendor)

    def account(self, account: AccountV1) -> None:
        self.accounts.append(account)


def generated(
    tags: dict[str, int], *, tax_codes: int = 0, vendors: int = 0, accounts: int = 0
) -> dict[str, Any]:
    """A valid snapshot with `tags[code]` tags in each group `code` and that many of each other
    kind; every account refers to the first tax code, when there is one."""
    return {
        "version": 1,
        "tagGroups": [
            {
                "code": group,
                "name": f"Group {group}",
                "archived": False,
                "tags": [
                    {"code": f"{group}-{i:04d}", "name": f"Tag {group} {i}", "archived": False}
                    for i in range(count)
                ],
            }
            for group, count in tags.items()
        ],
        "taxCodes": [
            {
                "code": f"T{i}",
                "name": f"Tax {i}",
                "rate": 0.25 if i % 2 == 0 else 0.125,
                "type": "inclusive" if i % 2 == 0 else "exclusive",
                "archived": False,
            }
            for i in range(tax_codes)
        ],
        "vendors": [
            {
                "externalId": f"V-{i}",
                "code": f"V-{i}",
                "name": f"Vendor {i}",
                "currency": "DKK" if i % 2 == 0 else "EUR",
                "country": "DK",
                "registrationNumber": None,
                "taxRegistrationNumber": None,
                "archived": False,
            }
            for i in range(vendors)
        ],
        "accounts": [
            {
                "externalId": str(6000 + i),
                "code": str(6000 + i),
                "name": f"Account {i}",
                "taxCode": "T0" if tax_codes else None,
                "archived": False,
            }
            for i in range(accounts)
        ],
    }


# One kind's records by key: what a sync must make equal on both sides.
type View = dict[str, dict[tuple[str, ...], tuple[Any, ...]]]


def snapshot_view(document: dict[str, Any], tag_groups: Collection[str]) -> View:
    """What the snapshot asks of Pleo with these tag groups (and every other kind) selected."""
    groups = [g for g in document["tagGroups"] if g["code"] in tag_groups]
    return {
        "tag_groups": {(g["code"],): (g["name"], g["archived"]) for g in groups},
        "tags": {
            (g["code"], t["code"]): (t["name"], t["archived"] or g["archived"])
            for g in groups
            for t in g["tags"]
        },
        "tax_codes": {
            (t["code"],): (t["name"], Decimal(str(t["rate"])), t["type"], t["archived"])
            for t in document["taxCodes"]
        },
        "vendors": {
            (v["externalId"],): (v["code"], v["name"], v["currency"], v["country"], v["archived"])
            for v in document["vendors"]
        },
        "accounts": {
            (a["externalId"],): (a["code"], a["name"], a["taxCode"], a["archived"])
            for a in document["accounts"]
        },
    }


def pleo_view(data: dict[str, list[dict[str, Any]]]) -> View:
    """The emulator's records of one company (`EmulatorControl.data`), in `snapshot_view`'s
    shape: read with the client's models, compared field by field."""
    groups = [TagGroup.model_validate(row) for row in data["tag_groups"]]
    code_of = {group.id: group.code or "" for group in groups}
    tags = [Tag.model_validate(row) for row in data["tags"]]
    tax_codes = [TaxCode.model_validate(row) for row in data["tax_codes"]]
    vendors = [Vendor.model_validate(row) for row in data["vendors"]]
    accounts = [Account.model_validate(row) for row in data["accounts"]]
    return {
        "tag_groups": {(g.code or "",): (g.name, g.archived) for g in groups},
        "tags": {(code_of[t.group_id or ""], t.code or ""): (t.name, t.archived) for t in tags},
        "tax_codes": {
            (t.code or "",): (t.name, Decimal(str(t.rate)), str(t.type), t.archived)
            for t in tax_codes
        },
        "vendors": {
            (v.external_id or "",): (
                v.code,
                v.name,
                v.default_currency,
                v.country,
                v.state != VendorState.ACTIVE,
            )
            for v in vendors
        },
        "accounts": {
            (a.external_id or "",): (a.code, a.name, a.tax_code_external_id, a.archived)
            for a in accounts
        },
    }
