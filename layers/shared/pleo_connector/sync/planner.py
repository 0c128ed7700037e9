"""The planner: the source and Pleo in, a typed plan out. Pure: it reads the source's streams and
the Pleo entries it is given, and writes nothing anywhere.

The rules, in the order a record meets them:

- **Selection.** Only what the customer picked is synced: the tag groups named in
  `SyncChoices.tag_groups` (codes compared without regard to case) and the tags of those that
  are active in the source; tax codes, vendors and accounts when switched on. A kind that is off
  is not read (tax codes are read for accounts' references only when tax codes are on; when off,
  a reference is checked against Pleo's tax codes).
- **Matching.** By key (`sync.model.match_key`, `tag_key`): code for tag groups, tags (within
  their group) and tax codes; `externalId` for vendors and accounts.
- **Ownership.** Only records this installation owns are archived, unarchived or updated: those
  it created and those it adopted. An unowned Pleo record whose key a selected source record has
  is adopted (ADOPT, then UNARCHIVE and UPDATE as needed); any other unowned record is never
  touched.
- **Never a delete.** An owned record whose key the selection lacks (vanished, archived in the
  source, deselected, or its kind switched off) is archived; one that comes back is unarchived. A
  record archived in the source and absent from Pleo is not created. An archived record's fields
  are left as they are: an UPDATE targets a record that is active after it, but for one case. An
  account archived while it names a tax code Pleo no longer has gets an UPDATE without that
  reference with its ARCHIVE (Pleo refuses a write that names a tax code it lacks).
- **Reports, not crashes.** A record is left out, with a `RecordProblem`, when its key is empty,
  when an earlier record of the source has its key (the first one is kept: a source is read in
  its own stable order, and one stray duplicate should not stop a record that syncs), or when
  Pleo would refuse a value: an empty name, text longer than `MAX_TEXT`, a rate outside [0, 1],
  a currency that is not 3 letters, a country that is not 2 letters, a vendor code an earlier
  active vendor has (Pleo keeps vendor codes unique). The Pleo record of a left-out key is left
  as it is, not archived; so are the tags of a left-out tag group. A tag naming a picked group
  the source does not have is reported. An account naming a tax code that will not be in Pleo
  (not in the source, left out, or archived and never created) is synced without the reference,
  and reported.
- **Order.** Changes follow `Kind` (tag groups before tags, tax codes before accounts), then
  the key, then ADOPT, UNARCHIVE, UPDATE, ARCHIVE for one record, so they apply in order and the
  same inputs give the same plan. Problems follow the source's order.

Memory: each stream is read once, in `Kind` order, and each record is decided as it is read, so
only keys (and the Pleo entries given) are held, never the source's records. The caller opens
and closes the reader; a stream that fails raises, and no plan is made from half a source.
`pleo` must hold every Pleo record of every kind this installation may own (also of kinds and
groups that are deselected), so that what it owns there can be archived.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pleo_connector.adapters.records import MAX_TEXT
from pleo_connector.sync import normalise
from pleo_connector.sync.model import (
    Action,
    Change,
    Entry,
    Kind,
    Plan,
    RecordProblem,
    match_key,
    tag_key,
)

if TYPE_CHECKING:
    from decimal import Decimal

    from pleo_connector.adapters.base import SourceReader
    from pleo_connector.adapters.records import (
        SourceAccount,
        SourceTag,
        SourceTagGroup,
        SourceTaxCode,
        SourceVendor,
    )
    from pleo_connector.installation_config import SyncChoices

__all__ = ["MAX_TEXT", "plan_sync"]

_SHOWN = 80  # characters of a reference a problem repeats
_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_KIND_ORDER = {kind: position for position, kind in enumerate(Kind)}
_ACTION_ORDER = {
    Action.CREATE: 0,
    Action.ADOPT: 1,
    Action.UNARCHIVE: 2,
    Action.UPDATE: 3,
    Action.ARCHIVE: 4,
}
_NOUN = {
    Kind.TAG_GROUP: "tag group",
    Kind.TAG: "tag",
    Kind.TAX_CODE: "tax code",
    Kind.VENDOR: "vendor",
    Kind.ACCOUNT: "account",
}
_WITHOUT_TAX_CODE = "the account is synced without a tax code"


def plan_sync(
    reader: SourceReader,
    pleo: Iterable[Entry],
    owned: Collection[tuple[Kind, str]],
    choices: SyncChoices,
) -> Plan:
    """What to write so that Pleo's owned records follow the source's selection.

    `owned` holds (kind, pleo_id) of the records this installation created or adopted."""
    planner = _Planner(pleo, owned if isinstance(owned, Set) else frozenset(owned))
    chosen = {key for key in map(match_key, choices.tag_groups) if key}
    groups: dict[str, _Group] = {}
    if chosen:
        groups = planner.tag_groups(reader.tag_groups(), chosen)
        planner.tags(reader.tags(), groups, chosen)
    planner.finish(Kind.TAG_GROUP)
    planner.finish(Kind.TAG, held_parents={key for key, group in groups.items() if group.held})
    if choices.tax_codes:
        references = planner.tax_codes(reader.tax_codes())
    else:
        references = planner.pleo_tax_codes()
    planner.finish(Kind.TAX_CODE)
    planner.tax_codes_after_plan(references)
    if choices.vendors:
        planner.vendors(reader.vendors())
    planner.finish(Kind.VENDOR)
    if choices.accounts:
        planner.accounts(reader.accounts(), references)
    planner.finish(Kind.ACCOUNT)
    return planner.plan()


@dataclass(frozen=True, slots=True)
class _Group:
    """A picked tag group as the source has it: whether its tags are synced, and its Pleo id."""

    active: bool
    held: bool
    pleo_id: str | None


@dataclass(slots=True)
class _TaxCodeReferences:
    """What an account's tax code reference becomes: the code to write, or why there is none."""

    codes: dict[str, str]
    refused: dict[str, str]
    missing: str  # why a reference the source (or Pleo) does not have is dropped


