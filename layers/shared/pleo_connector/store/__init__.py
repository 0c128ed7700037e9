"""DynamoDB repositories: installations, credentials, OAuth state (one table, see template.yaml).

Every request goes through the adapter in dynamodb.py, the only module that knows botocore's
error codes. Domain records here are plain dataclasses; items are mapped explicitly.
"""

from pleo_connector.store.credentials import CredentialRepository, LeaseAttempt, StoredCredential
from pleo_connector.store.dynamodb import DynamoTable
from pleo_connector.store.errors import (
    CompanyAlreadyInstalledError,
    InstallationNotFoundError,
    StoreError,
    StoreUnavailableError,
    WriteConflictError,
)
from pleo_connector.store.installations import (
    AUTH_ERROR,
    InstallationRecord,
    InstallationRepository,
)
from pleo_connector.store.oauth_state import (
    OAuthState,
    OAuthStateError,
    OAuthStateStore,
    StateExpiredError,
    StateNotFoundError,
)

__all__ = [
    "AUTH_ERROR",
    "CompanyAlreadyInstalledError",
    "CredentialRepository",
    "DynamoTable",
    "InstallationNotFoundError",
    "InstallationRecord",
    "InstallationRepository",
    "LeaseAttempt",
    "OAuthState",
    "OAuthStateError",
    "OAuthStateStore",
    "StateExpiredError",
    "StateNotFoundError",
    "StoreError",
    "StoreUnavailableError",
    "StoredCredential",
    "WriteConflictError",
]
