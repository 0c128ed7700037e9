"""The emulator's in-memory world: clients, credentials, installations and master data.

Every mutation happens under `World.lock`; handlers take it for their whole (short) run.
Tokens, codes and API keys are held only as SHA-256 hashes; listings show a short fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
import random
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_CLIENT_ID = "local-client"
DEFAULT_CLIENT_SECRET = "local-client-secret"  # noqa: S105 - the documented local default
DEFAULT_REDIRECT_URI = "http://127.0.0.1:3000/oauth/callback"
DEFAULT_COMPANY_ID = "6f1c2a9e-3b7d-4c5e-9a1f-2d8b4e6c0a11"
DEFAULT_ORGANIZATION_ID = "0b7e4d2a-9c1f-4e3b-8a6d-5f2c1e9b7a30"
DEFAULT_APPLICATION_ID = "c3d9e8f1-2a4b-4c6d-8e0f-1a2b3c4d5e6f"

# Scopes Pleo documents (accounts, vendors, export) or that Pleo's own SDK code uses (tags, tax
# codes, companies); `test:test` is Pleo's testing scope. See docs/pleo-api-notes.md §1.7.
DEFAULT_SCOPES = (
    "tag-groups:read",
    "tag-groups:write",
    "tax-codes:read",
    "tax-codes:write",
    "vendors:read",
    "vendors:write",
    "accounts:read",
    "accounts:write",
    "companies:read",
    "test:test",
)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def fingerprint(secret_hash: str) -> str:
    return secret_hash[:12]


def new_secret(prefix: str) -> str:
    return f"{prefix}{secrets.token_urlsafe(32)}"


@dataclass
class Settings:
    access_token_ttl_s: int = 3600
    refresh_token_ttl_s: int | None = 60 * 86400
    code_ttl_s: int = 60
    consent_ttl_s: int = 600
    rate_limit_per_minute: int | None = 600
    auto_approve: bool = False
    auto_approve_company_id: str | None = None
    issuer_param: bool = True
    rotate_refresh_tokens: bool = True
    send_expires_in: bool = True
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    validate_requests: bool = True
    enforce_scopes: bool = False
    page_default_limit: int = 20
    page_max_limit: int = 100
    fault_seed: int | None = None

    def update(self, values: dict[str, Any]) -> list[str]:
        """Apply every value, or none: return the problems (unknown keys, wrong types)."""
        problems = []
        for key, value in values.items():
            if key not in SETTING_TYPES:
                problems.append(f"unknown setting {key}")
                continue
            expected, nullable = SETTING_TYPES[key]
            if value is None:
                if not nullable:
                    problems.append(f"{key} must not be null")
            elif isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
                problems.append(f"{key} must be {expected.__name__}")
            elif isinstance(value, int) and value < SETTING_MINIMUM.get(key, value):
                problems.append(f"{key} must be at least {SETTING_MINIMUM[key]}")
        if not problems:
            for key, value in values.items():
                setattr(self, key, value)
        return problems


# setting -> (type, may be null)
SETTING_TYPES: dict[str, tuple[type, bool]] = {
    "access_token_ttl_s": (int, False),
    "refresh_token_ttl_s": (int, True),
    "code_ttl_s": (int, False),
    "consent_ttl_s": (int, False),
    "rate_limit_per_minute": (int, True),
    "auto_approve": (bool, False),
    "auto_approve_company_id": (str, True),
    "issuer_param": (bool, False),
    "rotate_refresh_tokens": (bool, False),
    "send_expires_in": (bool, False),
    "token_type": (str, False),
    "validate_requests": (bool, False),
    "enforce_scopes": (bool, False),
    "page_default_limit": (int, False),
    "page_max_limit": (int, False),
    "fault_seed": (int, True),
}
SETTING_MINIMUM = {
    "access_token_ttl_s": 1,
    "refresh_token_ttl_s": 1,
    "code_ttl_s": 1,
    "consent_ttl_s": 1,
    "rate_limit_per_minute": 0,
    "page_default_limit": 1,
    "page_max_limit": 1,
}


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    scopes: list[str]
    requires_configuration: bool = True
    application_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    name: str = "Local accounting app"

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("client_secret")
        return data


@dataclass
class PendingAuthorization:
    id: str
    csrf: str
    client_id: str
    redirect_uri: str
    state: str | None
    scope: str
    code_challenge: str
    expires_at: float


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    company_id: str
    scope: str
    expires_at: float
    used: bool = False
    grant_id: str | None = None


@dataclass
class Grant:
    """One authorization: the family of every access and refresh token it issued."""

    id: str
    client_id: str
    company_id: str
    scope: str
    created_at: float
    revoked: bool = False
    revoked_reason: str | None = None


@dataclass
class AccessToken:
    grant_id: str
    jti: str
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    grant_id: str
    jti: str
    issued_at: float
    expires_at: float | None
    status: str = "active"  # active | rotated | revoked


@dataclass
class ApiKey:
    id: str
    company_id: str
    client_id: str
    created_at: float
    revoked: bool = False


@dataclass
class FaultRule:
    id: str
    kind: str  # "error" | "timeout" | "latency" | "response" (answers `body` as is)
    status: int = 500
    retry_after: int | None = None
    latency_ms: int = 0
    hang_ms: int = 30_000
    rate: float = 1.0
    count: int | None = None  # times left; None = unlimited
    operation: str | None = None
    path_prefix: str | None = None
    body: str = ""
    content_type: str = "text/html; charset=utf-8"
    # Handle the request first (its effect stays), then fail the answer: Pleo committed, the
    # client never hears it. Not for `latency`, which answers anyway.
    commit: bool = False
    applied: int = 0

    def matches(self, operation: str, path: str) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


@dataclass
class Principal:
    """Who calls the API: decided by the credential, one company per credential."""

    auth_method: str  # OAUTH2 | API_KEY
    client_id: str
    company_id: str
    scope: str
    grant_id: str | None = None
    api_key_id: str | None = None

    @property
    def rate_key(self) -> str:
        return f"grant:{self.grant_id}" if self.grant_id else f"api_key:{self.api_key_id}"


class World:
    def __init__(self, redirect_uri: str = DEFAULT_REDIRECT_URI) -> None:
        """`redirect_uri`: the default client's, at start and after every reset (a local world
        on other ports starts the emulator with its own)."""
        self.lock = threading.RLock()
        self.default_redirect_uri = redirect_uri
        self.reset()

    # -- lifecycle ----------

    def reset(self) -> None:
        with self.lock:
            self.settings = Settings()
            self.clock_offset = 0.0
            self.seq = 0
            self.random = random.Random()
            self.clients: dict[str, Client] = {}
            self.companies: dict[str, dict[str, Any]] = {}
            self.pending: dict[str, PendingAuthorization] = {}
            self.codes: dict[str, AuthCode] = {}
            self.grants: dict[str, Grant] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.api_keys: dict[str, ApiKey] = {}  # by key hash
            self.installations: dict[tuple[str, str], dict[str, Any]] = {}
            self.tag_groups: dict[str, dict[str, Any]] = {}
            self.tags: dict[str, dict[str, Any]] = {}
            self.tax_codes: dict[str, dict[str, Any]] = {}
            self.vendors: dict[str, dict[str, Any]] = {}
            self.accounts: dict[str, dict[str, Any]] = {}
            self.faults: list[FaultRule] = []
            self.rate_windows: dict[str, deque[float]] = {}
            self.request_log: deque[dict[str, Any]] = deque(maxlen=10_000)
            self.counters: Counter[str] = Counter()
            self.stats: Counter[str] = Counter()
            self.register_client(
                Client(
                    client_id=DEFAULT_CLIENT_ID,
                    client_secret=DEFAULT_CLIENT_SECRET,
                    redirect_uris=[self.default_redirect_uri],
                    scopes=list(DEFAULT_SCOPES),
                    requires_configuration=True,
                    application_id=DEFAULT_APPLICATION_ID,
                )
            )
            self.add_company(
                {
                    "id": DEFAULT_COMPANY_ID,
                    "name": "Local Company ApS",
                    "organizationId": DEFAULT_ORGANIZATION_ID,
                    "registrationNumber": "DK12345678",
                    "address": {
                        "addressLine1": "Ravnsborggade 2",
                        "locality": "Copenhagen",
                        "postalCode": "2200",
                        "country": "DK",
                    },
                }
            )

    # -- time and ids ----------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def iso(self, at: float | None = None) -> str:
        moment = datetime.fromtimestamp(self.now() if at is None else at, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # -- clients and companies ----------

    def register_client(self, client: Client) -> Client:
        self.clients[client.client_id] = client
        return client

    def add_company(self, values: dict[str, Any]) -> dict[str, Any]:
        company_id = str(values.get("id") or uuid.uuid4())
        company: dict[str, Any] = {
            "id": company_id,
            "name": str(values.get("name") or f"Company {company_id[:8]}"),
            "address": dict(values.get("address") or {}),
        }
        for key in ("organizationId", "registrationNumber"):
            if values.get(key):
                company[key] = str(values[key])
        company["_seq"] = self.next_seq()
        self.companies[company_id] = company
        return company

    # -- credentials ----------

    def issue_api_key(self, company_id: str, client_id: str) -> tuple[str, ApiKey]:
        key = new_secret("pleo_key_")
        record = ApiKey(str(uuid.uuid4()), company_id, client_id, self.now())
        self.api_keys[digest(key)] = record
        return key, record

    def new_grant(self, client_id: str, company_id: str, scope: str) -> Grant:
        grant = Grant(str(uuid.uuid4()), client_id, company_id, scope, self.now())
        self.grants[grant.id] = grant
        return grant

    def issue_tokens(self, grant: Grant, *, refresh_token: bool = True) -> dict[str, Any]:
        """A token response: an access token, and a new refresh token unless `refresh_token` is
        False (a refresh that does not rotate). The settings shape the rest of the answer."""
        now = self.now()
        access = new_secret("pat_")
        ttl = int(self.settings.access_token_ttl_s)
        self.access_tokens[digest(access)] = AccessToken(
            grant.id, str(uuid.uuid4()), now, now + ttl
        )
        answer: dict[str, Any] = {"access_token": access, "token_type": self.settings.token_type}
        if self.settings.send_expires_in:
            answer["expires_in"] = ttl
        if refresh_token:
            refresh = new_secret("prt_")
            refresh_ttl = self.settings.refresh_token_ttl_s
            self.refresh_tokens[digest(refresh)] = RefreshToken(
                grant.id, str(uuid.uuid4()), now, None if refresh_ttl is None else now + refresh_ttl
            )
            answer["refresh_token"] = refresh
        answer["scope"] = grant.scope
        return answer

    def revoke_grant(self, grant: Grant, reason: str) -> None:
        grant.revoked = True
        grant.revoked_reason = grant.revoked_reason or reason
        for token in self.access_tokens.values():
            if token.grant_id == grant.id:
                token.revoked = True
        for refresh in self.refresh_tokens.values():
            if refresh.grant_id == grant.id and refresh.status == "active":
                refresh.status = "revoked"

    def revoke_grants_of(self, client_id: str, company_id: str, reason: str) -> int:
        revoked = 0
        for grant in self.grants.values():
            if (
                grant.client_id == client_id
                and grant.company_id == company_id
                and not grant.revoked
            ):
                self.revoke_grant(grant, reason)
                revoked += 1
        return revoked

    def principal_for_bearer(self, token: str) -> Principal | None:
        record = self.access_tokens.get(digest(token))
        if record is None or record.revoked or record.expires_at <= self.now():
            return None
        grant = self.grants.get(record.grant_id)
        if grant is None or grant.revoked:
            return None
        return Principal(
            "OAUTH2", grant.client_id, grant.company_id, grant.scope, grant_id=grant.id
        )

    def principal_for_api_key(self, key: str) -> Principal | None:
        record = self.api_keys.get(digest(key))
        if record is None or record.revoked:
            return None
        client = self.clients.get(record.client_id)
        scope = " ".join(client.scopes) if client else ""
        return Principal(
            "API_KEY", record.client_id, record.company_id, scope, api_key_id=record.id
        )

    # -- installations ----------

    def install(self, client: Client, company_id: str, status: str) -> dict[str, Any]:
        """Create the installation of (client, company), or bring the one that exists back."""
        key = (client.client_id, company_id)
        now = self.iso()
        existing = self.installations.get(key)
        if existing is not None:
            existing["status"] = status
            existing.pop("errorCode", None)
            existing["updatedAt"] = now
            return existing
        installation = {
            "id": str(uuid.uuid4()),
            "applicationId": client.application_id,
            "resource": f"urn:pleo:company:{company_id}",
            "status": status,
            "metadata": {},
            "createdAt": now,
            "updatedAt": now,
        }
        self.installations[key] = installation
        return installation

    # -- listings for the control API ----------------------------------------------------------

    def grants_view(self) -> list[dict[str, Any]]:
        view = []
        for grant in self.grants.values():
            view.append(
                {
                    "id": grant.id,
                    "client_id": grant.client_id,
                    "company_id": grant.company_id,
                    "scope": grant.scope,
                    "revoked": grant.revoked,
                    "revoked_reason": grant.revoked_reason,
                    "access_tokens": [
                        {
                            "fingerprint": fingerprint(h),
                            "expired": t.expires_at <= self.now(),
                            "revoked": t.revoked,
                        }
                        for h, t in self.access_tokens.items()
                        if t.grant_id == grant.id
                    ],
                    "refresh_tokens": [
                        {"fingerprint": fingerprint(h), "status": r.status}
                        for h, r in self.refresh_tokens.items()
                        if r.grant_id == grant.id
                    ],
                }
            )
        return view

    def installations_view(self) -> list[dict[str, Any]]:
        return [
            {"client_id": client_id, "company_id": company_id, **installation}
            for (client_id, company_id), installation in self.installations.items()
        ]


def encode_cursor(seq: int) -> str:
    """Opaque cursors in the alphabet Pleo's documents require (`^[A-Z2-7=~]+$`: base32)."""
    return base64.b32encode(f"seq:{seq}".encode()).decode("ascii")


def decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.b32decode(cursor.encode("ascii")).decode("ascii")
    except (ValueError, UnicodeError):
        return None
    if not text.startswith("seq:") or not text[4:].isdigit():
        return None
    return int(text[4:])


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record without its private (underscore) fields."""
    return {key: value for key, value in record.items() if not key.startswith("_")}
