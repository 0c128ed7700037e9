"""In-memory stand-ins for the collaborators of the connect flows (no network, no AWS)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pleo_connector.config import PleoSettings, QueueSettings, StoreSettings, WebSettings
from pleo_connector.connect.wiring import Collaborators
from pleo_connector.pleo.models import Installation, Introspection
from pleo_connector.store.installations import InstallationRecord
from pleo_connector.store.oauth_state import OAuthState, StateNotFoundError
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.web.csrf import BrowserBindingError

COMPANY = "6f1c2a9e-3b7d-4c5e-9a1f-2d8b4e6c0a11"
INSTALLATION = "0b7e4d2a-9c1f-4e3b-8a6d-5f2c1e9b7a30"
ISSUER = "https://auth.pleo.example"


class FakeStates:
    def __init__(self, *states: str) -> None:
        self.live = set(states)
        self.consumed: list[str] = []

    def consume(self, state: str) -> OAuthState:
        if state not in self.live:
            raise StateNotFoundError("unknown", operation="DeleteItem")
        self.live.remove(state)
        self.consumed.append(state)
        return OAuthState("hash", "v" * 43, "https://app.example/oauth/callback", "binding", 0.0)


class FakeBinding:
    def __init__(self, matches: bool = True) -> None:
        self.matches = matches

    def verify(self, cookies: Any, expected_hash: str) -> None:
        if not self.matches:
            raise BrowserBindingError("another browser")


@dataclass
class FakeOAuthClient:
    error: Exception | None = None
    exchanges: list[tuple[str, str, str]] = field(default_factory=list)

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> Any:
        self.exchanges.append((code, verifier, redirect_uri))
        if self.error is not None:
            raise self.error
        from pleo_connector.pleo.oauth import TokenSet

        return TokenSet("access-" + "a" * 20, "refresh-" + "r" * 20, 3600)


@dataclass
class FakeInstallationsApi:
    installation: Installation
    updates: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    deleted: int = 0
    delete_error: Exception | None = None
    get_error: Exception | None = None

    async def get(self) -> Installation:
        if self.get_error is not None:
            raise self.get_error
        return self.installation

    async def update(
        self, status: str, error_code: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Installation:
        self.updates.append((status, metadata))
        self.installation = self.installation.model_copy(
            update={"status": status, "metadata": metadata or {}}
        )
        return self.installation

    async def delete(self) -> None:
        if self.delete_error is not None:
            raise self.delete_error
        self.deleted += 1


class FakePleo:
    def __init__(self, api: FakeInstallationsApi) -> None:
        self.installations = api

    async def __aenter__(self) -> FakePleo:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def introspect(self) -> Introspection:
        return Introspection.model_validate(
            {"authMethod": "OAUTH2", "clientId": "c", "subjectURN": f"urn:pleo:company:{COMPANY}"}
        )


class FakeInstallations:
    def __init__(self, *records: InstallationRecord) -> None:
        self.records = {r.installation_id: r for r in records}
        self.deleted: list[str] = []

    def get(self, installation_id: str) -> InstallationRecord | None:
        return self.records.get(installation_id)

    def find_by_company(self, company_id: str) -> InstallationRecord | None:
        return next((r for r in self.records.values() if r.company_id == company_id), None)

    def create_or_update(self, record: InstallationRecord) -> InstallationRecord:
        stored = replace(record, version=record.version + 1)
        self.records[record.installation_id] = stored
        return stored

    def delete_all(self, installation_id: str) -> int:
        self.deleted.append(installation_id)
        return 1 if self.records.pop(installation_id, None) else 0

    def mark_auth_failure(self, installation_id: str, status: str = "ERROR") -> InstallationRecord:
        record = replace(
            self.records[installation_id],
            status=status,
            error_code="AUTH_ERROR",
            local_error="AUTH_ERROR",
        )
        self.records[installation_id] = record
        return record


class FakeTokens:
    def __init__(self, api_key_error: Exception | None = None) -> None:
        self.saved: list[str] = []
        self.api_key_error = api_key_error

    def save_oauth_tokens(self, installation_id: str, token_set: Any) -> None:
        self.saved.append(installation_id)

    def api_key(self, installation_id: str) -> str:
        if self.api_key_error is not None:
            raise self.api_key_error
        return "pleo_key_" + "k" * 30


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[SyncRequest] = []

    def send(self, request: SyncRequest) -> None:
        self.sent.append(request)


def installation(status: str = "AUTHORIZED") -> Installation:
    return Installation.model_validate(
        {
            "id": INSTALLATION,
            "applicationId": "11111111-2222-3333-4444-555555555555",
            "resource": f"urn:pleo:company:{COMPANY}",
            "status": status,
            "metadata": {"kept": {"by": "someone else"}},
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
        }
    )


def collaborators(
    *,
    requires_configuration: bool = True,
    pleo_env: dict[str, str | None] | None = None,
    **overrides: Any,
) -> Collaborators:
    """`pleo_env` changes the Pleo settings' environment (None removes a variable)."""
    environment: dict[str, str | None] = {
        "PLEO_AUTH_URL": ISSUER,
        "PLEO_API_URL": "https://api.pleo.example",
        "PLEO_ISSUER": ISSUER,
        "PLEO_CLIENT_ID": "client",
        "PLEO_CLIENT_SECRET_ID": "secret-id",
        **(pleo_env or {}),
    }
    return Collaborators(
        store=StoreSettings.model_validate({"TABLE_NAME": "table", "KMS_KEY_ID": "key"}),
        pleo=PleoSettings.model_validate(
            {name: value for name, value in environment.items() if value is not None}
        ),
        web=WebSettings.model_validate(
            {
                "PUBLIC_BASE_URL": "https://app.example",
                "SESSION_SECRET_ID": "session-id",
                "REQUIRES_CONFIGURATION": str(requires_configuration).lower(),
            }
        ),
        queue=QueueSettings.model_validate({"SYNC_QUEUE_URL": "https://sqs.example/q"}),
        overrides=overrides,
    )
