"""The credentials item `INST#<id>`/`CRED`: ciphertexts only, plus the refresh lease.

This repository never sees a plaintext token: tokens.py encrypts before and decrypts after. Every
write of new tokens bumps `version`, and the refresh path writes only while it still holds the
lease at the version it read (fencing), so two refreshes can never both land.

A live OAuth grant also sits in the table's `Schedulable` index, in its own partition
(`IDLE_REFRESH`, sorted by the time of its last refresh), so the grants idle for long are found
with one query instead of a scan. API keys and dead grants are not in it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pleo_connector.store.dynamodb import (
    SCHEDULABLE_INDEX,
    DynamoTable,
    Item,
    Key,
    b,
    get_b,
    get_int,
    get_n,
    get_s,
    n,
    need_s,
    s,
)
from pleo_connector.store.errors import WriteConflictError
from pleo_connector.vocabulary import AuthMethod, parse_stored

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_LEASE_FIELDS = "lease_owner, lease_until"
_IDLE_FIELDS = "schedule_pk, schedule_sk"
IDLE_REFRESH_PARTITION = "IDLE_REFRESH"


@dataclass(frozen=True, slots=True)
class StoredCredential:
    installation_id: str
    kind: AuthMethod
    version: int
    access_token: bytes | None = None  # ciphertext
    refresh_token: bytes | None = None  # ciphertext
    api_key: bytes | None = None  # ciphertext
    expires_at: float | None = None
    # The access token's lifetime as issued (expires_in): None on items written before it was kept.
    lifetime_s: float | None = None
    refreshed_at: float | None = None
    lease_owner: str | None = None
    lease_until: float | None = None
    grant_revoked_at: float | None = None

    def lease_held_by_other(self, owner: str, now: float) -> bool:
        return (
            self.lease_owner is not None
            and self.lease_owner != owner
            and self.lease_until is not None
            and self.lease_until > now
        )


@dataclass(frozen=True, slots=True)
class LeaseAttempt:
    """The outcome of asking for the refresh lease, with the item as it is now (None: no item)."""

    acquired: bool
    credential: StoredCredential | None


class CredentialRepository:
    def __init__(self, table: DynamoTable, *, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def get(self, installation_id: str) -> StoredCredential | None:
        item = self._table.get(_key(installation_id), consistent=True)
        return None if item is None else _credential_from_item(item)

    def save_oauth(
        self,
        installation_id: str,
        *,
        access_token: bytes,
        refresh_token: bytes,
        expires_at: float,
        lifetime_s: float | None = None,
    ) -> StoredCredential:
        """Store a new grant's tokens (install or reconnect). Clears any lease and revocation mark,
        and bumps the version so a refresh of the old grant still in flight cannot land."""
        now = self._clock()
        set_lifetime, remove_lifetime, lifetime_values = _lifetime_update(lifetime_s)
        item = self._table.update(
            _key(installation_id),
            update=(
                "SET installation_id = :id, kind = :kind, access_token = :access, "
                "refresh_token = :refresh, expires_at = :expires_at, refreshed_at = :now, "
                f"{set_lifetime}version = if_not_exists(version, :zero) + :one, "
                "schedule_pk = :idle_pk, schedule_sk = :idle_sk "
                f"REMOVE api_key, grant_revoked_at, {remove_lifetime}{_LEASE_FIELDS}"
            ),
            values={
                **lifetime_values,
                ":id": s(installation_id),
                ":kind": s(AuthMethod.OAUTH),
                ":access": b(access_token),
                ":refresh": b(refresh_token),
                ":expires_at": n(expires_at),
                ":now": n(now),
                ":zero": n(0),
                ":one": n(1),
                ":idle_pk": s(IDLE_REFRESH_PARTITION),
                ":idle_sk": s(idle_sort_key(now, installation_id)),
            },
        )
        return _credential_from_item(item)

    def save_api_key(self, installation_id: str, *, api_key: bytes) -> StoredCredential:
        item = self._table.update(
            _key(installation_id),
            update=(
                "SET installation_id = :id, kind = :kind, api_key = :key, refreshed_at = :now, "
                "version = if_not_exists(version, :zero) + :one "
                "REMOVE access_token, refresh_token, expires_at, lifetime_s, grant_revoked_at, "
                f"{_LEASE_FIELDS}, {_IDLE_FIELDS}"
            ),
            values={
                ":id": s(installation_id),
                ":kind": s(AuthMethod.API_KEY),
                ":key": b(api_key),
                ":now": n(self._clock()),
                ":zero": n(0),
                ":one": n(1),
            },
        )
        return _credential_from_item(item)

    def acquire_lease(
        self, installation_id: str, owner: str, *, now: float, until: float
    ) -> LeaseAttempt:
        """Take the refresh lease if nobody holds a live one. The returned credential is read in
        the same atomic step, so it is the re-read that shows a peer's finished refresh."""
        try:
            item = self._table.update(
                _key(installation_id),
                update="SET lease_owner = :owner, lease_until = :until",
                condition=(
                    "attribute_exists(pk) AND "
                    "(attribute_not_exists(lease_until) OR lease_until <= :now)"
                ),
                values={":owner": s(owner), ":until": n(until), ":now": n(now)},
                return_old_on_conflict=True,
            )
        except WriteConflictError as error:
            current = None if error.current is None else _credential_from_item(error.current)
            return LeaseAttempt(acquired=False, credential=current)
        return LeaseAttempt(acquired=True, credential=_credential_from_item(item))

    def complete_refresh(
        self,
        installation_id: str,
        *,
        owner: str,
        expected_version: int,
        access_token: bytes,
        refresh_token: bytes,
        expires_at: float,
        lifetime_s: float | None = None,
    ) -> StoredCredential:
        """Write both rotated tokens and release the lease, only if `owner` still holds the lease
        at `expected_version`. Raises WriteConflictError otherwise."""
        now = self._clock()
        set_lifetime, remove_lifetime, lifetime_values = _lifetime_update(lifetime_s)
        item = self._table.update(
            _key(installation_id),
            update=(
                "SET access_token = :access, refresh_token = :refresh, expires_at = :expires_at, "
                f"{set_lifetime}refreshed_at = :now, version = version + :one, "
                f"schedule_sk = :idle_sk REMOVE {remove_lifetime}{_LEASE_FIELDS}"
            ),
            condition="lease_owner = :owner AND version = :expected",
            values={
                **lifetime_values,
                ":access": b(access_token),
                ":refresh": b(refresh_token),
                ":expires_at": n(expires_at),
                ":now": n(now),
                ":idle_sk": s(idle_sort_key(now, installation_id)),
                ":one": n(1),
                ":owner": s(owner),
                ":expected": n(expected_version),
            },
        )
        return _credential_from_item(item)

    def mark_grant_revoked(
        self, installation_id: str, *, owner: str, expected_version: int
    ) -> StoredCredential:
        """Record that the authorization server rejected this grant, so no process calls the
        token endpoint with it again; only a new install clears it."""
        item = self._table.update(
            _key(installation_id),
            update=f"SET grant_revoked_at = :now REMOVE {_LEASE_FIELDS}, {_IDLE_FIELDS}",
            condition="lease_owner = :owner AND version = :expected",
            values={
                ":now": n(self._clock()),
                ":owner": s(owner),
                ":expected": n(expected_version),
            },
        )
        return _credential_from_item(item)

    def release_lease(self, installation_id: str, owner: str) -> bool:
        """Give the lease back if `owner` still holds it. False when it had moved on."""
        try:
            self._table.update(
                _key(installation_id),
                update=f"REMOVE {_LEASE_FIELDS}",
                condition="lease_owner = :owner",
                values={":owner": s(owner)},
            )
        except WriteConflictError:
            return False
        return True

    def delete(self, installation_id: str) -> None:
        self._table.delete(_key(installation_id))

    def iter_idle_grants(self, refreshed_before: float, page_size: int = 100) -> Iterator[str]:
        """Installations whose live OAuth grant was last refreshed before `refreshed_before`,
        oldest first (the index is eventually consistent; refresh_if_idle re-checks)."""
        for item in self._table.query(
            index=SCHEDULABLE_INDEX,
            key_condition="schedule_pk = :partition AND schedule_sk < :cutoff",
            values={
                ":partition": s(IDLE_REFRESH_PARTITION),
                ":cutoff": s(f"{_epoch_key(refreshed_before)}#"),
            },
            page_size=page_size,
        ):
            yield need_s(item, "schedule_sk").split("#", 1)[1]


