"""Credentials for Pleo calls: encrypted at rest, refreshed single-flight.

Pleo rotates refresh tokens and revokes the whole grant when a used refresh token comes back, so
at most one process may refresh a grant at a time. Protocol (docs/architecture.md "Token refresh"):

1. Read the credential (consistent read). A fresh access token (more than the refresh margin
   left, the margin bounded by the token's lifetime) is used as it is.
2. Otherwise take the lease on the credential item with a conditional update; the update returns
   the item as it is after the lease was taken, which is the re-read: a peer that finished a
   refresh meanwhile shows up there, and its token is used.
3. Call the token endpoint once, only with at least `refresh_timeout_s + lease_margin_s` of lease
   left, and never longer than `refresh_timeout_s`, so the lease always outlives the call.
4. Write both rotated tokens (the old refresh token again when the answer has none: RFC 6749
   section 6 lets a server not rotate) and `version + 1`, conditioned on still holding the lease
   at the version read (fencing), which also releases the lease.
5. Waiters back off with jitter and re-read.

On `invalid_grant` the item is read again: a changed version means a peer won (use its token);
otherwise the grant is dead, which is recorded on the item (no process tries it again) and raised
as GrantRevokedError for the failure policy (mark the installation, stop scheduling, no retry).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from pleo_connector.crypto import CredentialCipher, CredentialDecryptError, CredentialError
from pleo_connector.errors import ConfigurationError, ConnectorError
from pleo_connector.observability import logger
from pleo_connector.pleo.errors import InvalidGrantError
from pleo_connector.store.errors import WriteConflictError
from pleo_connector.vocabulary import AuthMethod

if TYPE_CHECKING:
    from pleo_connector.store.credentials import CredentialRepository, StoredCredential

__all__ = [
    "CredentialDecryptError",
    "CredentialError",
    "CredentialsNotFoundError",
    "GrantRevokedError",
    "IdleRefreshReport",
    "Refresher",
    "TokenRefreshBusyError",
    "TokenSetLike",
    "TokenStore",
    "WrongCredentialKindError",
]

DEFAULT_REFRESH_TIMEOUT_S = 10.0
DEFAULT_LEASE_MARGIN_S = 5.0
DEFAULT_LEASE_TTL_S = 30.0
DEFAULT_REFRESH_MARGIN_S = 60.0
# The margin never exceeds this share of the token's lifetime: a 60 s token is used for 45 s, a
# 5 s one for 3.75 s, instead of looking stale at birth and being refreshed on every call.
REFRESH_MARGIN_FRACTION = 0.25
DEFAULT_IDLE_REFRESH_AFTER_S = 14 * 24 * 3600.0
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 1.0


class TokenSetLike(Protocol):
    """The part of pleo.oauth.TokenSet this module reads."""

    @property
    def access_token(self) -> str: ...

    @property
    def refresh_token(self) -> str | None: ...

    @property
    def expires_in(self) -> float: ...

    def expires_at(self, now: float) -> float: ...


Refresher = Callable[[str], Awaitable[TokenSetLike]]


class CredentialsNotFoundError(CredentialError):
    """Nothing stored for the installation (never installed, or disconnected)."""


class WrongCredentialKindError(CredentialError):
    """An access token was asked of an API-key installation, or the other way round."""


class GrantRevokedError(CredentialError):
    """The authorization server refused the refresh token (`invalid_grant`) and no peer had
    rotated it: the user must reconnect. Never retried."""


class TokenRefreshBusyError(ConnectorError):
    """Another process held the refresh lease for longer than this caller could wait; transient."""

    http_status: ClassVar[int] = 503


@dataclass
class IdleRefreshReport:
    refreshed: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)  # the user must reconnect these
    failed: list[str] = field(default_factory=list)  # transient: the next run tries again


class TokenStore:
    def __init__(
        self,
        repo: CredentialRepository,
        cipher: CredentialCipher,
        refresher: Refresher | None = None,
        *,
        clock: Callable[[], float] = time.time,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
        refresh_timeout_s: float = DEFAULT_REFRESH_TIMEOUT_S,
        lease_margin_s: float = DEFAULT_LEASE_MARGIN_S,
        max_wait_s: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if refresh_timeout_s <= 0 or lease_margin_s < 0:
            raise ValueError("refresh_timeout_s must be positive and lease_margin_s not negative")
        if lease_ttl_s < refresh_timeout_s + lease_margin_s:
            raise ValueError(
                "lease_ttl_s must cover the whole refresh call plus the margin "
                f"({refresh_timeout_s} s + {lease_margin_s} s)"
            )
        self._repo = repo
        self._cipher = cipher
        self._refresher = refresher
        self._clock = clock
        self._lease_ttl_s = lease_ttl_s
        self._refresh_margin_s = refresh_margin_s
        self._refresh_timeout_s = refresh_timeout_s
        self._lease_margin_s = lease_margin_s
        # Long enough to outwait one peer's whole lease.
        self._max_wait_s = lease_ttl_s + refresh_timeout_s if max_wait_s is None else max_wait_s
        self._sleep = sleep
        self._jitter = jitter

    # --- saving --------------------------------------------------------------------------------

    def save_oauth_tokens(self, installation_id: str, token_set: TokenSetLike) -> None:
        """Store a new grant (install or reconnect), replacing whatever was there."""
        if not token_set.refresh_token:
            raise ValueError("a new grant must come with a refresh token")
        self._repo.save_oauth(
            installation_id,
            access_token=self._cipher.encrypt_text(installation_id, token_set.access_token),
            refresh_token=self._cipher.encrypt_text(installation_id, token_set.refresh_token),
            expires_at=token_set.expires_at(self._clock()),
            lifetime_s=token_set.expires_in,
        )

    def save_api_key(self, installation_id: str, key: str) -> None:
        self._repo.save_api_key(
            installation_id, api_key=self._cipher.encrypt_text(installation_id, key)
        )

    def delete(self, installation_id: str) -> None:
        self._repo.delete(installation_id)

    def iter_idle_grants(self, refreshed_before: float) -> Iterator[str]:
        """Installations whose OAuth grant was last refreshed before `refreshed_before`."""
        return self._repo.iter_idle_grants(refreshed_before)

    # --- reading -------------------------------------------------------------------------------

    def api_key(self, installation_id: str) -> str:
        credential = self._read(installation_id)
        if credential.kind != AuthMethod.API_KEY or credential.api_key is None:
            raise WrongCredentialKindError("the installation is not connected with an API key")
        return self._cipher.decrypt_text(installation_id, credential.api_key)

    async def access_token(self, installation_id: str) -> str:
        """A fresh access token, refreshing (single-flight across processes) when needed."""
        return await self._obtain(installation_id, self._needs_refresh)

    async def refresh_if_idle(
        self, installation_id: str, idle_after_s: float = DEFAULT_IDLE_REFRESH_AFTER_S
    ) -> bool:
        """Refresh a grant whose last refresh is older than `idle_after_s`, so an installation
        that has not synced for weeks keeps a live refresh token (Pleo promises only >= 60 days).
        Returns True when this call (or a peer meanwhile) refreshed it."""
        credential = self._read(installation_id)
        if credential.kind != AuthMethod.OAUTH:
            return False
        before = credential.version

        def idle(stored: StoredCredential, now: float) -> bool:
            return stored.version == before and (stored.refreshed_at or 0.0) < now - idle_after_s

        if not idle(credential, self._clock()):
            return False
        await self._obtain(installation_id, idle)
        return True

    async def refresh_idle_grants(
        self, idle_after_s: float = DEFAULT_IDLE_REFRESH_AFTER_S, limit: int | None = None
    ) -> IdleRefreshReport:
        """Refresh every grant idle for longer than `idle_after_s` (at most `limit` of them), for
        a periodic job. Dead grants are reported, for the caller to mark their installations."""
        report = IdleRefreshReport()
        for count, installation_id in enumerate(
            self._repo.iter_idle_grants(self._clock() - idle_after_s)
        ):
            if limit is not None and count >= limit:
                break
            try:
                if await self.refresh_if_idle(installation_id, idle_after_s):
                    report.refreshed.append(installation_id)
            except CredentialError:
                report.revoked.append(installation_id)
            except Exception as error:  # one bad grant must not stop the others
                logger.warning(
                    "idle grant refresh failed",
                    extra={"installation_id": installation_id, "error_type": type(error).__name__},
                )
                report.failed.append(installation_id)
        return report

    # --- the single-flight refresh ---------------------------------------------------------------

    def _needs_refresh(self, credential: StoredCredential, now: float) -> bool:
        return (credential.expires_at or 0.0) - self._refresh_margin(credential) <= now

    def _refresh_margin(self, credential: StoredCredential) -> float:
        """How long before expiry a token stops being fresh: `refresh_margin_s`, bounded by a
        share of the token's lifetime."""
        lifetime = credential.lifetime_s
        if lifetime is None and None not in (credential.expires_at, credential.refreshed_at):
            # Written before the lifetime was kept: both are set in the same write, and the write
            # comes after the token response, so this never exceeds the real lifetime.
            lifetime = (credential.expires_at or 0.0) - (credential.refreshed_at or 0.0)
        if lifetime is None:
            return self._refresh_margin_s
        return max(0.0, min(self._refresh_margin_s, lifetime * REFRESH_MARGIN_FRACTION))

    async def _obtain(
        self, installation_id: str, needs_refresh: Callable[[StoredCredential, float], bool]
    ) -> str:
        owner = uuid.uuid4().hex
        give_up_at = self._clock() + self._max_wait_s
        attempt = 0
        credential = self._read_oauth(installation_id)
        while True:
            now = self._clock()
            if not needs_refresh(credential, now):
                return self._decrypt_access(credential)
            if not credential.lease_held_by_other(owner, now):
                lease = self._repo.acquire_lease(
                    installation_id, owner, now=now, until=now + self._lease_ttl_s
                )
                if lease.credential is None:
                    raise CredentialsNotFoundError("no credentials stored for the installation")
                credential = self._check_oauth(lease.credential)
                if lease.acquired:
                    token = await self._refresh_holding_lease(
                        installation_id, owner, credential, needs_refresh
                    )
                    if token is not None:
                        return token
                    # A peer changed the grant, or the lease was too short: look again at once.
                    if self._clock() >= give_up_at:
                        raise TokenRefreshBusyError("the grant kept changing while refreshing")
                    credential = self._read_oauth(installation_id)
                    continue
                if not needs_refresh(credential, self._clock()):
                    return self._decrypt_access(credential)
            if self._clock() >= give_up_at:
                raise TokenRefreshBusyError("another process is still refreshing the grant")
            await self._sleep(self._backoff(attempt))
            attempt += 1
            credential = self._read_oauth(installation_id)

    async def _refresh_holding_lease(
        self,
        installation_id: str,
        owner: str,
        leased: StoredCredential,
        needs_refresh: Callable[[StoredCredential, float], bool],
    ) -> str | None:
        """Refresh while holding the lease. Returns the access token, or None to start over."""
        written = False
        try:
            now = self._clock()
            if not needs_refresh(leased, now):
                return self._decrypt_access(leased)  # a peer refreshed before we got the lease
            lease_left = (leased.lease_until or now) - now
            if lease_left < self._refresh_timeout_s + self._lease_margin_s:
                return None  # too little lease left to finish the call safely: take a new one
            if self._refresher is None:
                raise ConfigurationError("this token store was built without a refresher")
            if leased.refresh_token is None:
                raise GrantRevokedError("no refresh token stored for the installation")
            refresh_token = self._cipher.decrypt_text(installation_id, leased.refresh_token)
            try:
                async with asyncio.timeout(self._refresh_timeout_s):
                    token_set = await self._refresher(refresh_token)
            except InvalidGrantError:
                return self._after_invalid_grant(installation_id, owner, leased)
            new_refresh = token_set.refresh_token or refresh_token
            try:
                self._repo.complete_refresh(
                    installation_id,
                    owner=owner,
                    expected_version=leased.version,
                    access_token=self._cipher.encrypt_text(installation_id, token_set.access_token),
                    refresh_token=self._cipher.encrypt_text(installation_id, new_refresh),
                    expires_at=token_set.expires_at(self._clock()),
                    lifetime_s=token_set.expires_in,
                )
                written = True
            except WriteConflictError:
                # The grant was replaced (reconnect) or the lease was lost while calling: the
                # fresh access token still works for this call; what is stored wins.
                logger.warning(
                    "refreshed tokens were not stored: the credential changed meanwhile",
                    extra={"installation_id": installation_id},
                )
            return token_set.access_token
        finally:
            if not written:
                self._repo.release_lease(installation_id, owner)

    def _after_invalid_grant(
        self, installation_id: str, owner: str, leased: StoredCredential
    ) -> str | None:
        latest = self._read_oauth(installation_id)
        if latest.version != leased.version:
            return None  # a peer rotated the token (or the user reconnected): use theirs
        try:
            self._repo.mark_grant_revoked(
                installation_id, owner=owner, expected_version=leased.version
            )
        except WriteConflictError:
            return None  # it changed just now: read again
        logger.warning(
            "the refresh token was refused: the grant is dead",
            extra={"installation_id": installation_id},
        )
        raise GrantRevokedError("the authorization was revoked or expired: reconnect the app")

    def _backoff(self, attempt: int) -> float:
        """Full jitter: a random wait up to an exponentially growing cap."""
        return self._jitter() * min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2.0 ** min(attempt, 16))

    # --- helpers -------------------------------------------------------------------------------

    def _read(self, installation_id: str) -> StoredCredential:
        credential = self._repo.get(installation_id)
        if credential is None:
            raise CredentialsNotFoundError("no credentials stored for the installation")
        return credential

    def _read_oauth(self, installation_id: str) -> StoredCredential:
        return self._check_oauth(self._read(installation_id))

    @staticmethod
    def _check_oauth(credential: StoredCredential) -> StoredCredential:
        if credential.kind != AuthMethod.OAUTH:
            raise WrongCredentialKindError("the installation is not connected with OAuth")
        if credential.grant_revoked_at is not None:
            raise GrantRevokedError("the authorization was revoked or expired: reconnect the app")
        return credential

    def _decrypt_access(self, credential: StoredCredential) -> str:
        if credential.access_token is None:
            raise CredentialDecryptError("no access token stored for the installation")
        return self._cipher.decrypt_text(credential.installation_id, credential.access_token)
