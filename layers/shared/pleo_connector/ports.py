"""The small typed ports the services take, so each collaborator can be replaced: by a fake in a
test (which mypy then checks against the same Protocol) or by an integrator's own implementation.

The composition root (`pleo_connector.composition`) builds the real ones; services import only
these Protocols and the plain types they mention. The adapter's port is its descriptor
(`adapters.base.AdapterDescriptor`), which also opens its readers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from datetime import datetime
    from types import TracebackType

    from pleo_connector.pleo.models import Installation, Introspection
    from pleo_connector.pleo.oauth import TokenSet
    from pleo_connector.pleo.transport import RequestCounts
    from pleo_connector.store.installations import InstallationRecord
    from pleo_connector.store.oauth_state import OAuthState
    from pleo_connector.store.previews import PlanSummary, Preview
    from pleo_connector.store.sync_runs import Lease, Reconciled, SyncRun
    from pleo_connector.sync_queue import SyncRequest
    from pleo_connector.tokens import TokenSetLike
    from pleo_connector.vocabulary import (
        AuthMethod,
        InstallationErrorCode,
        InstallationStatus,
        LocalError,
    )


class InstallationStore(Protocol):
    """Installations, one per company, written with optimistic versions."""

    def get(self, installation_id: str) -> InstallationRecord | None: ...

    def find_by_company(self, company_id: str) -> InstallationRecord | None: ...

    def create_or_update(self, record: InstallationRecord) -> InstallationRecord: ...

    def update_status(
        self,
        installation_id: str,
        status: InstallationStatus,
        expected_version: int | None = None,
        *,
        error_code: InstallationErrorCode | None = None,
        local_error: LocalError | None = None,
        failure_count: int | None = None,
    ) -> InstallationRecord: ...

    def mark_auth_failure(
        self, installation_id: str, status: InstallationStatus = ...
    ) -> InstallationRecord: ...

    def record_source_failure(self, installation_id: str, reason: str) -> InstallationRecord: ...

    def mark_sync_requested(self, installation_id: str, *, window_s: float) -> bool: ...

    def clear_sync_request(
        self, installation_id: str, *, requested_at: datetime | None = None
    ) -> bool: ...

    def delete_all(self, installation_id: str) -> int: ...

    def iter_schedulable(self) -> Iterator[str]: ...

    def count_by_status(self) -> dict[InstallationStatus, int]: ...


class SyncRunStore(Protocol):
    """The sync lease of each installation and the record of its runs."""

    def acquire(self, installation_id: str, ttl_s: float) -> Lease | None: ...

    def holds(self, lease: Lease) -> bool: ...

    def release(self, lease: Lease, reconciled: Reconciled | None = None) -> bool: ...

    def lease_held(self, installation_id: str) -> bool: ...

    def free_mark(self, installation_id: str) -> Reconciled | None:
        """The mark the last run left, while no run holds the lease and none took it since."""
        ...

    def record(self, run: SyncRun) -> None: ...

    def last_run(self, installation_id: str) -> SyncRun | None: ...


class PreviewStore(Protocol):
    """The newest dry run of each installation (`store.previews`)."""

    def request(
        self,
        installation_id: str,
        *,
        connection: Mapping[str, Any] | None = None,
        sync_choices: Mapping[str, Any] | None = None,
    ) -> Preview: ...

    def get(self, installation_id: str) -> Preview | None: ...

    def start(self, installation_id: str, preview_id: str) -> Preview | None: ...

    def finish(self, installation_id: str, preview_id: str, summary: PlanSummary) -> bool: ...

    def fail(self, installation_id: str, preview_id: str, message: str) -> bool: ...


class CredentialVault(Protocol):
    """Each installation's Pleo credential: stored encrypted, handed out fresh."""

    def save_oauth_tokens(self, installation_id: str, token_set: TokenSetLike) -> None: ...

    def save_api_key(self, installation_id: str, key: str) -> None: ...

    def api_key(self, installation_id: str) -> str: ...

    async def access_token(self, installation_id: str) -> str: ...

    async def refresh_if_idle(self, installation_id: str) -> bool: ...

    def iter_idle_grants(self, refreshed_before: float) -> Iterator[str]: ...


class SyncQueuePort(Protocol):
    """Where sync requests go (SQS)."""

    def send(self, request: SyncRequest) -> None: ...

    def send_many(self, requests: Iterable[SyncRequest]) -> int: ...


class InstallationsApi(Protocol):
    """The part of Pleo's `/v1/installations/me` the services call."""

    async def get(self) -> Installation: ...

    async def create(
        self, status: InstallationStatus | None = None, metadata: dict[str, Any] | None = None
    ) -> Installation: ...

    async def update(
        self,
        status: InstallationStatus,
        error_code: InstallationErrorCode | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Installation: ...

    async def delete(self) -> None: ...

    async def activate(self) -> Installation: ...


class PleoApi(Protocol):
    """Pleo's API for one credential, closed after use (`async with`)."""

    @property
    def installations(self) -> InstallationsApi: ...

    @property
    def request_counts(self) -> RequestCounts:
        """Every request this session sent (retries too) and the 429s among them: a sync run's
        counts are what its session sent, reads and writes alike."""
        ...

    async def introspect(self) -> Introspection: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class PleoClientFactory(Protocol):
    """Builds a Pleo API session for a credential."""

    def for_installation(self, installation_id: str, auth_method: AuthMethod) -> PleoApi:
        """Authenticated as the installation: its API key, or its OAuth grant with the
        single-flight refresh behind every request."""
        ...

    def with_access_token(self, access_token: str) -> PleoApi: ...

    def with_api_key(self, api_key: str) -> PleoApi: ...


class TokenEndpoint(Protocol):
    """The authorization server's token endpoint, for the code exchange."""

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> TokenSet: ...


class OAuthStates(Protocol):
    """Single-use OAuth state, with its PKCE verifier and browser binding."""

    def issue(
        self,
        state: str,
        *,
        code_verifier: str,
        redirect_uri: str,
        browser_binding_hash: str,
        ttl_s: float = ...,
    ) -> OAuthState: ...

    def consume(self, state: str) -> OAuthState: ...


class BrowserBindingPort(Protocol):
    """Ties an OAuth flow to the browser that started it."""

    def new(self) -> tuple[str, str]: ...

    def verify(self, cookies: Iterable[str] | None, expected_hash: str | None) -> None: ...