def idle_sort_key(refreshed_at: float, installation_id: str) -> str:
    return f"{_epoch_key(refreshed_at)}#{installation_id}"


def _epoch_key(moment: float) -> str:
    """Whole epoch seconds, zero-padded so that string order is time order."""
    return f"{max(0, int(moment)):012d}"


def _lifetime_update(lifetime_s: float | None) -> tuple[str, str, dict[str, Any]]:
    """The SET part, the REMOVE part and the values that write a token's lifetime: an unknown one
    is removed, so a new token never inherits the lifetime of the one it replaces."""
    if lifetime_s is None:
        return "", "lifetime_s, ", {}
    return "lifetime_s = :lifetime, ", "", {":lifetime": n(lifetime_s)}


def _key(installation_id: str) -> Key:
    return {"pk": s(f"INST#{installation_id}"), "sk": s("CRED")}


def _credential_from_item(item: Item) -> StoredCredential:
    return StoredCredential(
        installation_id=need_s(item, "installation_id"),
        kind=parse_stored(AuthMethod, need_s(item, "kind"), field="kind"),
        version=get_int(item, "version"),
        access_token=get_b(item, "access_token"),
        refresh_token=get_b(item, "refresh_token"),
        api_key=get_b(item, "api_key"),
        expires_at=get_n(item, "expires_at"),
        lifetime_s=get_n(item, "lifetime_s"),
        refreshed_at=get_n(item, "refreshed_at"),
        lease_owner=get_s(item, "lease_owner"),
        lease_until=get_n(item, "lease_until"),
        grant_revoked_at=get_n(item, "grant_revoked_at"),
    )