class _Side:
    """Pleo's records of one kind by key: the one a source record matches, and owned others."""

    __slots__ = ("extras", "match")

    def __init__(self) -> None:
        self.match: dict[str, Entry] = {}
        self.extras: list[Entry] = []


class _Planner:
    def __init__(self, pleo: Iterable[Entry], owned: Set[tuple[Kind, str]]) -> None:
        self._owned = owned
        self._sides = {kind: _Side() for kind in Kind}
        self._seen: dict[Kind, set[str]] = {kind: set() for kind in Kind}
        self._held: dict[Kind, set[str]] = {kind: set() for kind in Kind}
        self._changes: list[Change] = []
        self._problems: list[RecordProblem] = []
        self._tax_code_keys: Set[str] = frozenset()  # the tax codes Pleo has once the plan ran
        for entry in pleo:
            self._index(entry)

    # -- Pleo's side ----------

    def _is_owned(self, entry: Entry) -> bool:
        return entry.pleo_id is not None and (entry.kind, entry.pleo_id) in self._owned

    def _rank(self, entry: Entry) -> tuple[bool, bool, str]:
        """Which of two Pleo records with one key a source record matches: an owned one, then an
        active one, then the lower id (so the choice does not depend on the order read)."""
        return (not self._is_owned(entry), entry.archived, entry.pleo_id or "")

    def _index(self, entry: Entry) -> None:
        if entry.pleo_id is None:  # nothing can be written to a record without an id
            return
        side = self._sides[entry.kind]
        current = side.match.get(entry.key)
        if current is None:
            side.match[entry.key] = entry
            return
        keep, other = (
            (entry, current) if self._rank(entry) < self._rank(current) else (current, entry)
        )
        side.match[entry.key] = keep
        if self._is_owned(other):
            side.extras.append(other)

    # -- deciding ----------

    def _change(self, kind: Kind, action: Action, key: str, **fields: Any) -> None:
        self._changes.append(Change(kind=kind, action=action, key=key, **fields))

    def _report(self, kind: Kind, reference: str, message: str) -> None:
        shown = reference if len(reference) <= _SHOWN else reference[: _SHOWN - 1] + "…"
        self._problems.append(RecordProblem(kind=kind, reference=shown, message=message))

    def _accept(self, kind: Kind, key: str, reference: str, problems: list[str]) -> bool:
        """Whether a source record is planned: it has a key, is the first with it, and holds
        nothing Pleo would refuse. A refused key's Pleo record is then left as it is."""
        if not key:
            self._report(kind, reference, "it has no " + _key_name(kind))
            return False
        if key in self._seen[kind]:
            self._report(
                kind,
                reference,
                f"an earlier {_NOUN[kind]} in the source has the same {_key_name(kind)} "
                "(compared without regard to case): only the first one is synced",
            )
            return False
        self._seen[kind].add(key)
        if problems:
            self._held[kind].add(key)
            for problem in problems:
                self._report(kind, reference, problem)
            return False
        return True

    def _decide(
        self,
        kind: Kind,
        key: str,
        values: Mapping[str, Any],
        archived: bool,
        *,
        parent: str | None = None,
        parent_id: str | None = None,
    ) -> Entry | None:
        """The changes for one selected source record; returns the Pleo record it matched."""
        found = self._sides[kind].match.get(key)
        links = {"parent": parent, "parent_id": parent_id}
        if found is None:
            if not archived:
                self._change(kind, Action.CREATE, key, values=values, **links)
            return None
        at = {"pleo_id": found.pleo_id, **links}
        if not self._is_owned(found):
            self._change(kind, Action.ADOPT, key, **at)
        if archived:
            if not found.archived:
                self._drop_missing_tax_code(found)
                self._change(kind, Action.ARCHIVE, key, **at)
            return found
        if found.archived:
            self._change(kind, Action.UNARCHIVE, key, **at)
        if normalise.differs(kind, values, found.values):
            self._change(kind, Action.UPDATE, key, values=values, **at)
        return found

    def finish(self, kind: Kind, *, held_parents: Collection[str] = ()) -> None:
        """Archive what this installation owns of `kind` that the selection no longer has."""
        side = self._sides[kind]
        for key, entry in side.match.items():
            if key in self._seen[kind] or entry.parent in held_parents:
                continue
            if self._is_owned(entry) and not entry.archived:
                self._archive(entry)
        for entry in side.extras:  # owned records beside the one a key matches
            if entry.key in self._held[kind] or entry.parent in held_parents:
                continue
            if not entry.archived:
                self._archive(entry)

    def _archive(self, entry: Entry) -> None:
        self._drop_missing_tax_code(entry)
        self._change(
            entry.kind, Action.ARCHIVE, entry.key, pleo_id=entry.pleo_id, parent=entry.parent
        )

    def tax_codes_after_plan(self, references: _TaxCodeReferences) -> None:
        """What accounts may name once the plan ran: the tax codes Pleo has (archived ones too)
        and those the plan creates."""
        self._tax_code_keys = frozenset(self._sides[Kind.TAX_CODE].match).union(references.codes)

    def _drop_missing_tax_code(self, entry: Entry) -> None:
        """Archiving an account writes it whole, and Pleo refuses an account naming a tax code
        it does not have: one whose tax code is gone from Pleo (a person changed its code) is
        archived without it, by an UPDATE in the same write."""
        reference = entry.values.get("taxCodeExternalId") if entry.kind is Kind.ACCOUNT else None
        if reference and match_key(reference) not in self._tax_code_keys:
            self._change(
                entry.kind,
                Action.UPDATE,
                entry.key,
                values={**entry.values, "taxCodeExternalId": None},
                pleo_id=entry.pleo_id,
            )

    def plan(self) -> Plan:
        self._changes.sort(
            key=lambda change: (
                _KIND_ORDER[change.kind],
                change.key,
                _ACTION_ORDER[change.action],
                change.pleo_id or "",
            )
        )
        return Plan(changes=tuple(self._changes), problems=tuple(self._problems))

    # -- the kinds ----------

    def tag_groups(self, groups: Iterable[SourceTagGroup], chosen: Set[str]) -> dict[str, _Group]:
        picked: dict[str, _Group] = {}
        for group in groups:
            key = match_key(group.code)
            if key not in chosen:
                continue
            values = normalise.tag_group_values(code=group.code, name=group.name)
            first = key not in self._seen[Kind.TAG_GROUP]
            if not self._accept(Kind.TAG_GROUP, key, group.code, _text_problems(values)):
                if first:
                    picked[key] = _Group(active=False, held=True, pleo_id=None)
                continue
            found = self._decide(Kind.TAG_GROUP, key, values, group.archived)
            picked[key] = _Group(
                active=not group.archived,
                held=False,
                pleo_id=found.pleo_id if found is not None else None,
            )
        return picked

    def tags(
        self, tags: Iterable[SourceTag], groups: Mapping[str, _Group], chosen: Set[str]
    ) -> None:
        for tag in tags:
            group_key = match_key(tag.group_code)
            group = groups.get(group_key)
            if group is None:
                if group_key in chosen:
                    self._report(
                        Kind.TAG,
                        tag.code,
                        f"it names the tag group {_shown(tag.group_code)}, "
                        "which the source does not have",
                    )
                continue
            if not group.active:  # archived in the source, or left out: see finish()
                continue
            values = normalise.tag_values(code=tag.code, name=tag.name)
            key = tag_key(tag.group_code, tag.code) if values["code"] else ""
            if self._accept(Kind.TAG, key, tag.code, _text_problems(values)):
                self._decide(
                    Kind.TAG, key, values, tag.archived, parent=group_key, parent_id=group.pleo_id
                )

    def tax_codes(self, tax_codes: Iterable[SourceTaxCode]) -> _TaxCodeReferences:
        references = _TaxCodeReferences(
            codes={}, refused={}, missing="it names a tax code the source does not have"
        )
        for tax_code in tax_codes:
            key = match_key(tax_code.code)
            texts = {"code": normalise.text(tax_code.code), "name": normalise.text(tax_code.name)}
            problems = _text_problems(texts) + _rate_problems(tax_code.rate)
            first = key not in self._seen[Kind.TAX_CODE]
            if not self._accept(Kind.TAX_CODE, key, tax_code.code, problems):
                if key and first:
                    references.refused[key] = "it names a tax code that is left out of the sync"
                continue
            values = normalise.tax_code_values(
                code=tax_code.code,
                name=tax_code.name,
                rate_value=tax_code.rate,
                type=tax_code.kind.value,
            )
            found = self._decide(Kind.TAX_CODE, key, values, tax_code.archived)
            if found is None and tax_code.archived:
                references.refused[key] = (
                    "it names a tax code that is archived in the source and not in Pleo"
                )
            else:
                references.codes[key] = values["code"]
        return references

    def pleo_tax_codes(self) -> _TaxCodeReferences:
        """References when tax codes are not synced: to what Pleo has, as Pleo spells it."""
        codes = {
            key: str(entry.values.get("code") or "")
            for key, entry in self._sides[Kind.TAX_CODE].match.items()
            if key
        }
        return _TaxCodeReferences(
            codes=codes,
            refused={},
            missing="it names a tax code Pleo does not have (tax codes are not synced)",
        )

    def vendors(self, vendors: Iterable[SourceVendor]) -> None:
        codes: dict[str, str] = {}  # an active vendor's code key -> its externalId
        for vendor in vendors:
            values = normalise.vendor_values(
                external_id=vendor.external_id,
                code=vendor.code,
                name=vendor.name,
                default_currency=vendor.currency,
                country_code=vendor.country,
                registration_number=vendor.registration_number,
                tax_registration_number=vendor.tax_registration_number,
            )
            key = match_key(values["externalId"])
            problems = _text_problems(values)
            if not _CURRENCY.fullmatch(values["defaultCurrency"] or ""):
                problems.append(
                    f"its currency {_shown(vendor.currency)} is not a 3-letter ISO 4217 code"
                )
            if values["country"] is not None and not _COUNTRY.fullmatch(values["country"]):
                problems.append(
                    f"its country {_shown(vendor.country or '')} is not a 2-letter ISO 3166 code"
                )
            code_key = match_key(values["code"] or "")
            if code_key and not vendor.archived and code_key in codes and not problems:
                problems.append(
                    f"the vendor {_shown(codes[code_key])} earlier in the source has the same "
                    "code, and Pleo keeps vendor codes unique"
                )
            if not self._accept(Kind.VENDOR, key, vendor.external_id, problems):
                continue
            if code_key and not vendor.archived:
                codes[code_key] = values["externalId"]
            self._decide(Kind.VENDOR, key, values, vendor.archived)

    def accounts(self, accounts: Iterable[SourceAccount], references: _TaxCodeReferences) -> None:
        for account in accounts:
            reference = normalise.optional_text(account.tax_code)
            reference_key = match_key(reference or "")
            tax_code = references.codes.get(reference_key) if reference_key else None
            values = normalise.account_values(
                external_id=account.external_id,
                code=account.code,
                name=account.name,
                tax_code_external_id=tax_code,
            )
            key = match_key(values["externalId"])
            if not self._accept(Kind.ACCOUNT, key, account.external_id, _text_problems(values)):
                continue
            if reference is not None and tax_code is None:
                why = references.refused.get(reference_key, references.missing)
                self._report(
                    Kind.ACCOUNT,
                    account.external_id,
                    f"{why} ({_shown(reference)}): {_WITHOUT_TAX_CODE}",
                )
            self._decide(Kind.ACCOUNT, key, values, account.archived)


