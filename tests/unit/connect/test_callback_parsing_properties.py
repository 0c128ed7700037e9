"""Property tests of the callback parser, which reads whatever a browser (or an attacker) puts in
the query: it either returns clean values or refuses with BadCallbackError, never anything else.

They run derandomized (the "ci" profile in tests/conftest.py); `make fuzz` draws many more. A
counterexample found once is kept as an `@example`, so it is checked on every run."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pleo_connector.connect.errors import BadCallbackError
from pleo_connector.connect.oauth_install import MAX_VALUE_CHARS, CallbackParams

pytestmark = pytest.mark.unit

NAMES = st.sampled_from(["code", "state", "error", "error_description", "iss", "other", "", "="])
VALUES = st.text(max_size=64)
TOKEN_NAMES = ("code", "state", "error", "iss")
# What a token parameter may hold (printable ASCII, no space), the empty string included.
TOKENS = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=16)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


@given(st.lists(st.tuples(NAMES, VALUES), max_size=8))
@example([("state", "0"), ("iss", "")])
def test_any_query_is_either_clean_or_refused(pairs: list[tuple[str, str]]) -> None:
    try:
        params = CallbackParams.parse(_query(pairs))
    except BadCallbackError:
        return
    tokens = [params.state, params.code, params.error, params.iss]
    for value in (v for v in tokens if v is not None):
        assert value
        assert len(value) <= MAX_VALUE_CHARS
        assert all(33 <= ord(ch) <= 126 for ch in value)
    if params.error_description is not None:
        assert all(32 <= ord(ch) <= 126 for ch in params.error_description)


@given(st.dictionaries(st.sampled_from(TOKEN_NAMES), TOKENS, min_size=1))
def test_token_values_come_back_as_sent_and_an_empty_one_is_refused(values: dict[str, str]) -> None:
    query = _query(list(values.items()))
    if "state" not in values or "" in values.values():
        with pytest.raises(BadCallbackError):
            CallbackParams.parse(query)
        return

    params = CallbackParams.parse(query)

    assert (params.state, params.code, params.error, params.iss) == (
        values["state"],
        values.get("code"),
        values.get("error"),
        values.get("iss"),
    )


@given(st.text(max_size=200))
def test_raw_garbage_is_either_clean_or_refused(raw: str) -> None:
    try:
        params = CallbackParams.parse(raw)
    except BadCallbackError:
        return
    assert params.state


@given(st.sampled_from(["code", "state", "error", "iss"]), st.text(min_size=1, max_size=20))
def test_a_repeated_parameter_is_always_refused(name: str, value: str) -> None:
    pairs = [("state", "s" * 43), (name, value), (name, value)]
    with pytest.raises(BadCallbackError):
        CallbackParams.parse(_query(pairs))
