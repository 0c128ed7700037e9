"""KMS encryption of credentials, bound to their installation.

The installation id is the encryption context: KMS refuses to decrypt a ciphertext under any other
context, so a token or key copied onto another installation's row is useless there. Tokens and
keys are far under KMS's 4 KB limit, so direct Encrypt/Decrypt is enough (no data keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pleo_connector.aws import aws_errors
from pleo_connector.errors import ConnectorError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

# Errors that mean "this ciphertext does not belong here", not "KMS is having a bad day".
_NOT_DECRYPTABLE = frozenset(
    {
        "InvalidCiphertextException",
        "IncorrectKeyException",
        "AccessDeniedException",
        "InvalidKeyUsageException",
        "KMSInvalidStateException",
        "DisabledException",
        "NotFoundException",
    }
)


class CredentialError(ConnectorError):
    """The installation cannot authenticate with what is stored: the user must reconnect.
    Never retried. Messages name no secret and no ciphertext."""

    http_status: ClassVar[int] = 401
    user_message = "The stored connection could not be used. Please connect again."


class CredentialDecryptError(CredentialError):
    """The stored credential does not decrypt for this installation (a ciphertext moved from
    another row, another key, or garbage): an auth problem, not an outage."""


class CryptoError(ConnectorError):
    """KMS could not be used right now (throttled, unreachable): the request may succeed later."""

    http_status: ClassVar[int] = 503


class CredentialCipher:
    def __init__(self, key_id: str, kms_client: KMSClient | None = None) -> None:
        self.key_id = key_id
        self._client = kms_client

    @property
    def client(self) -> KMSClient:
        if self._client is None:
            from pleo_connector.aws import aws_client

            self._client = aws_client("kms")
        return self._client

    def encrypt(self, installation_id: str, plaintext: bytes) -> bytes:
        _require_installation(installation_id)
        request: dict[str, Any] = {
            "KeyId": self.key_id,
            "Plaintext": plaintext,
            "EncryptionContext": {"installation_id": installation_id},
        }
        try:
            response = self.client.encrypt(**request)
        except aws_errors() as error:
            raise _crypto_error(error, "Encrypt") from None
        return bytes(response["CiphertextBlob"])

    def decrypt(self, installation_id: str, ciphertext: bytes) -> bytes:
        _require_installation(installation_id)
        request: dict[str, Any] = {
            "KeyId": self.key_id,
            "CiphertextBlob": ciphertext,
            "EncryptionContext": {"installation_id": installation_id},
        }
        try:
            response = self.client.decrypt(**request)
        except aws_errors() as error:
            raise _crypto_error(error, "Decrypt") from None
        return bytes(response["Plaintext"])

    def encrypt_text(self, installation_id: str, plaintext: str) -> bytes:
        return self.encrypt(installation_id, plaintext.encode("utf-8"))

    def decrypt_text(self, installation_id: str, ciphertext: bytes) -> str:
        try:
            return self.decrypt(installation_id, ciphertext).decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialDecryptError(
                "stored credentials could not be decrypted for this installation"
            ) from None


def _require_installation(installation_id: str) -> None:
    if not installation_id:
        raise ValueError("an installation id is required as the encryption context")


def _crypto_error(error: Exception, operation: str) -> CryptoError | CredentialDecryptError:
    """Translate botocore's errors without chaining them: their text could echo request data."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", "Unknown"))
        if operation == "Decrypt" and code in _NOT_DECRYPTABLE:
            return CredentialDecryptError(
                "stored credentials could not be decrypted for this installation"
            )
        return CryptoError(f"KMS {operation} failed ({code})")
    return CryptoError(f"KMS {operation} failed ({type(error).__name__})")
