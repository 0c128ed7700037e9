"""In-memory stand-ins for the ports of the connect and sync services (no network, no AWS).

Each fake implements the Protocol of `pleo_connector.ports` it stands for, so mypy checks it
against the same contract the real collaborator meets.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from pleo_connector.adapters.placeholder import PlaceholderAdapter
from pleo_connector.config import PleoSettings, WebSettings
from pleo_connector.connect.disconnect import DisconnectDeps
from pleo_connector.connect.oauth_install import OAuthInstallDeps
from pleo_connector.connect.settings import SettingsDeps
from pleo_connector.pleo.models import Installation, Introspection
from pleo_connector.pleo.oauth import TokenSet
from pleo_connector.pleo.transport import RequestCounts
from pleo_connector.store.installations import InstallationRecord
from pleo_connector.store.oauth_state import OAuthState, StateNotFoundError
from pleo_connector.store.previews import Preview
from pleo_connector.store.sync_runs import Lease, Reconciled, SyncRun
from pleo_connector.sync.applier import ApplyResult
from pleo_connector.sync.model import Entry, Plan
from pleo_connector.sync.worker import SyncDeps
from pleo_connector.vocabulary import (
    AuthMethod,
    InstallationErrorCode,
    InstallationStatus,
    Kind,
    LocalError,
    PreviewState,
)
from pleo_connector.web.csrf import BrowserBindingError

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
    from types import TracebackType

    from pleo_connector.adapters.base import AdapterDescriptor, SourceReader
    from pleo_connector.installation_config import SyncChoices
    from pleo_connector.pleo.retry import Deadline
    from pleo_connector.ports import PleoApi
    from pleo_connector.store.previews import PlanSummary
    from pleo_connector.sync.engine import SyncSteps
    from pleo_connector.sync.ports import OwnershipStore
    from pleo_connector.sync_queue import SyncRequest
    from pleo_connector.tokens import TokenSetLike

COMPANY = "6f1c2a9e-3b7d-4c5e-9a1f-2d8b4e6c0a11"
INSTALLATION = "0b7e4d2a-9c1f-4e3b-8a6d-5f2c1e9b7a30"
ISSUER = "https://auth.pleo.example"


class FakeStates:
    def __init__(self, *states: str) -> None:
        self.live = set(states)
        self.consumed: list[str] = []

    def issue(
        self,
        state: str,
        *,
        code_verifier: str,
        redirect_uri: str,
        browser_binding_hash: str,
        ttl_s: float = 600,
    ) -> OAuthState:
        self.live.add(state)
        return OAuthState("hash", code_verifier, redirect_uri, browser_binding_hash, ttl_s)

    def consume(self, state: str) -> OAuthState:
        if state not in self.live:
            raise StateNotFoundError("unknown", operation="DeleteItem")
        self.live.remove(state)
        self.consumed.append(state)
        return OAuthState("hash", "v" * 43, "https://app.example/oauth/callback", "binding", 0.0)


class FakeBinding:
    def __init__(self, matches: bool = True) -> None:
        self.matches = matches

    def new(self) -> tuple[str, str]:
        return "nonce", "nonce-hash"

    def verify(self, cookies: Iterable[str] | None, expected_hash: str | None) -> None:
        if not self.matches:
            raise BrowserBindingError("another browser")


@dataclass
class FakeOAuthClient:
    error: Exception | None = None
    exchanges: list[tuple[str, str, str]] = field(default_factory=list)

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        self.exchanges.append((code, code_verifier, redirect_uri))
        if self.error is not None:
            raise self.error
        return TokenSet("access-" + "a" * 20, "refresh-" + "r" * 20, 3600)


@dataclass
class FakeInstallationsApi:
    installation: Installation
    updates: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    deleted: int = 0
    activated: int = 0
    delete_error: Exception | None = None
    get_error: Exception | None = None
    gets: int = 0

    async def get(self) -> Installation:
        self.gets += 1
        if self.get_error is not None:
            raise self.get_error
        return self.installation

    async def create(
        self, status: InstallationStatus | None = None, metadata: dict[str, Any] | None = None
    ) -> Installation:
        self.installation = self.installation.model_copy(
            update={"status": status or InstallationStatus.AUTHORIZED, "metadata": metadata or {}}
        )
        return self.installation

    async def update(
        self,
        status: InstallationStatus,
        error_code: InstallationErrorCode | None = None,
        metadata: dict[str, Any] | None = None,
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

    async def activate(self) -> Installation:
        self.activated += 1
        return await self.update(InstallationStatus.ACTIVATED)


class FakePleo:
    def __init__(self, api: FakeInstallationsApi) -> None:
        self._api = api
        self.request_counts = RequestCounts()

    @property
    def installations(self) -> FakeInstallationsApi:
        return self._api

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    async def introspect(self) -> Introspection:
        return Introspection.model_validate(
            {"authMethod": "OAUTH2", "clientId": "c", "subjectURN": f"urn:pleo:company:{COMPANY}"}
        )


class FakePleoClients:
    """Every credential reaches the same fake Pleo; `error` is raised when a client for an
    installation is asked for (as a credential that cannot be used would)."""

    def __init__(self, api: FakeInstallationsApi, error: Exception | None = None) -> None:
        self.api = api
        self.error = error
        self.asked: list[tuple[str, str]] = []

    def for_installation(self, installation_id: str, auth_method: AuthMethod) -> FakePleo:
        self.asked.append((installation_id, auth_method))
        if self.error is not None:
            raise self.error
        return FakePleo(self.api)

    def with_access_token(self, access_token: str) -> FakePleo:
        return FakePleo(self.api)

    def with_api_key(self, api_key: str) -> FakePleo:
        return FakePleo(self.api)


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

    def update_status(
        self,
        installation_id: str,
        status: InstallationStatus,
        expected_version: int | None = None,
        *,
        error_code: InstallationErrorCode | None = None,
        local_error: LocalError | None = None,
        failure_count: int | None = None,
    ) -> InstallationRecord:
        current = self.records[installation_id]
        if expected_version is not None and expected_version != current.version:
            from pleo_connector.store.errors import WriteConflictError

            raise WriteConflictError("version moved on", operation="UpdateItem")
        record = replace(
            current,
            status=status,
            error_code=error_code,
            local_error=local_error,
            failure_reason=current.failure_reason if local_error is not None else None,
            failure_count=current.failure_count if failure_count is None else failure_count,
            version=current.version + 1,
        )
        self.records[installation_id] = record
        return record

    def record_source_failure(self, installation_id: str, reason: str) -> InstallationRecord:
        current = self.records[installation_id]
        record = replace(
            current,
            failure_count=current.failure_count + 1,
            local_error=LocalError.SOURCE_FAILING,
            failure_reason=reason,
        )
        self.records[installation_id] = record
        return record

    def mark_sync_requested(self, installation_id: str, *, window_s: float) -> bool:
        current = self.records[installation_id]
        if current.sync_requested_at is not None:
            return False
        self.records[installation_id] = replace(current, sync_requested_at=datetime.now(UTC))
        return True

    def clear_sync_request(
        self, installation_id: str, *, requested_at: datetime | None = None
    ) -> bool:
        current = self.records.get(installation_id)
        if current is None or current.sync_requested_at is None:
            return False
        if requested_at is not None and current.sync_requested_at != requested_at:
            return False
        self.records[installation_id] = replace(current, sync_requested_at=None)
        return True

    def mark_auth_failure(
        self, installation_id: str, status: InstallationStatus = InstallationStatus.ERROR
    ) -> InstallationRecord:
        return self.update_status(
            installation_id,
            status,
            error_code=InstallationErrorCode.AUTH_ERROR,
            local_error=LocalError.AUTH_ERROR,
        )

    def delete_all(self, installation_id: str) -> int:
        self.deleted.append(installation_id)
        return 1 if self.records.pop(installation_id, None) else 0

    def iter_schedulable(self) -> Iterator[str]:
        return iter([r.installation_id for r in self.records.values() if r.schedulable])

    def count_by_status(self) -> dict[InstallationStatus, int]:
        return {
            status: sum(r.status == status for r in self.records.values())
            for status in InstallationStatus
        }


class FakeTokens:
    def __init__(self, error: Exception | None = None) -> None:
        self.saved: list[str] = []
        self.error = error
        self.refresh_asked: list[str] = []

    def save_oauth_tokens(self, installation_id: str, token_set: TokenSetLike) -> None:
        self.saved.append(installation_id)

    def save_api_key(self, installation_id: str, key: str) -> None:
        self.saved.append(installation_id)

    def api_key(self, installation_id: str) -> str:
        if self.error is not None:
            raise self.error
        return "pleo_key_" + "k" * 30

    async def access_token(self, installation_id: str) -> str:
        if self.error is not None:
            raise self.error
        return "access-" + "a" * 20

    async def refresh_if_idle(self, installation_id: str) -> bool:
        self.refresh_asked.append(installation_id)
        if self.error is not None:
            raise self.error
        return True

    def iter_idle_grants(self, refreshed_before: float) -> Iterator[str]:
        return iter(())


class FakeQueue:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[SyncRequest] = []
        self.error = error

    def send(self, request: SyncRequest) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(request)

    def send_many(self, requests: Iterable[SyncRequest]) -> int:
        batch = list(requests)
        self.sent.extend(batch)
        return len(batch)


class FakeCipher:
    """Reversible and bound to the installation, like KMS with an encryption context."""

    def encrypt(self, installation_id: str, plaintext: bytes) -> bytes:
        return installation_id.encode() + b"|" + plaintext[::-1]

    def decrypt(self, installation_id: str, ciphertext: bytes) -> bytes:
        owner, _, body = ciphertext.partition(b"|")
        if owner != installation_id.encode():
            from pleo_connector.crypto import CredentialDecryptError

            raise CredentialDecryptError("not this installation's")
        return body[::-1]


class FakeRuns:
    """One lease and the run records, in memory. `held_by_other`: another run holds the lease;
    `taken_over`: the lease this run took was taken over since."""

    def __init__(self, *, held_by_other: bool = False) -> None:
        self.held_by_other = held_by_other
        self.taken_over = False
        self.lease: Lease | None = None
        self.tokens = 0
        self.acquired_for: list[float] = []
        self.released: list[Lease] = []
        self.runs: list[SyncRun] = []
        # The mark the last release left, with the token it was left at (the repository's rule).
        self.mark: tuple[int, Reconciled] | None = None

    def acquire(self, installation_id: str, ttl_s: float) -> Lease | None:
        if self.held_by_other or self.lease is not None:
            return None
        self.tokens += 1
        self.acquired_for.append(ttl_s)
        self.lease = Lease(installation_id, self.tokens, "holder", ttl_s)
        return self.lease

    def holds(self, lease: Lease) -> bool:
        return not self.taken_over and self.lease == lease

    def release(self, lease: Lease, reconciled: Reconciled | None = None) -> bool:
        if self.taken_over or self.lease != lease:
            return False
        self.mark = None if reconciled is None else (lease.token, reconciled)
        self.lease = None
        self.released.append(lease)
        return True

    def lease_held(self, installation_id: str) -> bool:
        return self.held_by_other or self.lease is not None

    def free_mark(self, installation_id: str) -> Reconciled | None:
        if self.lease_held(installation_id) or self.mark is None:
            return None
        token, mark = self.mark
        return mark if token == self.tokens else None

    def record(self, run: SyncRun) -> None:
        self.runs.append(run)

    def last_run(self, installation_id: str) -> SyncRun | None:
        return self.runs[-1] if self.runs else None


class FakePreviews:
    """The dry-run item of each installation, in memory, with the repository's rule: a dry run
    starts and ends only while its id is the newest."""

    def __init__(self, clock: Callable[[], float] = lambda: 1_000.0) -> None:
        self.clock = clock
        self.items: dict[str, Preview] = {}
        self.requested = 0

    def request(
        self,
        installation_id: str,
        *,
        connection: Mapping[str, Any] | None = None,
        sync_choices: Mapping[str, Any] | None = None,
    ) -> Preview:
        self.requested += 1
        now = self.clock()
        preview = Preview(
            installation_id=installation_id,
            preview_id=f"preview-{self.requested}",
            state=PreviewState.QUEUED,
            requested_at=now,
            updated_at=now,
            connection=connection,
            sync_choices=sync_choices,
        )
        self.items[installation_id] = preview
        return preview

    def get(self, installation_id: str) -> Preview | None:
        return self.items.get(installation_id)

    def start(self, installation_id: str, preview_id: str) -> Preview | None:
        current = self.items.get(installation_id)
        if current is None or current.preview_id != preview_id or not current.state.unfinished:
            return None
        self.items[installation_id] = replace(
            current, state=PreviewState.RUNNING, updated_at=self.clock()
        )
        return self.items[installation_id]

    def finish(self, installation_id: str, preview_id: str, summary: PlanSummary) -> bool:
        return self._end(installation_id, preview_id, state=PreviewState.READY, summary=summary)

    def fail(self, installation_id: str, preview_id: str, message: str) -> bool:
        return self._end(installation_id, preview_id, state=PreviewState.FAILED, message=message)

    def _end(self, installation_id: str, preview_id: str, **changes: Any) -> bool:
        current = self.items.get(installation_id)
        if current is None or current.preview_id != preview_id:
            return False
        self.items[installation_id] = replace(
            current, connection=None, updated_at=self.clock(), **changes
        )
        return True


class FakeOwnership:
    def __init__(self, *owned: tuple[Kind, str]) -> None:
        self.owned_entries = set(owned)

    def owned(self, installation_id: str) -> set[tuple[Kind, str]]:
        return set(self.owned_entries)

    def record(self, installation_id: str, entries: Iterable[tuple[Kind, str]]) -> None:
        self.owned_entries.update(entries)


class EmptySteps:
    """Pleo has nothing, the plan changes nothing."""

    async def read_pleo(self, pleo: PleoApi, company_id: str, choices: SyncChoices) -> list[Entry]:
        return []

    def plan(
        self,
        reader: SourceReader,
        pleo: Iterable[Entry],
        owned: Collection[tuple[Kind, str]],
        choices: SyncChoices,
    ) -> Plan:
        return Plan()

    async def apply(
        self,
        plan: Plan,
        pleo: PleoApi,
        company_id: str,
        ownership: OwnershipStore,
        installation_id: str,
        *,
        deadline: Deadline | None,
    ) -> ApplyResult:
        return ApplyResult(applied={}, failed=[], complete=True, requests=0, rate_limited=0)


def installation(status: InstallationStatus = InstallationStatus.AUTHORIZED) -> Installation:
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


def record(
    status: InstallationStatus,
    auth_method: AuthMethod = AuthMethod.API_KEY,
) -> InstallationRecord:
    return InstallationRecord(
        installation_id=INSTALLATION,
        company_id=COMPANY,
        auth_method=auth_method,
        status=status,
        version=1,
    )


def pleo_settings(pleo_env: dict[str, str | None] | None = None) -> PleoSettings:
    """Pleo settings for tests; `pleo_env` changes their environment (None removes a variable)."""
    environment: dict[str, str | None] = {
        "PLEO_AUTH_URL": ISSUER,
        "PLEO_API_URL": "https://api.pleo.example",
        "PLEO_ISSUER": ISSUER,
        "PLEO_CLIENT_ID": "client",
        "PLEO_CLIENT_SECRET_ID": "secret-id",
        **(pleo_env or {}),
    }
    return PleoSettings.model_validate(
        {name: value for name, value in environment.items() if value is not None}
    )


def web_settings(*, requires_configuration: bool = True) -> WebSettings:
    return WebSettings.model_validate(
        {
            "PUBLIC_BASE_URL": "https://app.example",
            "SESSION_SECRET_ID": "session-id",
            "REQUIRES_CONFIGURATION": str(requires_configuration).lower(),
        }
    )


def oauth_deps(
    *,
    states: FakeStates,
    binding: FakeBinding,
    oauth: FakeOAuthClient,
    pleo: FakePleoClients,
    installations: FakeInstallations | None = None,
    tokens: FakeTokens | None = None,
    queue: FakeQueue | None = None,
    requires_configuration: bool = True,
    pleo_env: dict[str, str | None] | None = None,
) -> OAuthInstallDeps:
    return OAuthInstallDeps(
        pleo_settings=pleo_settings(pleo_env),
        web_settings=web_settings(requires_configuration=requires_configuration),
        states=states,
        browser_binding=binding,
        oauth_client=oauth,
        pleo=pleo,
        tokens=tokens or FakeTokens(),
        installations=installations or FakeInstallations(),
        sync_queue=queue or FakeQueue(),
    )


def settings_deps(
    installations: FakeInstallations,
    pleo: FakePleoClients,
    queue: FakeQueue | None = None,
    runs: FakeRuns | None = None,
    previews: FakePreviews | None = None,
) -> SettingsDeps:
    return SettingsDeps(
        installations=installations,
        pleo=pleo,
        sync_queue=queue or FakeQueue(),
        cipher=FakeCipher(),
        adapter=PlaceholderAdapter(),
        runs=runs or FakeRuns(),
        previews=previews or FakePreviews(),
    )


def disconnect_deps(
    installations: FakeInstallations, pleo: FakePleoClients, runs: FakeRuns | None = None
) -> DisconnectDeps:
    return DisconnectDeps(installations=installations, pleo=pleo, runs=runs or FakeRuns())


def sync_deps(
    installations: FakeInstallations,
    pleo: FakePleoClients | None = None,
    tokens: FakeTokens | None = None,
    *,
    runs: FakeRuns | None = None,
    queue: FakeQueue | None = None,
    steps: SyncSteps | None = None,
    adapter: AdapterDescriptor | None = None,
    ownership: FakeOwnership | None = None,
    previews: FakePreviews | None = None,
    max_source_failures: int = 5,
) -> SyncDeps:
    return SyncDeps(
        installations=installations,
        pleo=pleo or FakePleoClients(FakeInstallationsApi(installation())),
        tokens=tokens or FakeTokens(),
        adapter=adapter or PlaceholderAdapter(),
        runs=runs or FakeRuns(),
        ownership=ownership or FakeOwnership(),
        cipher=FakeCipher(),
        sync_queue=queue or FakeQueue(),
        previews=previews or FakePreviews(),
        steps=steps or EmptySteps(),
        max_source_failures=max_source_failures,
    )
