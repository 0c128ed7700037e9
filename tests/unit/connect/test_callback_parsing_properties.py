"""Property tests of the callback parser, which reads whatever a browser (or an attacker) puts in
the query: it either returns clean values or refuses with BadCallbackError, never anything else."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pleo_connector.connect.errors import BadCallbackError
from pleo_connector.connect.oauth_install import MAX_VALUE_CHARS, CallbackParams

pytestmark = pytest.mark.unit

NAMES = st.sampled_from(["code", "state", "error", "error_description", "iss", "other", "", "="])
VALUES = st.text(max_size=64)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(NAMES, VALUES), max_size=8))
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


@settings(max_examples=200, deadline=None)
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
