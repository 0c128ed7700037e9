"""The credentials item: the refresh lease and the fencing of the token write."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pleo_connector.store.credentials import CredentialRepository
from pleo_connector.store.errors import WriteConflictError

if TYPE_CHECKING:
    from pleo_connector.store.dynamodb import DynamoTable
    from tests.unit.store.support import FakeClock

pytestmark = pytest.mark.unit


def _saved(table: DynamoTable, clock: FakeClock) -> CredentialRepository:
    repo = CredentialRepository(table, clock=clock)
    repo.save_oauth("inst-1", access_token=b"a1", refresh_token=b"r1", expires_at=clock.now - 1)
    return repo


def test_saving_a_grant_starts_at_version_one_and_bumps_after(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = _saved(table, clock)

    again = repo.save_oauth("inst-1", access_token=b"a2", refresh_token=b"r2", expires_at=5.0)

    assert again.version == 2
    assert (again.access_token, again.refresh_token, again.expires_at) == (b"a2", b"r2", 5.0)


def test_only_one_owner_gets_the_lease(table: DynamoTable, clock: FakeClock) -> None:
    repo = _saved(table, clock)

    first = repo.acquire_lease("inst-1", "one", now=clock.now, until=clock.now + 30)
    second = repo.acquire_lease("inst-1", "two", now=clock.now, until=clock.now + 30)

    assert first.acquired
    assert not second.acquired
    assert second.credential is not None
    assert second.credential.lease_owner == "one"


def test_an_expired_lease_can_be_taken_over(table: DynamoTable, clock: FakeClock) -> None:
    repo = _saved(table, clock)
    repo.acquire_lease("inst-1", "one", now=clock.now, until=clock.now + 30)
    clock.advance(31)

    taken = repo.acquire_lease("inst-1", "two", now=clock.now, until=clock.now + 30)

    assert taken.acquired


def test_no_lease_without_a_credential(table: DynamoTable, clock: FakeClock) -> None:
    attempt = CredentialRepository(table, clock=clock).acquire_lease(
        "missing", "one", now=clock.now, until=clock.now + 30
    )

    assert not attempt.acquired
    assert attempt.credential is None


def test_the_token_write_needs_the_lease_and_the_version(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = _saved(table, clock)
    lease = repo.acquire_lease("inst-1", "one", now=clock.now, until=clock.now + 30)
    assert lease.credential is not None
    version = lease.credential.version

    with pytest.raises(WriteConflictError):
        repo.complete_refresh(
            "inst-1",
            owner="two",
            expected_version=version,
            access_token=b"x",
            refresh_token=b"x",
            expires_at=1.0,
        )
    with pytest.raises(WriteConflictError):
        repo.complete_refresh(
            "inst-1",
            owner="one",
            expected_version=version - 1,
            access_token=b"x",
            refresh_token=b"x",
            expires_at=1.0,
        )
    done = repo.complete_refresh(
        "inst-1",
        owner="one",
        expected_version=version,
        access_token=b"a2",
        refresh_token=b"r2",
        expires_at=clock.now + 900,
    )

    assert done.version == version + 1
    assert (done.lease_owner, done.lease_until) == (None, None)
    assert done.refresh_token == b"r2"


def test_a_reconnect_fences_out_a_refresh_in_flight(table: DynamoTable, clock: FakeClock) -> None:
    repo = _saved(table, clock)
    lease = repo.acquire_lease("inst-1", "one", now=clock.now, until=clock.now + 30)
    assert lease.credential is not None

    repo.save_oauth("inst-1", access_token=b"new", refresh_token=b"new", expires_at=9.0)

    with pytest.raises(WriteConflictError):
        repo.complete_refresh(
            "inst-1",
            owner="one",
            expected_version=lease.credential.version,
            access_token=b"old",
            refresh_token=b"old",
            expires_at=1.0,
        )
    current = repo.get("inst-1")
    assert current is not None
    assert current.refresh_token == b"new"


def test_release_only_by_the_holder(table: DynamoTable, clock: FakeClock) -> None:
    repo = _saved(table, clock)
    repo.acquire_lease("inst-1", "one", now=clock.now, until=clock.now + 30)

    assert not repo.release_lease("inst-1", "two")
    assert repo.release_lease("inst-1", "one")
    assert repo.acquire_lease("inst-1", "two", now=clock.now, until=clock.now + 30).acquired


def test_an_api_key_replaces_oauth_tokens(table: DynamoTable, clock: FakeClock) -> None:
    repo = _saved(table, clock)

    saved = repo.save_api_key("inst-1", api_key=b"key-ciphertext")

    assert saved.kind == "api_key"
    assert (saved.api_key, saved.access_token, saved.refresh_token) == (
        b"key-ciphertext",
        None,
        None,
    )


def test_idle_grants_are_listed_oldest_first_without_api_keys(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = CredentialRepository(table, clock=clock)
    repo.save_oauth("b-older", access_token=b"a", refresh_token=b"r", expires_at=0)
    clock.advance(100)
    repo.save_oauth("a-newer", access_token=b"a", refresh_token=b"r", expires_at=0)
    repo.save_api_key("c-key", api_key=b"k")
    clock.advance(100)
    repo.save_oauth("d-recent", access_token=b"a", refresh_token=b"r", expires_at=0)

    assert list(repo.iter_idle_grants(clock.now - 50)) == ["b-older", "a-newer"]
    assert list(repo.iter_idle_grants(clock.now - 150)) == ["b-older"]


def test_a_tokens_lifetime_is_kept_and_never_outlives_its_token(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = CredentialRepository(table, clock=clock)
    saved = repo.save_oauth(
        "inst-1", access_token=b"a1", refresh_token=b"r1", expires_at=clock.now + 30, lifetime_s=30
    )
    assert saved.lifetime_s == 30
    lease = repo.acquire_lease("inst-1", "me", now=clock.now, until=clock.now + 30)
    assert lease.credential is not None

    refreshed = repo.complete_refresh(
        "inst-1",
        owner="me",
        expected_version=lease.credential.version,
        access_token=b"a2",
        refresh_token=b"r2",
        expires_at=clock.now + 5,
        lifetime_s=5,
    )
    assert refreshed.lifetime_s == 5
    # A write that does not know the lifetime removes the old one, as does an API key.
    assert (
        repo.save_oauth("inst-1", access_token=b"a", refresh_token=b"r", expires_at=0).lifetime_s
        is None
    )
    repo.save_oauth("inst-1", access_token=b"a", refresh_token=b"r", expires_at=0, lifetime_s=9)
    assert repo.save_api_key("inst-1", api_key=b"k").lifetime_s is None
