"""A snapshot document is checked record by record against format version 1. The first bad
record is named by its path in the document, no value from the document is repeated, and the
layer's models accept and refuse exactly what the published JSON Schema does."""

from __future__ import annotations

import json
import re
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.records import TaxCodeKind
from pleo_connector.adapters.snapshot_v1 import SCHEMA_PATH, TaxType, read_snapshot
from tests.support.snapshots import EXAMPLE, RecordingSink, chunked, encoded, example

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-value"


def read(document: Any, *, chunk: int = 7) -> RecordingSink:
    sink = RecordingSink()
    data = document if isinstance(document, bytes) else encoded(document)
    read_snapshot(chunked(data, chunk), sink)
    return sink


def refusal(document: Any) -> SourceError:
    with pytest.raises(SourceError) as raised:
        read(document)
    assert raised.value.problem is SourceProblem.INVALID
    return raised.value


def test_the_example_is_read_with_every_field() -> None:
    sink = read(example())

    [(group_index, group)] = sink.groups
    assert (group_index, group.code, group.name, group.archived) == (
        0,
        "DEPT",
        "Departments",
        False,
    )
    [(tag_group, tag)] = sink.tags
    assert (tag_group, tag.code, tag.name) == (0, "D-100", "Sales")
    [tax] = sink.tax_codes
    assert (tax.code, tax.rate, tax.type) == ("S25", Decimal("0.25"), "inclusive")
    [vendor] = sink.vendors
    assert (vendor.external_id, vendor.currency, vendor.country) == ("V-1", "DKK", "DK")
    assert vendor.registration_number is None
    [account] = sink.accounts
    assert (account.external_id, account.tax_code) == ("6100", "S25")


def test_the_documented_example_is_the_one_tested_and_is_valid() -> None:
    guide = (Path(__file__).resolve().parents[3] / "docs" / "adapters.md").read_text("utf-8")
    [block] = re.findall(r"```json\n(.*?)```", guide, flags=re.DOTALL)

    assert json.loads(block) == EXAMPLE
    assert len(read(block.encode()).vendors) == 1


def test_a_rate_is_the_decimal_its_text_says() -> None:
    document = example()
    document["taxCodes"][0]["rate"] = 0.1
    text = encoded(document).replace(b"0.1", b"0.10000000000000000001")

    [tax] = read(text).tax_codes

    assert tax.rate == Decimal("0.10000000000000000001")


def test_optional_fields_may_be_left_out() -> None:
    document = {
        "version": 1,
        "tagGroups": [{"code": "P", "name": "Projects"}],
        "taxCodes": [{"code": "Z", "name": "Zero", "rate": 0, "type": "exclusive"}],
        "vendors": [{"externalId": "V", "name": "V", "currency": "EUR"}],
        "accounts": [{"externalId": "A", "name": "A"}],
    }

    sink = read(document)

    assert sink.tags == []
    assert sink.groups[0][1].archived is False
    assert sink.tax_codes[0].rate == Decimal(0)
    assert sink.vendors[0].code is None
    assert sink.accounts[0].tax_code is None


def test_the_schema_types_are_the_records_tax_code_kinds() -> None:
    assert set(typing.get_args(TaxType)) == {kind.value for kind in TaxCodeKind}


