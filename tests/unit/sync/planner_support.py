"""A source reader over lists and Pleo entries built as the Pleo-side reader builds them (with
`sync.normalise`), for the planner's tests."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Self

from pleo_connector.adapters.records import (
    SourceAccount,
    SourceTag,
    SourceTagGroup,
    SourceTaxCode,
    SourceVendor,
)
from pleo_connector.sync import normalise
from pleo_connector.sync.model import Entry, Kind, match_key, tag_key

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from types import TracebackType


class ListReader:
    """Streams lists, each at most once (a reader need not be able to read a stream twice)."""

    def __init__(
        self,
        *,
        groups: Sequence[SourceTagGroup] = (),
        tags: Sequence[SourceTag] = (),
        tax_codes: Sequence[SourceTaxCode] = (),
        vendors: Sequence[SourceVendor] = (),
        accounts: Sequence[SourceAccount] = (),
    ) -> None:
        self._groups, self._tags, self._tax_codes = groups, tags, tax_codes
        self._vendors, self._accounts = vendors, accounts
        self.reads: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def _read[T](self, name: str, records: Sequence[T]) -> Iterator[T]:
        assert name not in self.reads, f"{name} read twice"
        self.reads.append(name)
        return iter(records)

    def tag_groups(self) -> Iterator[SourceTagGroup]:
        return self._read("tag_groups", self._groups)

    def tags(self) -> Iterator[SourceTag]:
        return self._read("tags", self._tags)

    def tax_codes(self) -> Iterator[SourceTaxCode]:
        return self._read("tax_codes", self._tax_codes)

    def vendors(self) -> Iterator[SourceVendor]:
        return self._read("vendors", self._vendors)

    def accounts(self) -> Iterator[SourceAccount]:
        return self._read("accounts", self._accounts)


def group_entry(pleo_id: str, code: str, name: str, *, archived: bool = False) -> Entry:
    return Entry(
        kind=Kind.TAG_GROUP,
        key=match_key(code),
        values=normalise.tag_group_values(code=code, name=name),
        archived=archived,
        pleo_id=pleo_id,
    )


def tag_entry(
    pleo_id: str, group_code: str, code: str, name: str, *, archived: bool = False
) -> Entry:
    return Entry(
        kind=Kind.TAG,
        key=tag_key(group_code, code),
        values=normalise.tag_values(code=code, name=name),
        archived=archived,
        pleo_id=pleo_id,
        parent=match_key(group_code),
    )


def tax_entry(
    pleo_id: str,
    code: str,
    name: str,
    rate: float,
    *,
    type: str = "inclusive",
    archived: bool = False,
) -> Entry:
    return Entry(
        kind=Kind.TAX_CODE,
        key=match_key(code),
        values=normalise.tax_code_values(code=code, name=name, rate_value=rate, type=type),
        archived=archived,
        pleo_id=pleo_id,
    )


def vendor_entry(
    pleo_id: str,
    external_id: str,
    name: str,
    currency: str = "DKK",
    *,
    code: str | None = None,
    country: str | None = None,
    registration_number: str | None = None,
    tax_registration_number: str | None = None,
    archived: bool = False,
) -> Entry:
    return Entry(
        kind=Kind.VENDOR,
        key=match_key(external_id),
        values=normalise.vendor_values(
            external_id=external_id,
            code=code,
            name=name,
            default_currency=currency,
            country_code=country,
            registration_number=registration_number,
            tax_registration_number=tax_registration_number,
        ),
        archived=archived,
        pleo_id=pleo_id,
    )


def account_entry(
    pleo_id: str,
    external_id: str,
    name: str,
    *,
    code: str | None = None,
    tax_code: str | None = None,
    archived: bool = False,
) -> Entry:
    return Entry(
        kind=Kind.ACCOUNT,
        key=match_key(external_id),
        values=normalise.account_values(
            external_id=external_id, code=code, name=name, tax_code_external_id=tax_code
        ),
        archived=archived,
        pleo_id=pleo_id,
    )


def tax_code(
    code: str, name: str = "VAT", rate: str = "0.25", *, archived: bool = False
) -> SourceTaxCode:
    return SourceTaxCode(code=code, name=name, rate=Decimal(rate), archived=archived)
