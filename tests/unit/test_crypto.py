"""Credentials are encrypted with the installation id as KMS encryption context."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from moto import mock_aws

from pleo_connector.crypto import CredentialCipher, CredentialDecryptError
from pleo_connector.store.credentials import CredentialRepository
from pleo_connector.tokens import TokenStore
from tests.unit.store.support import make_kms_key, make_table

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.unit

SECRET = b"pleo-api-key-0123456789abcdef"


@pytest.fixture
def cipher() -> Iterator[CredentialCipher]:
    with mock_aws():
        client, key_id = make_kms_key()
        yield CredentialCipher(key_id, kms_client=client)


def test_round_trip(cipher: CredentialCipher) -> None:
    ciphertext = cipher.encrypt("inst-a", SECRET)

    assert SECRET not in ciphertext
    assert cipher.decrypt("inst-a", ciphertext) == SECRET


def test_another_installations_context_does_not_decrypt(cipher: CredentialCipher) -> None:
    ciphertext = cipher.encrypt("inst-a", SECRET)

    with pytest.raises(CredentialDecryptError) as raised:
        cipher.decrypt("inst-b", ciphertext)

    assert SECRET.decode() not in str(raised.value)
    assert raised.value.__cause__ is None  # botocore's error (and its request) is not chained


def test_garbage_is_a_decrypt_error(cipher: CredentialCipher) -> None:
    with pytest.raises(CredentialDecryptError):
        cipher.decrypt("inst-a", b"not a ciphertext at all")


def test_an_empty_installation_id_is_refused(cipher: CredentialCipher) -> None:
    with pytest.raises(ValueError, match="installation id"):
        cipher.encrypt("", SECRET)


def test_a_ciphertext_copied_to_another_installations_row_fails_as_an_auth_problem() -> None:
    with mock_aws():
        table = make_table()
        client, key_id = make_kms_key()
        store = TokenStore(CredentialRepository(table), CredentialCipher(key_id, kms_client=client))
        store.save_api_key("inst-a", SECRET.decode())
        store.save_api_key("inst-b", "the b key")
        row_a = table.get({"pk": {"S": "INST#inst-a"}, "sk": {"S": "CRED"}})
        assert row_a is not None
        table.put({**row_a, "pk": {"S": "INST#inst-b"}, "installation_id": {"S": "inst-b"}})

        assert store.api_key("inst-a") == SECRET.decode()
        with pytest.raises(CredentialDecryptError) as raised:
            store.api_key("inst-b")

    assert SECRET.decode() not in str(raised.value)


class BrokenClient:
    """A client whose call fails the way a bug would, not the way AWS does."""

    def encrypt(self, **request: object) -> dict[str, bytes]:
        raise TypeError("a programming error")

    def decrypt(self, **request: object) -> dict[str, bytes]:
        raise TypeError("a programming error")


def test_a_programming_error_surfaces_as_itself_not_as_a_kms_failure() -> None:
    from typing import Any

    client: Any = BrokenClient()
    broken = CredentialCipher("key", client)

    with pytest.raises(TypeError, match="programming error"):
        broken.encrypt("inst-a", b"x")
    with pytest.raises(TypeError, match="programming error"):
        broken.decrypt("inst-a", b"x")
