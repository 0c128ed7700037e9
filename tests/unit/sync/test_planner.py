"""The planner's rules, one example each: matching, ownership, archive instead of delete, the
customer's choices, reports instead of crashes, and an order the applier can follow."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

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
from pleo_connector.sync.planner import MAX_TEXT, plan_sync
from tests.unit.sync.planner_support import (
    ListReader,
    account_entry,
    group_entry,
    tag_entry,
    tax_code,
    tax_entry,
    vendor_entry,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

pytestmark = pytest.mark.unit

ALL = SyncChoices(tag_groups=["DEPT"])
DEPT = SourceTagGroup(code="DEPT", name="Departments")


def plan(
    reader: ListReader,
    pleo: Iterable[Entry] = (),
    owned: Iterable[str] = (),
    choices: SyncChoices = ALL,
) -> Plan:
    """Plan with `owned` given as Pleo ids (each id is unique across kinds in these tests)."""
    entries = list(pleo)
    ids = set(owned)
    mine = {(e.kind, e.pleo_id) for e in entries if e.pleo_id is not None and e.pleo_id in ids}
    return plan_sync(reader, entries, mine, choices)


def actions(result: Plan) -> list[tuple[Kind, Action, str]]:
    return [(change.kind, change.action, change.key) for change in result.changes]


def problems(result: Plan) -> list[tuple[Kind, str, str]]:
    return [(problem.kind, problem.reference, problem.message) for problem in result.problems]


# -- creating, and the order of a plan ----------


def test_an_empty_pleo_gets_every_kind_created_in_an_order_that_applies() -> None:
    reader = ListReader(
        groups=[DEPT],
        tags=[SourceTag(group_code="DEPT", code="D-100", name="Sales")],
        tax_codes=[tax_code("S25", "VAT 25%", "0.250")],
        vendors=[SourceVendor(external_id="V-1", name="Paper Co", currency="DKK", country="DK")],
        accounts=[SourceAccount(external_id="6100", name="Travel", code="6100", tax_code="S25")],
    )

    result = plan(reader)

    assert actions(result) == [
        (Kind.TAG_GROUP, Action.CREATE, "dept"),
        (Kind.TAG, Action.CREATE, tag_key("DEPT", "D-100")),
        (Kind.TAX_CODE, Action.CREATE, "s25"),
        (Kind.VENDOR, Action.CREATE, "v-1"),
        (Kind.ACCOUNT, Action.CREATE, "6100"),
    ]
    group, tag, tax, vendor, account = result.changes
    assert dict(group.values) == {"code": "DEPT", "name": "Departments"}
    # The group is created by the plan, so the applier takes its id from that create.
    assert (tag.parent, tag.parent_id) == ("dept", None)
    assert dict(tax.values) == {
        "code": "S25",
        "name": "VAT 25%",
        "rate": "0.25",
        "type": "inclusive",
    }
    assert vendor.values["defaultCurrency"] == "DKK"
    assert vendor.values["country"] == "DK"
    assert account.values["taxCodeExternalId"] == "S25"
    assert result.has_writes
    assert result.problems == ()


def test_a_tag_created_under_a_group_pleo_has_names_that_group_s_id() -> None:
    reader = ListReader(groups=[DEPT], tags=[SourceTag(group_code="dept", code="D-1", name="A")])

    result = plan(reader, [group_entry("g1", "DEPT", "Departments")], owned=["g1"])

    [change] = result.changes
    assert (change.kind, change.action) == (Kind.TAG, Action.CREATE)
    assert (change.parent, change.parent_id) == ("dept", "g1")


def test_changes_are_sorted_by_kind_then_key_then_action() -> None:
    reader = ListReader(
        groups=[SourceTagGroup(code="B", name="Bee"), SourceTagGroup(code="A", name="Ay")],
        tax_codes=[tax_code("Z1"), tax_code("A1")],
        vendors=[
            SourceVendor(external_id="V-2", name="Two", currency="DKK"),
            SourceVendor(external_id="v-1", name="One renamed", currency="DKK"),
        ],
    )
    pleo = [vendor_entry("v1", "V-1", "One", archived=True)]  # a person's: adopted

    result = plan(reader, pleo, choices=SyncChoices(tag_groups=["A", "B"]))

    assert actions(result) == [
        (Kind.TAG_GROUP, Action.CREATE, "a"),
        (Kind.TAG_GROUP, Action.CREATE, "b"),
        (Kind.TAX_CODE, Action.CREATE, "a1"),
        (Kind.TAX_CODE, Action.CREATE, "z1"),
        (Kind.VENDOR, Action.ADOPT, "v-1"),
        (Kind.VENDOR, Action.UNARCHIVE, "v-1"),
        (Kind.VENDOR, Action.UPDATE, "v-1"),
        (Kind.VENDOR, Action.CREATE, "v-2"),
    ]


def test_the_order_pleo_is_read_in_does_not_change_the_plan() -> None:
    def reader() -> ListReader:
        tags = [SourceTag(group_code="DEPT", code=f"T{n}", name=f"n{n}") for n in range(20)]
        return ListReader(groups=[DEPT], tags=tags)

    pleo = [group_entry("g", "DEPT", "Old")] + [
        tag_entry(f"t{n}", "DEPT", f"T{n}", "old" if n % 2 else f"n{n}", archived=n % 3 == 0)
        for n in range(0, 30, 2)
    ]
    owned = ["g"] + [f"t{n}" for n in range(0, 30, 4)]
    shuffled = list(pleo)
    random.Random(7).shuffle(shuffled)

    first = plan(reader(), pleo, owned)
    second = plan(reader(), shuffled, owned)

    assert first == second
    assert first.has_writes


# -- matching ----------


def test_codes_match_without_regard_to_case_and_a_new_case_is_written() -> None:
    reader = ListReader(groups=[SourceTagGroup(code="DEPT", name="Departments")])

    result = plan(reader, [group_entry("g1", " dept", "Departments")], owned=["g1"])

    [change] = result.changes
    assert (change.action, change.pleo_id) == (Action.UPDATE, "g1")
    assert change.values["code"] == "DEPT"


def test_tags_match_within_their_group() -> None:
    reader = ListReader(
        groups=[DEPT, SourceTagGroup(code="PROJ", name="Projects")],
        tags=[
            SourceTag(group_code="DEPT", code="X", name="Dept X"),
            SourceTag(group_code="PROJ", code="X", name="Proj X"),
        ],
    )
    pleo = [
        group_entry("g1", "DEPT", "Departments"),
        group_entry("g2", "PROJ", "Projects"),
        tag_entry("t1", "DEPT", "X", "Dept X"),
    ]

    result = plan(reader, pleo, ["g1", "g2", "t1"], SyncChoices(tag_groups=["DEPT", "PROJ"]))

    [change] = result.changes
    assert (change.kind, change.action, change.key) == (Kind.TAG, Action.CREATE, "proj\x1fx")
    assert change.parent_id == "g2"


def test_vendors_and_accounts_match_by_external_id_not_by_code() -> None:
    reader = ListReader(
        vendors=[SourceVendor(external_id="V-1", name="Paper", currency="DKK", code="NEW")],
        accounts=[SourceAccount(external_id="6100", name="Travel", code="7000")],
    )
    pleo = [
        vendor_entry("v1", "v-1", "Paper", code="OLD"),
        account_entry("a1", "6100", "Travel", code="6100"),
        account_entry("a2", "other", "Other", code="7000"),  # a person's, same code
    ]

    result = plan(reader, pleo, ["v1", "a1"])

    assert [(c.kind, c.action, c.pleo_id) for c in result.changes] == [
        (Kind.VENDOR, Action.UPDATE, "v1"),
        (Kind.ACCOUNT, Action.UPDATE, "a1"),
    ]


# -- archive, never delete ----------


def test_what_vanished_from_the_source_is_archived_once() -> None:
    pleo = [
        tax_entry("x1", "GONE", "Gone", 0.1),
        tax_entry("x2", "LONG-GONE", "Archived already", 0.1, archived=True),
    ]

    result = plan(ListReader(), pleo, ["x1", "x2"])

    assert [(c.action, c.pleo_id) for c in result.changes] == [(Action.ARCHIVE, "x1")]


def test_what_the_source_archived_is_archived_in_pleo_and_not_created() -> None:
    reader = ListReader(tax_codes=[tax_code("S25", archived=True), tax_code("NEW", archived=True)])

    result = plan(reader, [tax_entry("x1", "S25", "VAT", 0.25)], ["x1"])

    assert actions(result) == [(Kind.TAX_CODE, Action.ARCHIVE, "s25")]


def test_an_archived_record_s_fields_are_left_as_they_are() -> None:
    reader = ListReader(tax_codes=[tax_code("S25", "Renamed", archived=True)])

    result = plan(reader, [tax_entry("x1", "S25", "VAT", 0.25, archived=True)], ["x1"])

    assert result.changes == ()


def test_what_comes_back_is_unarchived_then_updated() -> None:
    reader = ListReader(tax_codes=[tax_code("S25", "VAT 25", "0.25")])

    result = plan(reader, [tax_entry("x1", "S25", "VAT", 0.25, archived=True)], ["x1"])

    assert [(c.action, c.pleo_id) for c in result.changes] == [
        (Action.UNARCHIVE, "x1"),
        (Action.UPDATE, "x1"),
    ]
    assert result.changes[1].values["name"] == "VAT 25"


def test_a_kind_switched_off_is_archived_and_not_read() -> None:
    reader = ListReader(vendors=[SourceVendor(external_id="V-1", name="Paper", currency="DKK")])
    pleo = [vendor_entry("v1", "V-1", "Paper"), vendor_entry("v2", "V-2", "A person's")]

    result = plan(reader, pleo, ["v1"], SyncChoices(tax_codes=False, vendors=False, accounts=False))

    assert [(c.action, c.pleo_id) for c in result.changes] == [(Action.ARCHIVE, "v1")]
    assert reader.reads == []


def test_a_group_not_picked_is_archived_with_its_tags_and_nothing_of_it_is_created() -> None:
    reader = ListReader(
        groups=[DEPT, SourceTagGroup(code="PROJ", name="Projects")],
        tags=[
            SourceTag(group_code="PROJ", code="P1", name="Kept"),
            SourceTag(group_code="PROJ", code="P2", name="New"),
        ],
    )
    pleo = [
        group_entry("g2", "PROJ", "Projects"),
        tag_entry("t1", "PROJ", "P1", "Kept"),
        tag_entry("t9", "PROJ", "P9", "A person's tag"),
    ]

    result = plan(reader, pleo, ["g2", "t1"], SyncChoices(tag_groups=["DEPT"]))

    assert actions(result) == [
        (Kind.TAG_GROUP, Action.CREATE, "dept"),
        (Kind.TAG_GROUP, Action.ARCHIVE, "proj"),
        (Kind.TAG, Action.ARCHIVE, "proj\x1fp1"),
    ]


def test_no_group_picked_reads_neither_groups_nor_tags() -> None:
    reader = ListReader(groups=[DEPT])

    result = plan(reader, [group_entry("g1", "DEPT", "Departments")], ["g1"], SyncChoices())

    assert actions(result) == [(Kind.TAG_GROUP, Action.ARCHIVE, "dept")]
    assert "tag_groups" not in reader.reads
    assert "tags" not in reader.reads


def test_picked_codes_match_without_regard_to_case() -> None:
    reader = ListReader(groups=[DEPT])

    result = plan(reader, choices=SyncChoices(tag_groups=[" dept "]))

    assert actions(result) == [(Kind.TAG_GROUP, Action.CREATE, "dept")]


def test_the_tags_of_a_group_the_source_archived_are_archived_and_not_created() -> None:
    reader = ListReader(
        groups=[SourceTagGroup(code="DEPT", name="Departments", archived=True)],
        tags=[
            SourceTag(group_code="DEPT", code="D1", name="One"),
            SourceTag(group_code="DEPT", code="D2", name="Two"),
        ],
    )
    pleo = [group_entry("g1", "DEPT", "Departments"), tag_entry("t1", "DEPT", "D1", "One")]

    result = plan(reader, pleo, ["g1", "t1"])

    assert actions(result) == [
        (Kind.TAG_GROUP, Action.ARCHIVE, "dept"),
        (Kind.TAG, Action.ARCHIVE, "dept\x1fd1"),
    ]


# -- ownership ----------


def test_a_person_s_record_with_a_source_key_is_adopted_and_only_then_changed() -> None:
    reader = ListReader(
        tax_codes=[tax_code("SAME"), tax_code("OTHER", "Renamed"), tax_code("BACK")],
    )
    pleo = [
        tax_entry("x1", "SAME", "VAT", 0.25),
        tax_entry("x2", "other", "VAT", 0.25),
        tax_entry("x3", "BACK", "VAT", 0.25, archived=True),
    ]

    result = plan(reader, pleo)

    assert [(c.action, c.pleo_id) for c in result.changes] == [
        (Action.ADOPT, "x3"),
        (Action.UNARCHIVE, "x3"),
        (Action.ADOPT, "x2"),
        (Action.UPDATE, "x2"),
        (Action.ADOPT, "x1"),
    ]


def test_adopting_alone_writes_nothing_to_pleo() -> None:
    result = plan(ListReader(tax_codes=[tax_code("S25")]), [tax_entry("x1", "S25", "VAT", 0.25)])

    assert actions(result) == [(Kind.TAX_CODE, Action.ADOPT, "s25")]
    assert not result.has_writes


@pytest.mark.parametrize(
    "choices", [ALL, SyncChoices(tag_groups=["MINE"]), SyncChoices(vendors=False, accounts=False)]
)
def test_a_person_s_record_the_source_does_not_have_is_never_touched(
    choices: SyncChoices,
) -> None:
    pleo = [
        group_entry("g1", "MINE", "A person's group"),
        tag_entry("t1", "MINE", "X", "A person's tag"),
        tax_entry("x1", "P", "A person's", 0.1),
        vendor_entry("v1", "P-1", "A person's"),
        account_entry("a1", "P-1", "A person's"),
    ]

    result = plan(ListReader(groups=[DEPT]), pleo, choices=choices)

    assert all(change.action is Action.CREATE for change in result.changes)


def test_a_person_s_record_whose_key_is_deselected_is_not_adopted() -> None:
    reader = ListReader(groups=[DEPT, SourceTagGroup(code="PROJ", name="Projects")])

    result = plan(reader, [group_entry("g2", "PROJ", "Projects")])

    assert actions(result) == [(Kind.TAG_GROUP, Action.CREATE, "dept")]


def test_of_pleo_records_with_one_key_the_owned_active_one_is_matched() -> None:
    reader = _one_vendor()
    pleo = [
        vendor_entry("v0-person", "V-1", "Paper"),
        vendor_entry("v1-mine", "V-1", "Paper", archived=True),
        vendor_entry("v2-mine", "V-1", "Paper"),
    ]

    assert plan(reader, pleo, ["v1-mine", "v2-mine"]).changes == ()
    only_archived = plan(_one_vendor(), pleo, ["v1-mine"])
    assert [(c.action, c.pleo_id) for c in only_archived.changes] == [(Action.UNARCHIVE, "v1-mine")]


def test_an_owned_duplicate_in_pleo_is_archived_and_a_person_s_is_left() -> None:
    pleo = [
        vendor_entry("v0-person", "V-1", "Paper"),
        vendor_entry("v1-mine", "V-1", "Paper"),
        vendor_entry("v2-mine", "v-1 ", "Paper"),
    ]

    result = plan(_one_vendor(), pleo, ["v1-mine", "v2-mine"])

    assert [(c.action, c.pleo_id) for c in result.changes] == [(Action.ARCHIVE, "v2-mine")]


def _one_vendor() -> ListReader:
    return ListReader(vendors=[SourceVendor(external_id="V-1", name="Paper", currency="DKK")])


# -- reports instead of crashes ----------


def test_a_duplicate_key_in_the_source_is_reported_and_the_first_one_is_kept() -> None:
    reader = ListReader(
        tax_codes=[tax_code("S25", "First"), tax_code("s25 ", "Second"), tax_code("S25", "Third")]
    )

    result = plan(reader)

    [change] = result.changes
    assert change.values["name"] == "First"
    assert [(kind, ref) for kind, ref, _ in problems(result)] == [
        (Kind.TAX_CODE, "s25 "),
        (Kind.TAX_CODE, "S25"),
    ]
    assert all("only the first one is synced" in message for _, _, message in problems(result))


def test_a_record_pleo_would_refuse_is_reported_and_its_pleo_record_left_alone() -> None:
    too_long = "x" * (MAX_TEXT + 1)
    reader = ListReader(
        tax_codes=[
            tax_code("", "No code"),
            tax_code("NONAME", " "),
            tax_code("LONG", too_long),
            tax_code("EDGE", "y" * MAX_TEXT),
        ]
    )
    pleo = [tax_entry("x1", "LONG", "Old name", 0.25), tax_entry("x2", "NONAME", "Old", 0.25)]

    result = plan(reader, pleo, ["x1", "x2"])

    assert actions(result) == [(Kind.TAX_CODE, Action.CREATE, "edge")]
    assert problems(result) == [
        (Kind.TAX_CODE, "", "it has no code"),
        (Kind.TAX_CODE, "NONAME", "its name is empty"),
        (Kind.TAX_CODE, "LONG", f"its name is longer than {MAX_TEXT} characters"),
    ]


@pytest.mark.parametrize("rate", ["-0.01", "1.01", "NaN", "Infinity", "-Infinity"])
def test_a_rate_outside_zero_to_one_is_reported(rate: str) -> None:
    result = plan(ListReader(tax_codes=[tax_code("T", rate=rate)]))

    assert result.changes == ()
    [(_, reference, message)] = problems(result)
    assert reference == "T"
    assert "not between 0 and 1" in message


@pytest.mark.parametrize(("rate", "written"), [("0", "0"), ("1", "1"), ("0.0625", "0.0625")])
def test_rates_at_and_inside_the_bounds_are_synced(rate: str, written: str) -> None:
    [change] = plan(ListReader(tax_codes=[tax_code("T", rate=rate)])).changes

    assert change.values["rate"] == written


def test_vendor_currency_and_country_must_be_iso_codes() -> None:
    reader = ListReader(
        vendors=[
            SourceVendor(external_id="A", name="A", currency="EURO"),
            SourceVendor(external_id="B", name="B", currency="DKK", country="DNK"),
            SourceVendor(external_id="C", name="C", currency="€€€"),
            SourceVendor(external_id="D", name="D", currency=" dkk", country="dk "),
            SourceVendor(external_id="E", name="E", currency="SEK", country=None),
        ]
    )

    result = plan(reader)

    assert actions(result) == [
        (Kind.VENDOR, Action.CREATE, "d"),
        (Kind.VENDOR, Action.CREATE, "e"),
    ]
    assert [(c.values["defaultCurrency"], c.values["country"]) for c in result.changes] == [
        ("DKK", "DK"),
        ("SEK", None),
    ]
    assert problems(result) == [
        (Kind.VENDOR, "A", "its currency 'EURO' is not a 3-letter ISO 4217 code"),
        (Kind.VENDOR, "B", "its country 'DNK' is not a 2-letter ISO 3166 code"),
        (Kind.VENDOR, "C", "its currency '€€€' is not a 3-letter ISO 4217 code"),
    ]


def test_a_second_active_vendor_with_one_code_is_reported() -> None:
    reader = ListReader(
        vendors=[
            SourceVendor(external_id="V-1", name="One", currency="DKK", code="PAPER"),
            SourceVendor(external_id="V-2", name="Two", currency="DKK", code="paper"),
            SourceVendor(
                external_id="V-3", name="Old", currency="DKK", code="PAPER", archived=True
            ),
        ]
    )

    result = plan(reader)

    assert actions(result) == [(Kind.VENDOR, Action.CREATE, "v-1")]
    [(_, reference, message)] = problems(result)
    assert reference == "V-2"
    assert "'V-1'" in message


def test_account_limits_are_pleo_s_documented_ones() -> None:
    reader = ListReader(
        accounts=[
            SourceAccount(external_id="x" * (MAX_TEXT + 1), name="Long id"),
            SourceAccount(external_id="1", name="Long code", code="c" * (MAX_TEXT + 1)),
            SourceAccount(external_id="2", name=""),
            SourceAccount(external_id=" ", name="No id"),
        ]
    )

    result = plan(reader)

    assert result.changes == ()
    assert [message for _, _, message in problems(result)] == [
        f"its external id is longer than {MAX_TEXT} characters",
        f"its code is longer than {MAX_TEXT} characters",
        "its name is empty",
        "it has no external id",
    ]
    assert len(result.problems[0].reference) <= 80  # a long reference is cut short


def test_a_tag_of_a_picked_group_the_source_lacks_is_reported() -> None:
    reader = ListReader(
        tags=[
            SourceTag(group_code="DEPT", code="D1", name="One"),
            SourceTag(group_code="OTHER", code="O1", name="Not picked: silent"),
        ]
    )

    result = plan(reader)

    assert result.changes == ()
    assert problems(result) == [
        (Kind.TAG, "D1", "it names the tag group 'DEPT', which the source does not have")
    ]


def test_the_tags_of_a_refused_group_are_left_as_they_are() -> None:
    reader = ListReader(
        groups=[SourceTagGroup(code="DEPT", name="")],
        tags=[SourceTag(group_code="DEPT", code="D2", name="New")],
    )
    pleo = [group_entry("g1", "DEPT", "Departments"), tag_entry("t1", "DEPT", "D1", "Old")]

    result = plan(reader, pleo, ["g1", "t1"])

    assert result.changes == ()
    assert problems(result) == [(Kind.TAG_GROUP, "DEPT", "its name is empty")]


def test_an_account_naming_a_tax_code_that_will_not_be_in_pleo_is_synced_without_it() -> None:
    reader = ListReader(
        tax_codes=[
            tax_code("BAD", rate="2"),
            tax_code("OLD", archived=True),
            tax_code("KEPT", archived=True),
            tax_code("S25"),
        ],
        accounts=[
            SourceAccount(external_id="1", name="Missing", tax_code="NONE"),
            SourceAccount(external_id="2", name="Refused", tax_code="bad"),
            SourceAccount(external_id="3", name="Archived, never created", tax_code="OLD"),
            SourceAccount(external_id="4", name="Archived in Pleo", tax_code="kept"),
            SourceAccount(external_id="5", name="Fine", tax_code="s25"),
        ],
    )
    pleo = [tax_entry("x1", "KEPT", "VAT", 0.25, archived=True)]

    result = plan(reader, pleo, ["x1"])

    references = {
        c.values["externalId"]: c.values["taxCodeExternalId"]
        for c in result.changes
        if c.kind is Kind.ACCOUNT
    }
    assert references == {"1": None, "2": None, "3": None, "4": "KEPT", "5": "S25"}
    account_problems = [(ref, msg) for kind, ref, msg in problems(result) if kind is Kind.ACCOUNT]
    assert [ref for ref, _ in account_problems] == ["1", "2", "3"]
    assert all(
        msg.endswith("the account is synced without a tax code") for _, msg in account_problems
    )
    assert "does not have ('NONE')" in account_problems[0][1]
    assert "left out" in account_problems[1][1]
    assert "archived in the source and not in Pleo" in account_problems[2][1]


def test_an_account_archived_while_its_tax_code_is_gone_from_pleo_is_archived_without_it() -> None:
    # A person changed the tax code's code in Pleo; Pleo refuses an account naming a tax code it
    # lacks, and an archive writes the whole account.
    reader = ListReader(
        tax_codes=[tax_code("NEW")],
        accounts=[SourceAccount(external_id="3", name="Archived here", archived=True)],
    )
    pleo = [
        tax_entry("x1", "S25", "VAT", 0.25, archived=True),
        account_entry("a1", "1", "Vanished", tax_code="GONE"),
        account_entry("a2", "2", "Vanished too", tax_code="s25"),  # Pleo still has S25
        account_entry("a3", "3", "Archived here", tax_code="GONE"),
        account_entry("a4", "4", "Vanished, naming what the plan creates", tax_code="new"),
    ]

    result = plan(reader, pleo, ["x1", "a1", "a2", "a3", "a4"])

    accounts = [c for c in result.changes if c.kind is Kind.ACCOUNT]
    assert [(c.action, c.pleo_id) for c in accounts] == [
        (Action.UPDATE, "a1"),
        (Action.ARCHIVE, "a1"),
        (Action.ARCHIVE, "a2"),
        (Action.UPDATE, "a3"),
        (Action.ARCHIVE, "a3"),
        (Action.ARCHIVE, "a4"),
    ]
    assert accounts[0].values == {**pleo[1].values, "taxCodeExternalId": None}
    assert accounts[3].values == {**pleo[3].values, "taxCodeExternalId": None}


def test_with_tax_codes_off_an_account_names_what_pleo_has() -> None:
    reader = ListReader(
        tax_codes=[tax_code("S25")],
        accounts=[
            SourceAccount(external_id="1", name="In Pleo", tax_code="s25"),
            SourceAccount(external_id="2", name="Not in Pleo", tax_code="S12"),
        ],
    )

    result = plan(
        reader, [tax_entry("x1", "S25", "VAT", 0.25)], choices=SyncChoices(tax_codes=False)
    )

    assert [c.values["taxCodeExternalId"] for c in result.changes] == ["S25", None]
    assert "tax_codes" not in reader.reads
    assert [ref for _, ref, _ in problems(result)] == ["2"]


def test_a_bad_record_never_stops_the_others() -> None:
    reader = ListReader(
        tax_codes=[tax_code("A", rate="5"), tax_code("B")],
        vendors=[
            SourceVendor(external_id="", name="", currency=""),
            SourceVendor(external_id="V", name="Fine", currency="DKK"),
        ],
    )

    result = plan(reader)

    assert actions(result) == [
        (Kind.TAX_CODE, Action.CREATE, "b"),
        (Kind.VENDOR, Action.CREATE, "v"),
    ]
    assert len(result.problems) == 2


# -- no changes, and reading ----------


def test_a_synced_pleo_makes_an_empty_plan() -> None:
    reader = ListReader(
        groups=[DEPT],
        tags=[SourceTag(group_code="DEPT", code="D-100", name="Sales")],
        tax_codes=[tax_code("S25", "VAT 25%", "0.2500")],
        vendors=[
            SourceVendor(
                external_id="V-1",
                name="Paper Co",
                currency="dkk",
                code="",
                country="dk",
                registration_number="123",
            )
        ],
        accounts=[SourceAccount(external_id="6100", name="Travel", tax_code="s25")],
    )
    pleo = [
        group_entry("g1", "DEPT", "Departments"),
        tag_entry("t1", "DEPT", "D-100", "Sales"),
        tax_entry("x1", "S25", "VAT 25%", 0.25),
        vendor_entry("v1", "V-1", "Paper Co", "DKK", country="DK", registration_number="123"),
        account_entry("a1", "6100", "Travel", tax_code="S25"),
    ]

    result = plan(reader, pleo, ["g1", "t1", "x1", "v1", "a1"])

    assert result == Plan()
    assert not result.has_writes
    assert reader.reads == ["tag_groups", "tags", "tax_codes", "vendors", "accounts"]


def test_streams_are_read_once_each_from_one_shot_iterators() -> None:
    class OneShot(ListReader):
        def tags(self) -> Iterator[SourceTag]:
            yield from (SourceTag(group_code="DEPT", code=f"T{n}", name="t") for n in range(3))

    reader = OneShot(groups=[DEPT])

    result = plan(reader)

    assert [c.kind for c in result.changes] == [Kind.TAG_GROUP] + [Kind.TAG] * 3


# -- normalisation, shared with the Pleo side ----------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.250"), "0.25"),
        (Decimal("1.000"), "1"),
        (Decimal("0"), "0"),
        (Decimal("-0"), "0"),
        (0.0, "0"),
        (1.0, "1"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("0.1"), "0.1"),
        (0.1, "0.1"),
    ],
)
def test_a_rate_is_the_decimal_string_of_the_double_pleo_keeps(
    value: Decimal | float, text: str
) -> None:
    assert normalise.rate(value) == text
    assert normalise.rate(float(normalise.rate(value))) == text  # what Pleo sends back


def test_a_rate_finer_than_a_double_compares_equal_to_what_pleo_keeps() -> None:
    fine = Decimal("0.12345678901234567890123")

    written = float(normalise.rate(fine))

    assert normalise.rate(fine) == normalise.rate(written)


def test_optional_text_and_countries_read_empty_as_none() -> None:
    values = normalise.vendor_values(
        external_id=" V ",
        code="",
        name="N",
        default_currency="dkk",
        country_code="UNDEFINED",
        registration_number="  ",
        tax_registration_number=None,
    )

    assert values == {
        "externalId": "V",
        "code": None,
        "name": "N",
        "defaultCurrency": "DKK",
        "country": None,
        "registrationNumber": None,
        "taxRegistrationNumber": None,
    }
    assert set(values) == set(normalise.VALUE_FIELDS[Kind.VENDOR])


def test_a_tax_code_type_is_written_as_pleo_names_it() -> None:
    reverse = SourceTaxCode(
        code="R", name="Reverse", rate=Decimal("0.25"), kind=TaxCodeKind.REVERSE
    )

    [change] = plan(ListReader(tax_codes=[reverse])).changes

    assert change.values["type"] == "reverse"
    assert match_key(change.values["code"]) == change.key


def test_an_external_id_that_differs_only_in_case_is_not_an_update() -> None:
    from pleo_connector.sync.normalise import account_values, differs

    assert not differs(
        Kind.ACCOUNT,
        account_values(external_id="ACC-1", code="6100", name="Travel", tax_code_external_id=None),
        account_values(external_id="acc-1", code="6100", name="Travel", tax_code_external_id=None),
    )
    wanted = {"externalId": "V-1", "name": "Paper Co", "defaultCurrency": "DKK"}
    assert not differs(Kind.VENDOR, wanted, {**wanted, "externalId": "v-1"})
    assert differs(Kind.VENDOR, wanted, {**wanted, "name": "Paper Company"})
