"""The one definition of what this app writes to Pleo, per kind, and how it is compared.

Both sides of a sync build an `Entry`'s `values` with these functions: the planner from the
source's records, the Pleo-side reader from Pleo's. Two values that are equal after normalising
need no write. Every function is idempotent (normalising a normalised value changes nothing), so
what the applier writes reads back equal, and the next run plans nothing.

Fields (Pleo's own names, as its writes take them) and rules:

| kind      | key                         | values                                                |
|-----------|-----------------------------|-------------------------------------------------------|
| tag group | `match_key(code)`           | code, name                                            |
| tag       | `tag_key(group code, code)` | code, name (its group's key is `Entry.parent`)        |
| tax code  | `match_key(code)`           | code, name, rate, type                                |
| vendor    | `match_key(externalId)`     | externalId, code, name, defaultCurrency, country,     |
|           |                             | registrationNumber, taxRegistrationNumber             |
| account   | `match_key(externalId)`     | externalId, code, name, taxCodeExternalId             |

- Text: surrounding white space removed, case kept (a change of case is an update). An optional
  field that is empty is None, so Pleo's `""` and `null` compare equal.
- `rate`: Pleo keeps a JSON number (a double), so the rate is the shortest decimal string of the
  double nearest to it, without trailing zeros or exponent: `"0.25"`, `"0"`, `"1"`,
  `"0.0000001"`. The applier writes `float(rate)`; Pleo's float reads back as the same string.
- `type`: the tax code type's value (`inclusive`, `exclusive`, `reverse`).
- `defaultCurrency` and `country`: upper case; Pleo's country `UNDEFINED` is None.
- `taxCodeExternalId`: the code of the tax code the account names, as the source spells that tax
  code (the planner resolves the reference; Pleo matches it to a tax code's `code`).
- `archived` is not a value: it is `Entry.archived`, with actions of its own. For a vendor, it is
  true for any state but `ACTIVE` (a `DRAFT` vendor is activated, as Pleo's guidance says).

A Pleo record without a key (a vendor with no `externalId`) has key `""`, which nothing matches.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pleo_connector.sync.model import match_key
from pleo_connector.vocabulary import Kind

if TYPE_CHECKING:
    from collections.abc import Mapping

VALUE_FIELDS: Mapping[Kind, tuple[str, ...]] = {
    Kind.TAG_GROUP: ("code", "name"),
    Kind.TAG: ("code", "name"),
    Kind.TAX_CODE: ("code", "name", "rate", "type"),
    Kind.VENDOR: (
        "externalId",
        "code",
        "name",
        "defaultCurrency",
        "country",
        "registrationNumber",
        "taxRegistrationNumber",
    ),
    Kind.ACCOUNT: ("externalId", "code", "name", "taxCodeExternalId"),
}

_NO_COUNTRY = "UNDEFINED"  # Pleo's CountryCode for "none"


def text(value: str | None) -> str:
    """A required text field: surrounding white space removed (None reads as empty)."""
    return (value or "").strip()


def optional_text(value: str | None) -> str | None:
    """An optional text field: None when empty."""
    return (value or "").strip() or None


def rate(value: Decimal | float | int) -> str:
    """A tax rate (a fraction) as the decimal string of the double Pleo stores."""
    exact = Decimal(repr(float(value))).normalize()
    return "0" if exact.is_zero() else format(exact, "f")


def currency(value: str | None) -> str | None:
    return (value or "").strip().upper() or None


def country(value: str | None) -> str | None:
    code = (value or "").strip().upper()
    return None if not code or code == _NO_COUNTRY else code


def tag_group_values(*, code: str | None, name: str | None) -> dict[str, Any]:
    return {"code": text(code), "name": text(name)}


def tag_values(*, code: str | None, name: str | None) -> dict[str, Any]:
    return {"code": text(code), "name": text(name)}


def tax_code_values(
    *, code: str | None, name: str | None, rate_value: Decimal | float | int, type: str
) -> dict[str, Any]:
    return {"code": text(code), "name": text(name), "rate": rate(rate_value), "type": str(type)}


def vendor_values(
    *,
    external_id: str | None,
    code: str | None,
    name: str | None,
    default_currency: str | None,
    country_code: str | None,
    registration_number: str | None,
    tax_registration_number: str | None,
) -> dict[str, Any]:
    return {
        "externalId": text(external_id),
        "code": optional_text(code),
        "name": text(name),
        "defaultCurrency": currency(default_currency),
        "country": country(country_code),
        "registrationNumber": optional_text(registration_number),
        "taxRegistrationNumber": optional_text(tax_registration_number),
    }


def account_values(
    *,
    external_id: str | None,
    code: str | None,
    name: str | None,
    tax_code_external_id: str | None,
) -> dict[str, Any]:
    return {
        "externalId": text(external_id),
        "code": optional_text(code),
        "name": text(name),
        "taxCodeExternalId": optional_text(tax_code_external_id),
    }


# Fields that are the match key itself: records match without regard to their case, and Pleo does
# not change an account's externalId on update, so a difference in case alone is not a change
# (comparing it exactly would plan the same update on every run).
KEY_FIELDS: Mapping[Kind, str] = {Kind.VENDOR: "externalId", Kind.ACCOUNT: "externalId"}


def differs(kind: Kind, wanted: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether a record holding `current` needs a write to hold `wanted` (both normalised)."""
    key_field = KEY_FIELDS.get(kind)
    for name in VALUE_FIELDS[kind]:
        left, right = wanted.get(name), current.get(name)
        if name == key_field and isinstance(left, str) and isinstance(right, str):
            left, right = match_key(left), match_key(right)
        if left != right:
            return True
    return False