def _set(path: list[Any], value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        _at(document, path[:-1])[path[-1]] = value

    return change


def _drop(path: list[Any]) -> Any:
    def change(document: dict[str, Any]) -> None:
        del _at(document, path[:-1])[path[-1]]

    return change


def _at(document: dict[str, Any], path: list[Any]) -> Any:
    target: Any = document
    for step in path:
        target = target[step]
    return target


def _with_vendors(count: int) -> dict[str, Any]:
    document = example()
    vendor = document["vendors"][0]
    document["vendors"] = [{**vendor, "externalId": f"V-{n}"} for n in range(count)]
    return document


@pytest.mark.parametrize(
    ("change", "location", "words"),
    [
        (_drop(["vendors", 0, "currency"]), "vendors[0].currency", "is missing"),
        (_set(["vendors", 0, "currency"], 208), "vendors[0].currency", "must be a string"),
        (_set(["vendors", 0, "externalId"], None), "vendors[0].externalId", "must be a string"),
        (_set(["vendors", 0, "archived"], "no"), "vendors[0].archived", "must be true or false"),
        (_set(["vendors", 0, "archived"], 0), "vendors[0].archived", "must be true or false"),
        (_set(["taxCodes", 0, "rate"], SECRET), "taxCodes[0].rate", "must be a number"),
        (_set(["taxCodes", 0, "rate"], True), "taxCodes[0].rate", "must be a number"),
        (_set(["taxCodes", 0, "type"], SECRET), "taxCodes[0].type", "must be 'inclusive'"),
        (_drop(["taxCodes", 0, "type"]), "taxCodes[0].type", "is missing"),
        (_set(["accounts", 0, "taxCode"], 25), "accounts[0].taxCode", "must be a string"),
        (_set(["accounts", 0, "colour"], SECRET), "accounts[0].colour", "not a field"),
        (_set(["tagGroups", 0, "code"], None), "tagGroups[0].code", "must be a string"),
        (_set(["tagGroups", 0, "tags"], {}), "tagGroups[0].tags", "must be a list"),
        (
            _set(["tagGroups", 0, "tags", 0, "name"], ["x"]),
            "tagGroups[0].tags[0].name",
            "must be a string",
        ),
        (_set(["tagGroups", 0, "tags", 0], SECRET), "tagGroups[0].tags[0]", "must be an object"),
        (_set(["vendors", 0], None), "vendors[0]", "must be an object"),
        (_set(["vendors"], {}), "vendors", "must be a list"),
        (_drop(["accounts"]), "accounts", "is missing"),
        (_drop(["version"]), "version", "is missing"),
        (_set(["version"], 2), "version", "version 2"),
        (_set(["version"], "1"), "version", "version must be 1"),
        (_set(["version"], True), "version", "version must be 1"),
        (_set(["vendor"], []), "vendor", "not a field"),
        (_set([f"{SECRET} key!"], 1), None, "has a field that this format does not have"),
        (
            _set(["vendors", 0, f"{SECRET} key!"], 1),
            "vendors[0]",
            "has a field that this format does not have",
        ),
    ],
)
def test_the_first_bad_record_is_named_by_its_path_and_no_value_is_repeated(
    change: Any, location: str | None, words: str
) -> None:
    document = example()
    change(document)

    error = refusal(document)

    assert error.location == location
    if location:
        assert location in error.user_message
    assert words in error.user_message
    assert SECRET not in error.user_message
    assert SECRET not in str(error)


def test_the_path_counts_records_from_zero_in_document_order() -> None:
    document = _with_vendors(5)
    del document["vendors"][3]["currency"]
    document["vendors"][4]["currency"] = 1

    assert refusal(document).location == "vendors[3].currency"


def test_a_key_twice_in_one_record_is_refused_although_the_schema_cannot_say_so() -> None:
    text = encoded(example()).replace(b'"currency": "DKK"', b'"currency": "DKK", "currency": "X"')

    error = refusal(text)

    assert error.location == "vendors[0].currency"
    assert "twice" in error.user_message


def test_a_section_twice_is_refused() -> None:
    text = encoded(example())[:-1] + b', "vendors": []}'

    assert refusal(text).location == "vendors"


def test_not_json_is_refused_with_the_line_and_the_record_it_was_in() -> None:
    text = json.dumps(example(), indent=1).replace('"Paper Co"', f'"{SECRET}" oops').encode()

    error = refusal(text)

    assert error.location == "vendors[0]"
    assert "not valid JSON" in error.user_message
    assert "line " in error.user_message
    assert SECRET not in error.user_message


@pytest.mark.parametrize(
    ("text", "words"),
    [(b"", "empty"), (b"  \n", "empty"), (b"[]", "JSON object"), (b'"x"', "JSON object")],
)
def test_a_document_that_is_not_an_object_is_refused(text: bytes, words: str) -> None:
    assert words in refusal(text).user_message


def test_a_record_over_the_size_cap_is_refused_by_its_path() -> None:
    document = example()
    document["vendors"][0]["name"] = "x" * 5000
    sink = RecordingSink()

    with pytest.raises(SourceError) as raised:
        read_snapshot(chunked(encoded(document), 512), sink, max_record_chars=2048)

    assert raised.value.location == "vendors[0]"
    assert "larger than 2 kB" in raised.value.user_message


def test_a_group_whose_code_follows_its_tags_is_read() -> None:
    document = example()
    group = document["tagGroups"][0]
    document["tagGroups"] = [{"tags": group["tags"], "name": "Departments", "code": "DEPT"}]

    sink = read(document)

    assert [(index, tag.code) for index, tag in sink.tags] == [(0, "D-100")]
    assert sink.groups[0][1].code == "DEPT"


# --- the models mirror the published schema ------------------------------------------------------


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_paths(validator: Any, document: Any) -> list[str]:
    """Where the schema finds errors, written the way the reader names paths."""
    paths: list[str] = []
    for error in validator.iter_errors(document):
        path = ""
        for step in error.absolute_path:
            path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else str(step))
        paths.append(path)
    return paths


def models_refuse(text: bytes) -> SourceError | None:
    try:
        read_snapshot(chunked(text, 13), RecordingSink())
    except SourceError as error:
        return error
    return None


