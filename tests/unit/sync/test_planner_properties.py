"""Property tests of the planner against a small in-memory model of Pleo: for any source, any
choices and any Pleo state, applying the plan in order works, makes the owned records follow the
source's selection, touches nothing a person made that the source lacks, deletes nothing, and
leaves nothing for the next plan to do.

The model applies each action as Pleo would and refuses what Pleo would refuse (a create whose
key exists, a tag under a group that does not exist, an account naming a tax code Pleo lacks) and
what would be a wasted or unowned write (archiving what is archived, updating to equal values,
changing a record this installation does not own).

They run derandomized (the "ci" profile in tests/conftest.py); `make fuzz` draws many more."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pleo_connector.adapters.records import (
    SourceAccount,
    SourceTag,
    SourceTagGroup,
    SourceTaxCode,
    SourceVendor,
    TaxCodeKind,
)
from pleo_connector.installation_config import SyncChoices
from pleo_connector.sync import normalise
from pleo_connector.sync.model import Action, Entry, Kind, Plan, match_key, tag_key
from pleo_connector.sync.planner import plan_sync
from tests.unit.sync.planner_support import ListReader

pytestmark = pytest.mark.unit

# Few keys, so that sources and Pleo collide often: case and space variants of one key, and a
# code that has no key at all.
CODES = st.sampled_from(["A", "a", "B", "b ", "C", "D", " "])
KEYED = st.sampled_from(["A", "a", "B", "b ", "C", "D"])
NAMES = st.sampled_from(["One", "Two", "Three", "One ", ""])  # "" is refused
RATES = st.sampled_from(["0", "0.25", "0.250", "1", "1.5"])  # 1.5 is refused
CURRENCIES = st.sampled_from(["DKK", "sek", "EURO"])  # EURO is refused
TYPES = st.sampled_from(list(TaxCodeKind))


@st.composite
def sources(draw: st.DrawFn) -> ListReader:
    vendor_ids = draw(st.lists(CODES, max_size=5))
    return ListReader(
        groups=draw(st.lists(st.builds(SourceTagGroup, CODES, NAMES, st.booleans()), max_size=5)),
        tags=draw(st.lists(st.builds(SourceTag, CODES, CODES, NAMES, st.booleans()), max_size=10)),
        tax_codes=draw(
            st.lists(
                st.builds(SourceTaxCode, CODES, NAMES, RATES.map(Decimal), TYPES, st.booleans()),
                max_size=5,
            )
        ),
        vendors=[
            SourceVendor(
                external_id=external_id,
                name=draw(NAMES),
                currency=draw(CURRENCIES),
                # A code equal to the external id, so codes clash only where ids do.
                code=external_id if draw(st.booleans()) else None,
                country=draw(st.sampled_from([None, "DK", "se"])),
                archived=draw(st.booleans()),
            )
            for external_id in vendor_ids
        ],
        accounts=draw(
            st.lists(
                st.builds(
                    SourceAccount,
                    external_id=CODES,
                    name=NAMES,
                    code=st.none() | KEYED,
                    tax_code=st.none() | CODES,
                    archived=st.booleans(),
                ),
                max_size=5,
            )
        ),
    )


CHOICES = st.builds(
    SyncChoices,
    tag_groups=st.lists(KEYED, max_size=4, unique_by=match_key),
    tax_codes=st.booleans(),
    vendors=st.booleans(),
    accounts=st.booleans(),
)


@dataclass
class Record:
    kind: Kind
    values: dict[str, Any]
    archived: bool
    group: str | None = None  # a tag's group's id


@dataclass
class PleoModel:
    """Pleo's records and which of them this installation owns."""

    records: dict[str, Record] = field(default_factory=dict)
    owned: set[tuple[Kind, str]] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @staticmethod
    def stored(kind: Kind, values: Any) -> dict[str, Any]:
        """What Pleo keeps of what it was sent: text as sent, a rate as a JSON number (a double),
        read back as the Pleo-side reader reads it."""
        kept = dict(values)
        if kind is Kind.TAX_CODE:
            kept["rate"] = normalise.rate(float(kept["rate"]))
        return kept

    def key(self, record: Record) -> str:
        if record.kind is Kind.TAG:
            assert record.group is not None
            return tag_key(self.records[record.group].values["code"], record.values["code"])
        if record.kind in (Kind.VENDOR, Kind.ACCOUNT):
            return match_key(record.values["externalId"])
        return match_key(record.values["code"])

    def parent(self, record: Record) -> str | None:
        if record.group is None:
            return None
        return match_key(self.records[record.group].values["code"])

    def entries(self) -> list[Entry]:
        return [
            Entry(
                kind=record.kind,
                key=self.key(record),
                values=dict(record.values),
                archived=record.archived,
                pleo_id=pleo_id,
                parent=self.parent(record),
            )
            for pleo_id, record in self.records.items()
        ]

    def keys(self, kind: Kind) -> set[str]:
        return {self.key(r) for r in self.records.values() if r.kind is kind}

    def add(self, record: Record, *, owned: bool = False) -> str:
        pleo_id = f"p{next(self._ids)}"
        self.records[pleo_id] = record
        if owned:
            self.owned.add((record.kind, pleo_id))
        return pleo_id

    def apply(self, plan: Plan) -> None:
        created_groups: dict[str, str] = {}
        for change in plan.changes:
            if change.action is Action.CREATE:
                record = Record(change.kind, self.stored(change.kind, change.values), False)
                if change.kind is Kind.TAG:
                    assert change.parent is not None
                    group = change.parent_id or created_groups[change.parent]
                    assert self.records[group].kind is Kind.TAG_GROUP
                    assert match_key(self.records[group].values["code"]) == change.parent
                    record.group = group
                self._check_tax_code(record)
                assert self.key(record) == change.key
                assert change.key not in self.keys(change.kind), "Pleo refuses a taken key"
                pleo_id = self.add(record, owned=True)
                if change.kind is Kind.TAG_GROUP:
                    created_groups[change.key] = pleo_id
                continue
            assert change.pleo_id is not None
            record = self.records[change.pleo_id]
            assert record.kind is change.kind
            assert self.key(record) == change.key
            mine = (change.kind, change.pleo_id) in self.owned
            if change.action is Action.ADOPT:
                assert not mine
                self.owned.add((change.kind, change.pleo_id))
                continue
            assert mine, f"{change.action} of a record this installation does not own"
            if change.action is Action.ARCHIVE:
                assert not record.archived
                record.archived = True
            elif change.action is Action.UNARCHIVE:
                assert record.archived
                record.archived = False
            else:
                assert change.action is Action.UPDATE
                assert not record.archived, "an update targets an active record"
                assert normalise.differs(change.kind, change.values, record.values)
                record.values = self.stored(change.kind, change.values)
                self._check_tax_code(record)
                assert self.key(record) == change.key

    def _check_tax_code(self, record: Record) -> None:
        reference = record.values.get("taxCodeExternalId")
        if reference is not None:
            assert match_key(reference) in self.keys(Kind.TAX_CODE), "Pleo refuses the reference"