def _key_name(kind: Kind) -> str:
    return "external id" if kind in (Kind.VENDOR, Kind.ACCOUNT) else "code"


_LABELS = {
    "code": "code",
    "name": "name",
    "externalId": "external id",
    "registrationNumber": "registration number",
    "taxRegistrationNumber": "tax registration number",
}
_REQUIRED = frozenset({"name"})  # keys are checked apart, as the match needs them


def _text_problems(values: Mapping[str, Any]) -> list[str]:
    """Empty required text and text longer than Pleo takes, in the kind's field order."""
    problems = []
    for field, label in _LABELS.items():
        if field not in values:
            continue
        value = values[field]
        if field in _REQUIRED and not value:
            problems.append(f"its {label} is empty")
        elif value is not None and len(value) > MAX_TEXT:
            problems.append(f"its {label} is longer than {MAX_TEXT} characters")
    return problems


def _rate_problems(rate: Decimal) -> list[str]:
    if rate.is_finite() and 0 <= rate <= 1:
        return []
    return [f"its rate {_shown(str(rate))} is not between 0 and 1 (a fraction: 0.25 is 25 %)"]


def _shown(value: str) -> str:
    """A source value repeated in a problem, quoted and cut short."""
    text = value if len(value) <= _SHOWN else value[: _SHOWN - 1] + "…"
    return repr(text)
