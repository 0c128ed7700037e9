"""Snapshot documents for the JSON adapter's tests: the published example, and a sink that
records what a reader hands it."""

from __future__ import annotations

import copy
import json
from typing import Any

from pleo_connector.adapters.snapshot_v1 import AccountV1, TagGroupV1, TagV1, TaxCodeV1, VendorV1

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