@st.composite
def pleo_states(draw: st.DrawFn) -> PleoModel:
    """A Pleo that holds each key once per kind (Pleo refuses a second), some of it owned."""
    model = PleoModel()
    owned = st.booleans()
    for code in draw(st.lists(KEYED, max_size=4, unique_by=match_key)):
        group = model.add(
            Record(
                Kind.TAG_GROUP,
                normalise.tag_group_values(code=code, name=draw(NAMES) or "G"),
                draw(st.booleans()),
            ),
            owned=draw(owned),
        )
        for tag in draw(st.lists(KEYED, max_size=3, unique_by=match_key)):
            model.add(
                Record(
                    Kind.TAG,
                    normalise.tag_values(code=tag, name="Old"),
                    draw(st.booleans()),
                    group=group,
                ),
                owned=draw(owned),
            )
    for code in draw(st.lists(KEYED, max_size=4, unique_by=match_key)):
        values = normalise.tax_code_values(
            code=code,
            name="Old",
            rate_value=Decimal(draw(RATES.filter(lambda r: r != "1.5"))),
            type=draw(TYPES).value,
        )
        model.add(Record(Kind.TAX_CODE, values, draw(st.booleans())), owned=draw(owned))
    for external_id in draw(st.lists(KEYED, max_size=4, unique_by=match_key)):
        values = normalise.vendor_values(
            external_id=external_id,
            code=None,
            name="Old",
            default_currency="DKK",
            country_code=None,
            registration_number=None,
            tax_registration_number=None,
        )
        model.add(Record(Kind.VENDOR, values, draw(st.booleans())), owned=draw(owned))
    tax_codes = sorted(model.keys(Kind.TAX_CODE))
    for external_id in draw(st.lists(KEYED, max_size=4, unique_by=match_key)):
        reference = draw(st.none() | st.sampled_from(tax_codes)) if tax_codes else None
        values = normalise.account_values(
            external_id=external_id, code=None, name="Old", tax_code_external_id=reference
        )
        model.add(Record(Kind.ACCOUNT, values, draw(st.booleans())), owned=draw(owned))
    return model


