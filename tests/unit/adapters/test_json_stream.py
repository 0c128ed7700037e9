"""The pull reader decodes what the standard library decodes, wherever the chunks are cut, holds
one value at a time, and refuses what is not JSON without quoting it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pleo_connector.adapters.json_stream import (
    DuplicateKeyError,
    JsonStream,
    JsonSyntaxError,
    ValueTooLargeError,
)
from tests.support.snapshots import chunked

pytestmark = pytest.mark.unit

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def read_one(chunks: list[bytes]) -> Any:
    stream = JsonStream(chunks)
    value = stream.value()
    stream.end()
    return value


@given(value=json_values, data=st.data())
@example(value=[7, -0.5, 1e100, -0.0, 12345678901234567890], data=None)
def test_any_json_value_decodes_as_the_standard_library_does_wherever_it_is_cut(
    value: Any, data: st.DataObject | None
) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=1).encode()
    size = data.draw(st.integers(1, max(1, len(text))), label="chunk size") if data else 1

    assert read_one(chunked(text, size)) == json.loads(text, parse_float=Decimal)


def test_numbers_with_a_fraction_are_decimals_from_their_text_never_floats() -> None:
    value = read_one([b'{"rate": 0.1, "big": 1e400, "whole": 3}'])

    assert value == {"rate": Decimal("0.1"), "big": Decimal("1e400"), "whole": 3}
    assert type(value["rate"]) is Decimal
    assert type(value["whole"]) is int


def test_objects_and_arrays_are_walked_one_value_at_a_time() -> None:
    stream = JsonStream(chunked(b' {"a": [1, {"b": 2}, "three"], "c": {}} ', 3))
    seen: list[Any] = []

    for key in stream.object_keys():
        if key == "a":
            seen.extend((index, stream.value()) for index in stream.array_items())
        else:
            seen.append((key, stream.value()))
    stream.end()

    assert seen == [(0, 1), (1, {"b": 2}), (2, "three"), ("c", {})]


def test_empty_objects_and_arrays_have_no_keys_or_items() -> None:
    stream = JsonStream([b'{"a": [], "b": []}'])
    counts = {key: len(list(stream.array_items())) for key in stream.object_keys()}

    assert counts == {"a": 0, "b": 0}


def test_a_byte_order_mark_is_allowed() -> None:
    assert read_one([b"\xef\xbb", b"\xbf[1]"]) == [1]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'[1, 2,, 3] "s3cr3t"', "Expecting value"),
        (b'{"a": NaN, "k": "s3cr3t"}', "NaN is not a JSON number"),
        (b'{"a": Infinity}', "Infinity is not a JSON number"),
        (b'["s3cr3t"', "Expecting ',' delimiter"),
        (b'["s3cr3t" "b"]', "Expecting ',' delimiter"),
        (b'{"k": "s3cr3t\n"}', "Invalid control character"),
        (b'["s3cr3t"] x', "there is more text after the end of the document"),
        (b"\xff\xfe", "the text is not UTF-8"),
        (b"", "the text ends where a value should be"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[" + b"1" * 5000 + b"]", "too many digits"),
    ],
)
def test_what_is_not_json_is_refused_with_a_reason_that_quotes_nothing(
    text: bytes, reason: str
) -> None:
    with pytest.raises(JsonSyntaxError) as raised:
        read_one(chunked(text, 4))

    assert reason in raised.value.reason
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'{"a": 1 "b": 2}', "expected a comma or the end of an object"),
        (b'{"a": [1 2]}', "expected a comma or the end of a list"),
        (b'{"a": [1', "expected a comma or the end of a list"),
        (b'{"a" 1}', "expected a colon after a key"),
        (b"{a: 1}", "expected a key in quotes"),
        (b"[1]", "expected an object"),
    ],
)
def test_walking_refuses_a_broken_structure(text: bytes, reason: str) -> None:
    stream = JsonStream(chunked(text, 3))

    def walk() -> None:
        for _key in stream.object_keys():
            if stream.peek() == "[":
                for _ in stream.array_items():
                    stream.value()
            else:
                stream.value()

    with pytest.raises(JsonSyntaxError) as raised:
        walk()

    assert raised.value.reason == reason


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(JsonSyntaxError) as raised:
        read_one(chunked(b"[\n1,\n2,\n\n  x]", 2))

    assert raised.value.line == 5


def test_a_key_twice_in_one_object_is_refused_by_name() -> None:
    with pytest.raises(DuplicateKeyError) as raised:
        read_one([b'[{"code": "a", "name": "x", "code": "b"}]'])

    assert raised.value.key == "code"


def test_a_value_longer_than_the_cap_is_refused_rather_than_buffered() -> None:
    stream = JsonStream(chunked(b'["' + b"x" * 5000 + b'"]', 100), max_value_chars=1000)
    items = stream.array_items()
    next(items)

    with pytest.raises(ValueTooLargeError):
        stream.value()


def test_a_syntax_error_early_in_a_large_value_is_not_reported_as_its_size() -> None:
    stream = JsonStream(
        chunked(b'[{"a": 1 "b": "' + b"x" * 5000 + b'"}]', 100), max_value_chars=1000
    )
    next(stream.array_items())

    with pytest.raises(JsonSyntaxError, match="delimiter"):
        stream.value()
