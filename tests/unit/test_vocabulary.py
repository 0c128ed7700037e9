"""A stored value that is not a member of its enum is an error that names the field, never a
silent default."""

from __future__ import annotations

import pytest

from pleo_connector.store.credentials import StoredCredential
from pleo_connector.store.installations import InstallationRecord
from pleo_connector.vocabulary import AuthMethod, UnknownStoredValueError, parse_stored

pytestmark = pytest.mark.unit


def test_a_known_value_parses_to_its_member() -> None:
    assert parse_stored(AuthMethod, "api_key", field="auth_method") is AuthMethod.API_KEY


def test_an_unknown_stored_auth_method_is_an_error_not_oauth() -> None:
    from pleo_connector.store.installations import _record_from_item

    item = {
        "pk": {"S": "INST#i"},
        "sk": {"S": "META"},
        "installation_id": {"S": "i"},
        "company_id": {"S": "c"},
        "auth_method": {"S": "saml"},
        "status": {"S": "ACTIVATED"},
        "version": {"N": "1"},
    }

    with pytest.raises(UnknownStoredValueError, match="auth_method") as raised:
        _record_from_item(item)

    assert "saml" not in str(raised.value)


def test_an_unknown_stored_credential_kind_is_an_error() -> None:
    from pleo_connector.store.credentials import _credential_from_item

    item = {"installation_id": {"S": "i"}, "kind": {"S": "password"}, "version": {"N": "1"}}

    with pytest.raises(UnknownStoredValueError, match="kind"):
        _credential_from_item(item)


def test_records_carry_members() -> None:
    assert InstallationRecord.__annotations__["auth_method"] == "AuthMethod"
    assert StoredCredential.__annotations__["kind"] == "AuthMethod"
