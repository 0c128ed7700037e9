"""What a customer configured for an installation, in the one shape the pages and the worker share:
the sync choices, and the accounting system's connection settings with their secrets sealed.

Neither the web nor the connect package owns this: the settings page writes it, the worker reads
it. Secrets (`SecretStr` fields) are encrypted with the installation id as KMS encryption context,
so a sealed value copied onto another installation's row does not open there.
"""

from __future__ import annotations

import base64
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

MAX_TAG_GROUPS = 5


class SyncChoices(BaseModel):
    """What the user picked to keep in sync; stored locally and in the installation metadata."""

    model_config = ConfigDict(defer_build=True)

    tag_groups: list[str] = Field(default_factory=list, max_length=MAX_TAG_GROUPS)
    tax_codes: bool = True
    vendors: bool = True
    accounts: bool = True


class Cipher(Protocol):
    """The part of `crypto.CredentialCipher` sealing needs."""

    def encrypt(self, installation_id: str, plaintext: bytes) -> bytes: ...

    def decrypt(self, installation_id: str, ciphertext: bytes) -> bytes: ...


def seal_connection(
    cipher: Cipher, installation_id: str, adapter_name: str, settings: BaseModel
) -> dict[str, Any]:
    """The stored form of `settings`: secrets encrypted and base64'd, the rest as JSON values."""
    values: dict[str, Any] = {}
    sealed: dict[str, str] = {}
    for name, value in settings:
        if isinstance(value, SecretStr):
            ciphertext = cipher.encrypt(installation_id, value.get_secret_value().encode())
            sealed[name] = base64.b64encode(ciphertext).decode("ascii")
        else:
            values[name] = settings.model_dump(mode="json", include={name})[name]
    return {"adapter": adapter_name, "values": values, "secrets": sealed}


def open_connection[ModelT: BaseModel](
    cipher: Cipher, installation_id: str, stored: object, model: type[ModelT]
) -> ModelT | None:
    """The stored settings with their secrets decrypted (server side only); None when nothing is
    stored or what is stored no longer fits the adapter's model (another adapter, an older form).
    A secret that does not decrypt raises the cipher's CredentialDecryptError."""
    if not isinstance(stored, dict):
        return None
    values: dict[str, Any] = dict(stored.get("values", {}))
    for name, ciphertext in dict(stored.get("secrets", {})).items():
        values[name] = cipher.decrypt(installation_id, base64.b64decode(ciphertext)).decode()
    try:
        return model.model_validate(values)
    except ValidationError:
        return None
