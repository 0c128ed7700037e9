"""The records a reader yields: the four kinds of master data, as the accounting system has them.

They are the minimum the settings page needs today; the sync engine widens them with what Pleo's
writes need.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SourceTag:
    code: str
    name: str
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceTagGroup:
    code: str
    name: str
    archived: bool = False
    tags: tuple[SourceTag, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SourceTaxCode:
    code: str
    name: str
    rate: str | None = None
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceVendor:
    code: str
    name: str
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceAccount:
    external_id: str
    name: str
    code: str | None = None
    archived: bool = False