# -- the selection, as the rules define it ----------


@dataclass
class Selection:
    """Per kind: the keys of the source records that are synced (active or archived), the active
    ones, and the keys left alone because their first record was refused."""

    synced: dict[Kind, set[str]] = field(default_factory=lambda: {k: set() for k in Kind})
    active: dict[Kind, set[str]] = field(default_factory=lambda: {k: set() for k in Kind})
    held: dict[Kind, set[str]] = field(default_factory=lambda: {k: set() for k in Kind})
    held_groups: set[str] = field(default_factory=set)
    values: dict[tuple[Kind, str], dict[str, Any]] = field(default_factory=dict)


def _refused(kind: Kind, record: Any) -> bool:
    if not record.name.strip():
        return True
    if kind is Kind.TAX_CODE:
        return not Decimal(0) <= record.rate <= Decimal(1)
    if kind is Kind.VENDOR:
        return re.fullmatch(r"[A-Z]{3}", record.currency.strip().upper()) is None
    return False


def selection(reader: ListReader, choices: SyncChoices) -> Selection:
    chosen = {match_key(code) for code in choices.tag_groups}
    result = Selection()
    first_groups: dict[str, SourceTagGroup] = {}
    for group in reader._groups:
        first_groups.setdefault(match_key(group.code), group)
    active_groups = set()
    for key, group in first_groups.items():
        if key not in chosen or not key:
            continue
        _take(result, Kind.TAG_GROUP, key, group, _values(Kind.TAG_GROUP, group))
        if key in result.held[Kind.TAG_GROUP]:
            result.held_groups.add(key)
        elif not group.archived:
            active_groups.add(key)
    tags = [t for t in reader._tags if match_key(t.group_code) in active_groups]
    kinds: list[tuple[Kind, list[Any], bool]] = [
        (Kind.TAG, tags, True),
        (Kind.TAX_CODE, list(reader._tax_codes), choices.tax_codes),
        (Kind.VENDOR, list(reader._vendors), choices.vendors),
        (Kind.ACCOUNT, list(reader._accounts), choices.accounts),
    ]
    for kind, records, on in kinds:
        if not on:
            continue
        first: dict[str, Any] = {}
        for record in records:
            if _code(kind, record).strip():
                first.setdefault(_key(kind, record), record)
        for key, record in first.items():
            _take(result, kind, key, record, _values(kind, record))
    return result


def _take(result: Selection, kind: Kind, key: str, record: Any, values: dict[str, Any]) -> None:
    if _refused(kind, record):
        result.held[kind].add(key)
        return
    result.synced[kind].add(key)
    if not record.archived:
        result.active[kind].add(key)
    result.values[kind, key] = values


def _code(kind: Kind, record: Any) -> str:
    return str(record.external_id if kind in (Kind.VENDOR, Kind.ACCOUNT) else record.code)


def _key(kind: Kind, record: Any) -> str:
    if kind is Kind.TAG:
        return tag_key(record.group_code, record.code)
    return match_key(_code(kind, record))


def _values(kind: Kind, record: Any) -> dict[str, Any]:
    if kind is Kind.TAG_GROUP:
        return normalise.tag_group_values(code=record.code, name=record.name)
    if kind is Kind.TAG:
        return normalise.tag_values(code=record.code, name=record.name)
    if kind is Kind.TAX_CODE:
        return normalise.tax_code_values(
            code=record.code, name=record.name, rate_value=record.rate, type=record.kind.value
        )
    if kind is Kind.VENDOR:
        return normalise.vendor_values(
            external_id=record.external_id,
            code=record.code,
            name=record.name,
            default_currency=record.currency,
            country_code=record.country,
            registration_number=None,
            tax_registration_number=None,
        )
    # The tax code reference is resolved by the planner; the model checks it separately.
    return normalise.account_values(
        external_id=record.external_id,
        code=record.code,
        name=record.name,
        tax_code_external_id=None,
    )


