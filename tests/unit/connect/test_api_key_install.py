"""The shape check of a pasted API key: clear messages that never repeat the key."""

from __future__ import annotations

import pytest

from pleo_connector.connect.api_key_install import check_api_key_shape
from pleo_connector.connect.errors import InvalidApiKeyError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "pasted",
    [
        "",
        "   ",
        "short-key",
        "pleo_key_\u00e6" + "k" * 20,
        "pleo key with spaces 123",
        "k" * 513,
        None,
    ],
)
def test_a_malformed_key_is_refused_without_repeating_it(pasted: str | None) -> None:
    with pytest.raises(InvalidApiKeyError) as raised:
        check_api_key_shape(pasted)

    assert raised.value.http_status == 400
    if pasted and pasted.strip():
        assert pasted.strip() not in raised.value.user_message


def test_a_well_formed_key_is_returned_without_surrounding_whitespace() -> None:
    assert check_api_key_shape("  pleo_key_0123456789abcdef\n") == "pleo_key_0123456789abcdef"
