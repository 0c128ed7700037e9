"""The JSON snapshot format, version 1, checked record by record as the document streams in.

The models mirror the published schema, `schemas/snapshot-v1.schema.json` (a unit test proves
that both accept and refuse the same documents), so the layer needs no schema library. They
check the shape alone: what Pleo would refuse (an empty code, a name too long, a rate out of
range) is reported by the planner per record, so that one odd record never stops a run. What
the schema cannot say is refused too: a key twice in one object.

`read_snapshot` walks one document and hands each valid record to a sink; on the first bad one
it raises SourceError naming it by its path in the document (`vendors[3].currency`). Messages
never repeat a value from the document.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.json_stream import (
    DuplicateKeyError,
    JsonStream,
    JsonSyntaxError,
    ValueTooLargeError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

FORMAT_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "snapshot-v1.schema.json"
MAX_RECORD_CHARS = 1024 * 1024
# A key named in a message: only when it looks like a field name, never like data.
_NAMEABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _json_number(value: object) -> Decimal:
    """A JSON number, as the stream decoded it (an int, or a Decimal from its text); a string or
    a boolean is not one."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise PydanticCustomError("number_type", "must be a number")
    return Decimal(value)


JsonNumber = Annotated[Decimal, PlainValidator(_json_number)]
TaxType = Literal["inclusive", "exclusive", "reverse"]


class _Record(BaseModel):
    # strict: a JSON string is not a number, nor 0 a boolean; extra="forbid": a misspelt field
    # is an error, not silently dropped.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class TagGroupV1(_Record):
    """A tag group without its tags (they stream on their own)."""

    code: str
    name: str
    archived: bool = False


class TagV1(_Record):
    code: str
    name: str
    archived: bool = False


class TaxCodeV1(_Record):
    code: str
    name: str
    rate: JsonNumber
    type: TaxType
    archived: bool = False


class VendorV1(_Record):
    external_id: str = Field(alias="externalId")
    code: str | None = None
    name: str
    currency: str
    country: str | None = None
    registration_number: str | None = Field(default=None, alias="registrationNumber")
    tax_registration_number: str | None = Field(default=None, alias="taxRegistrationNumber")
    archived: bool = False


class AccountV1(_Record):
    external_id: str = Field(alias="externalId")
    code: str | None = None
    name: str
    tax_code: str | None = Field(default=None, alias="taxCode")
    archived: bool = False


class SnapshotSink(Protocol):
    """Where valid records go, in document order. A tag names its group by the group's index in
    `tagGroups`: a group's code may come after its tags in the document."""

    def tag_group(self, index: int, group: TagGroupV1) -> None: ...

    def tag(self, group_index: int, tag: TagV1) -> None: ...

    def tax_code(self, tax_code: TaxCodeV1) -> None: ...

    def vendor(self, vendor: VendorV1) -> None: ...

    def account(self, account: AccountV1) -> None: ...


SECTIONS = ("tagGroups", "taxCodes", "vendors", "accounts")
# Every section is required, empty or not: a section missing by mistake must not read as
# "everything in it is gone", which would archive it all in Pleo.
REQUIRED = ("version", *SECTIONS)

_PROBLEMS = {
    "missing": "is missing",
    "extra_forbidden": "is not a field of this format",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "number_type": "must be a number",
    "model_type": "must be an object",
    "dict_type": "must be an object",
}


def read_snapshot(
    chunks: Iterable[bytes],
    sink: SnapshotSink,
    *,
    max_record_chars: int = MAX_RECORD_CHARS,
    tag_groups_only: bool = False,
) -> None:
    """Check the document in `chunks` and hand its records to `sink`; SourceError on the first
    problem. The sink may already hold records by then: the caller drops them all.

    `tag_groups_only` reads what the settings page needs, fast: the groups are checked and
    handed over, tags and other sections are only read past, and reading stops at the end of
    `tagGroups` (a document that puts it first is read no further)."""
    reader = _DocumentReader(
        JsonStream(chunks, max_value_chars=max_record_chars), sink, groups_only=tag_groups_only
    )
    try:
        reader.read()
    except JsonSyntaxError as error:
        reason = error.reason.removesuffix(" at").rstrip(".")
        where = f", in {reader.where}" if reader.where else ""
        raise _invalid(
            f"The snapshot is not valid JSON: {reason} (line {error.line}{where}).",
            reader.where or None,
        ) from None
    except ValueTooLargeError:
        raise _invalid(
            f"The snapshot was refused: {reader.where or 'a value'} is larger than"
            f" {max_record_chars // 1024} kB.",
            reader.where or None,
        ) from None
    except DuplicateKeyError as error:
        path = _path(reader.where, error.key)
        raise _invalid(
            f"The snapshot was refused: {path} appears twice in one object.", path
        ) from None