def _left_alone(model: PleoModel, kind: Kind, key: str, parent: str | None, sel: Selection) -> bool:
    return key in sel.held[kind] or (kind is Kind.TAG and parent in sel.held_groups)


def _snapshot(model: PleoModel) -> dict[str, tuple[Kind, str, dict[str, Any], bool, bool]]:
    return {
        pleo_id: (
            record.kind,
            model.key(record),
            dict(record.values),
            record.archived,
            (record.kind, pleo_id) in model.owned,
        )
        for pleo_id, record in model.records.items()
    }


def _run(reader: ListReader, model: PleoModel, choices: SyncChoices) -> Plan:
    return plan_sync(reader, model.entries(), set(model.owned), choices)


def _fresh(reader: ListReader) -> ListReader:
    return ListReader(
        groups=reader._groups,
        tags=reader._tags,
        tax_codes=reader._tax_codes,
        vendors=reader._vendors,
        accounts=reader._accounts,
    )


# -- the properties ----------


@given(sources(), pleo_states(), CHOICES)
def test_applying_the_plan_makes_the_owned_records_follow_the_selection(
    reader: ListReader, model: PleoModel, choices: SyncChoices
) -> None:
    sel = selection(reader, choices)
    before = _snapshot(model)

    model.apply(_run(reader, model, choices))

    after = _snapshot(model)
    for kind in Kind:
        owned_active = {
            (key, tuple(sorted(values.items())) if kind is not Kind.ACCOUNT else None)
            for pleo_id, (k, key, values, archived, mine) in after.items()
            if k is kind
            and mine
            and not archived
            and not _left_alone(model, kind, key, _parent_of(model, pleo_id), sel)
        }
        assert {key for key, _ in owned_active} == sel.active[kind], kind
        for key, values in owned_active:
            if values is not None:
                assert dict(values) == sel.values[kind, key]
    for pleo_id, state in before.items():  # what a refused record has in Pleo stays as it was
        kind, key = state[0], state[1]
        if _left_alone(model, kind, key, _parent_of(model, pleo_id), sel):
            assert after[pleo_id] == state


def _parent_of(model: PleoModel, pleo_id: str) -> str | None:
    return model.parent(model.records[pleo_id])


@given(sources(), pleo_states(), CHOICES)
def test_planning_again_after_applying_finds_nothing_to_do(
    reader: ListReader, model: PleoModel, choices: SyncChoices
) -> None:
    first = _run(reader, model, choices)
    model.apply(first)

    again = _run(_fresh(reader), model, choices)

    assert again.changes == ()
    assert not again.has_writes
    assert again.problems == first.problems


@given(sources(), pleo_states(), CHOICES)
def test_nothing_a_person_made_that_the_selection_lacks_is_touched(
    reader: ListReader, model: PleoModel, choices: SyncChoices
) -> None:
    sel = selection(reader, choices)
    before = _snapshot(model)
    untouchable = {
        pleo_id
        for pleo_id, (kind, key, _, _, mine) in before.items()
        if not mine and key not in sel.synced[kind]
    }

    plan = _run(reader, model, choices)
    model.apply(plan)

    assert not {change.pleo_id for change in plan.changes} & untouchable
    after = _snapshot(model)
    assert {pleo_id: after[pleo_id] for pleo_id in untouchable} == {
        pleo_id: before[pleo_id] for pleo_id in untouchable
    }


@given(sources(), pleo_states(), CHOICES)
def test_no_plan_deletes(reader: ListReader, model: PleoModel, choices: SyncChoices) -> None:
    before = set(model.records)

    plan = _run(reader, model, choices)
    model.apply(plan)

    assert before <= set(model.records)
    creates = sum(1 for change in plan.changes if change.action is Action.CREATE)
    assert len(model.records) == len(before) + creates


@given(sources(), pleo_states(), CHOICES, st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_the_order_pleo_is_read_in(
    reader: ListReader, model: PleoModel, choices: SyncChoices, rnd: Any
) -> None:
    entries = model.entries()
    shuffled = list(entries)
    rnd.shuffle(shuffled)

    first = plan_sync(reader, entries, set(model.owned), choices)
    second = plan_sync(_fresh(reader), shuffled, list(model.owned), choices)

    assert first == second
