"""KMS on moto's server enforces the encryption context, as KMS does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pleo_connector.crypto import CredentialCipher, CredentialDecryptError
from pleo_connector.store.credentials import CredentialRepository
from pleo_connector.tokens import TokenStore

if TYPE_CHECKING:
    from pleo_connector.store.dynamodb import DynamoTable

pytestmark = pytest.mark.integration


def test_round_trip_and_wrong_context(cipher: CredentialCipher) -> None:
    ciphertext = cipher.encrypt("inst-a", b"secret-token")

    assert cipher.decrypt("inst-a", ciphertext) == b"secret-token"
    with pytest.raises(CredentialDecryptError):
        cipher.decrypt("inst-b", ciphertext)


def test_a_credential_row_copied_to_another_installation_does_not_decrypt(
    table: DynamoTable, cipher: CredentialCipher, unique: str
) -> None:
    store = TokenStore(CredentialRepository(table), cipher)
    victim, attacker = f"{unique}-victim", f"{unique}-attacker"
    store.save_api_key(victim, "victim-key")
    store.save_api_key(attacker, "attacker-key")
    row = table.get({"pk": {"S": f"INST#{victim}"}, "sk": {"S": "CRED"}})
    assert row is not None

    table.put({**row, "pk": {"S": f"INST#{attacker}"}, "installation_id": {"S": attacker}})

    with pytest.raises(CredentialDecryptError) as raised:
        store.api_key(attacker)
    assert "victim-key" not in str(raised.value)
    assert store.api_key(victim) == "victim-key"