class _DocumentReader:
    def __init__(self, stream: JsonStream, sink: SnapshotSink, *, groups_only: bool) -> None:
        self.stream = stream
        self.sink = sink
        self.groups_only = groups_only
        self.where = ""  # the path being read, for messages

    def read(self) -> None:
        stream = self.stream
        first = stream.peek()
        if not first:
            raise _invalid("The snapshot is empty.", None)
        if first != "{":
            raise _invalid("The snapshot must be a JSON object (it starts with { ).", None)
        seen: set[str] = set()
        for key in stream.object_keys():
            self.where = _path("", key)
            if key in seen:
                raise _invalid(
                    f"The snapshot was refused: {self.where or 'a field'} appears twice.",
                    self.where or None,
                )
            seen.add(key)
            if key == "version":
                self._version(stream.value())
            elif key == "tagGroups":
                self._tag_groups()
                if self.groups_only:
                    return
            elif self.groups_only and key in SECTIONS:
                for _ in self._items(key):
                    pass
            elif key == "taxCodes":
                for where, raw in self._items(key):
                    self.sink.tax_code(_valid(TaxCodeV1, raw, where))
            elif key == "vendors":
                for where, raw in self._items(key):
                    self.sink.vendor(_valid(VendorV1, raw, where))
            elif key == "accounts":
                for where, raw in self._items(key):
                    self.sink.account(_valid(AccountV1, raw, where))
            else:
                raise _unknown_field("", key)
        self.where = ""
        stream.end()
        for key in REQUIRED:
            if key not in seen:
                raise _invalid(f"The snapshot was refused: {key} is missing.", key)

    def _version(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise _invalid(
                f"The snapshot was refused: version must be {FORMAT_VERSION}.", "version"
            )
        if value != FORMAT_VERSION:
            shown = f" {value}" if isinstance(value, int) else ""
            raise _invalid(
                f"The snapshot is of another version{shown}; this connector reads version"
                f" {FORMAT_VERSION}.",
                "version",
            )

    def _items(self, section: str) -> Iterable[tuple[str, Any]]:
        """(path, decoded item) of the list at `section`, one at a time."""
        if self.stream.peek() != "[":
            raise _invalid(f"The snapshot was refused: {section} must be a list.", section)
        for index in self.stream.array_items():
            self.where = f"{section}[{index}]"
            yield self.where, self.stream.value()

    def _tag_groups(self) -> None:
        stream = self.stream
        if stream.peek() != "[":
            raise _invalid("The snapshot was refused: tagGroups must be a list.", "tagGroups")
        for index in stream.array_items():
            where = f"tagGroups[{index}]"
            self.where = where
            if stream.peek() != "{":
                raise _invalid(f"The snapshot was refused: {where} must be an object.", where)
            fields: dict[str, Any] = {}
            has_tags = False
            for key in stream.object_keys():
                self.where = where
                if key in fields or (key == "tags" and has_tags):
                    path = _path(where, key)
                    raise _invalid(
                        f"The snapshot was refused: {path} appears twice in one object.", path
                    )
                if key != "tags":
                    fields[key] = stream.value()
                    continue
                has_tags = True
                if stream.peek() != "[":
                    raise _invalid(
                        f"The snapshot was refused: {where}.tags must be a list.", f"{where}.tags"
                    )
                for position in stream.array_items():
                    self.where = f"{where}.tags[{position}]"
                    raw = stream.value()
                    if not self.groups_only:
                        self.sink.tag(index, _valid(TagV1, raw, self.where))
            self.where = where
            self.sink.tag_group(index, _valid(TagGroupV1, fields, where))


def _valid[RecordT: _Record](model: type[RecordT], raw: Any, where: str) -> RecordT:
    if not isinstance(raw, dict):
        raise _invalid(f"The snapshot was refused: {where} must be an object.", where)
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        location = first["loc"]
        key = str(location[0]) if location else None
        if first["type"] == "extra_forbidden" and key is not None:
            raise _unknown_field(where, key) from None
        path = _path(where, key) if key is not None else where
        problem = _PROBLEMS.get(first["type"])
        if problem is None and first["type"] == "literal_error":
            problem = f"must be {first.get('ctx', {}).get('expected', 'one of the allowed values')}"
        raise _invalid(
            f"The snapshot was refused: {path} {problem or 'is not valid'}.", path
        ) from None


def _unknown_field(where: str, key: str) -> SourceError:
    if _NAMEABLE.fullmatch(key):
        path = _path(where, key)
        return _invalid(f"The snapshot was refused: {path} is not a field of this format.", path)
    owner = where or "the document"
    return _invalid(
        f"The snapshot was refused: {owner} has a field that this format does not have.",
        where or None,
    )


def _path(where: str, key: str) -> str:
    """`where.key`, or `where` alone when the key does not look like a field's name."""
    if not _NAMEABLE.fullmatch(key):
        return where
    return f"{where}.{key}" if where else key


def _invalid(message: str, location: str | None) -> SourceError:
    return SourceError(message, problem=SourceProblem.INVALID, location=location)