def agree(validator: Any, document: Any) -> None:
    """The schema and the reader give one verdict; on a refusal, the reader's path is at, or
    inside, a place where the schema finds an error too."""
    text = encoded(document)
    paths = schema_paths(validator, json.loads(text))
    error = models_refuse(text)
    assert (error is None) == (not paths), (paths, error and error.user_message)
    if error is not None:
        location = error.location or ""
        assert any(
            location == path or location.startswith((f"{path}.", f"{path}[")) or not path
            for path in paths
        ), (location, paths)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: None,
        lambda d: d.update(tagGroups=[], taxCodes=[], vendors=[], accounts=[]),
        _drop(["tagGroups", 0, "tags"]),
        _drop(["tagGroups", 0, "archived"]),
        _set(["taxCodes", 0, "rate"], 1),
        _set(["taxCodes", 0, "rate"], -3.5e-7),
        _set(["taxCodes", 0, "type"], "reverse"),
        _set(["vendors", 0, "code"], None),
        _drop(["vendors", 0, "country"]),
        _set(["accounts", 0, "name"], "Rejse 🚆 ✓"),
        _set(["version"], 1.0),
        _set(["version"], 2),
        _set(["version"], True),
        _set(["version"], "1"),
        _drop(["taxCodes"]),
        _set(["taxCodes"], None),
        _set(["extra"], 1),
        _drop(["tagGroups", 0, "code"]),
        _set(["tagGroups", 0, "name"], 5),
        _set(["tagGroups", 0, "archived"], None),
        _set(["tagGroups", 0, "tags", 0, "archived"], "false"),
        _set(["tagGroups", 0, "tags", 0, "id"], "x"),
        _set(["tagGroups", 0, "tags"], None),
        _set(["taxCodes", 0, "rate"], "0.25"),
        _set(["taxCodes", 0, "rate"], False),
        _set(["taxCodes", 0, "type"], "INCLUSIVE"),
        _drop(["taxCodes", 0, "name"]),
        _drop(["vendors", 0, "externalId"]),
        _set(["vendors", 0, "country"], 45),
        _set(["vendors", 0, "registrationNumber"], 12345678),
        _set(["accounts", 0, "code"], 6100),
        _set(["accounts", 0], []),
        _set(["accounts", 0], "6100"),
    ],
)
def test_the_schema_and_the_models_agree_on_these_documents(
    schema_validator: Any, change: Any
) -> None:
    document = example()
    change(document)

    agree(schema_validator, document)


def test_a_top_level_that_is_not_an_object_is_refused_by_both(schema_validator: Any) -> None:
    documents: list[Any] = [[], "snapshot", 1, None]
    for document in documents:
        agree(schema_validator, document)


# Values of every JSON type, to put where a field is expected.
any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.25, -1.5, 1e-9]),
    st.sampled_from(["", "x", "inclusive", "exclusive", "reverse", "DKK"]),
    st.just([]),
    st.just({}),
)
FIELDS = {
    "tagGroups": ["code", "name", "archived", "tags", "id"],
    "tags": ["code", "name", "archived", "group"],
    "taxCodes": ["code", "name", "rate", "type", "archived", "percent"],
    "vendors": [
        "externalId",
        "code",
        "name",
        "currency",
        "country",
        "registrationNumber",
        "taxRegistrationNumber",
        "archived",
        "email",
    ],
    "accounts": ["externalId", "code", "name", "taxCode", "archived", "type"],
}


VALUES: list[Any] = [None, True, 0, 2, 0.25, "", "reverse", [], {}]


def _record_path(section: str) -> list[Any]:
    return ["tagGroups", 0, "tags", 0] if section == "tags" else [section, 0]


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        (section, field, value)
        for section, fields in FIELDS.items()
        for field in fields
        for value in [*VALUES, "drop"]
    ],
)
def test_the_schema_and_the_models_agree_on_every_field_set_to_every_kind_of_value(
    schema_validator: Any, section: str, field: str, value: Any
) -> None:
    document = example()
    path = [*_record_path(section), field]
    if value == "drop":
        if field in _at(document, path[:-1]):
            _drop(path)(document)
    else:
        _set(path, value)(document)

    agree(schema_validator, document)


@st.composite
def changed_documents(draw: st.DrawFn) -> dict[str, Any]:
    """The example with a few records more, and a few fields set to anything or dropped."""
    document = example()
    document["vendors"].append({"externalId": "V-2", "name": "Ink Ltd", "currency": "EUR"})
    document["tagGroups"][0]["tags"].append({"code": "D-200", "name": "Support"})
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from([*FIELDS]))
        group = document["tagGroups"][0]
        records = group.get("tags") if section == "tags" else document[section]
        if not isinstance(records, list) or not records:
            continue
        record = records[draw(st.integers(0, len(records) - 1))]
        if not isinstance(record, dict):
            continue
        field = draw(st.sampled_from(FIELDS[section]))
        if draw(st.booleans()):
            record.pop(field, None)
        else:
            record[field] = draw(any_value)
    if draw(st.integers(0, 9)) == 0:
        document[draw(st.sampled_from(["version", "vendors", "taxCodes"]))] = draw(any_value)
    return document


@given(document=changed_documents())
def test_the_schema_and_the_models_agree_on_changed_documents(
    schema_validator: Any, document: dict[str, Any]
) -> None:
    agree(schema_validator, document)
