"""The records a reader yields: the four kinds of master data, as the accounting system has them,
with what Pleo's writes need.

Values are as the accounting system has them (a reader checks only the shape of its own format).
What Pleo would refuse (an empty code, a name too long, a rate out of range) and duplicates are
reported by the planner per record, not raised, so one bad record never stops a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal

    from pleo_connector.vocabulary import Kind

# Pleo documents 255 characters for an account's externalId, code and name (chart of accounts
# 24.9.0); it documents no limit for the other kinds, and this app holds them to the same.
MAX_TEXT = 255


class TaxCodeKind(StrEnum):
    """How a tax code's rate applies (Pleo's `TaxCodeType`)."""

    INCLUSIVE = "inclusive"
    EXCLUSIVE = "exclusive"
    REVERSE = "reverse"


@dataclass(frozen=True, slots=True)
class SourceTagGroup:
    """A dimension of the accounting system (departments, projects, jobs...). Its tags come from
    `SourceReader.tags()`, each naming its group, so a group of 100,000 tags still streams."""

    code: str
    name: str
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceTag:
    group_code: str
    code: str
    name: str
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceTaxCode:
    code: str
    name: str
    rate: Decimal  # a fraction: 0.25 is 25 %
    kind: TaxCodeKind = TaxCodeKind.INCLUSIVE
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceVendor:
    external_id: str
    name: str
    currency: str  # ISO 4217
    code: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    registration_number: str | None = None
    tax_registration_number: str | None = None
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceAccount:
    external_id: str
    name: str
    code: str | None = None
    tax_code: str | None = None  # the code of one of the source's tax codes
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceNotice:
    """What a reader tells the run about a record beyond the record itself: that it changed a
    value to fit Pleo (a name cleaned), or that it left the record out (`skipped`, with why).
    The run shows it with the records that had problems; a skipped record counts as not synced.
    `reference` is the record's code or external id, as the source has it."""

    kind: Kind
    reference: str
    message: str
    skipped: bool = False
