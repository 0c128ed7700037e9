"""The token store: fresh tokens used as they are, single-flight refresh, invalid_grant policy.

Time is a fake clock that moves only when the store sleeps, so lease arithmetic is exact.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from moto import mock_aws

from pleo_connector.crypto import CredentialCipher
from pleo_connector.pleo.errors import InvalidGrantError, OAuthError
from pleo_connector.store.credentials import CredentialRepository, LeaseAttempt
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.tokens import (
    CredentialsNotFoundError,
    GrantRevokedError,
    TokenRefreshBusyError,
    TokenStore,
    WrongCredentialKindError,
)
from pleo_connector.vocabulary import AuthMethod, InstallationStatus
from tests.unit.store.support import FakeClock, make_kms_key, make_table

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pleo_connector.store.dynamodb import DynamoTable

pytestmark = pytest.mark.unit

INSTALLATION = "inst-1"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_in: int = 900

    def expires_at(self, now: float) -> float:
        return now + self.expires_in


class RotatingTokenServer:
    """A refresh endpoint that rotates refresh tokens and rejects any it has seen before."""

    def __init__(self) -> None:
        self.expires_in = 900
        self.rotates = True
        self.live = {"refresh-0"}
        self.calls: list[str] = []
        self.reuse_detections = 0
        self._serial = itertools.count(1)
        self.before_answer: Any = None

    async def refresh(self, refresh_token: str) -> Tokens:
        self.calls.append(refresh_token)
        await asyncio.sleep(0)  # let the other callers run while this one is "on the wire"
        if self.before_answer is not None:
            self.before_answer()
        if refresh_token not in self.live:
            self.reuse_detections += 1
            raise InvalidGrantError("invalid_grant", "refresh token already used", 400)
        serial = next(self._serial)
        if not self.rotates:  # RFC 6749 section 6: no new refresh token, the old one stays
            return Tokens(f"access-{serial}", None, self.expires_in)
        self.live.remove(refresh_token)
        self.live.add(f"refresh-{serial}")
        return Tokens(f"access-{serial}", f"refresh-{serial}", self.expires_in)


@dataclass
class World:
    table: DynamoTable
    repo: CredentialRepository
    cipher: CredentialCipher
    clock: FakeClock
    server: RotatingTokenServer

    def store(self, **options: Any) -> TokenStore:
        async def fake_sleep(seconds: float) -> None:
            self.clock.advance(seconds)
            await asyncio.sleep(0)

        options.setdefault("clock", self.clock)
        options.setdefault("sleep", fake_sleep)
        options.setdefault("jitter", lambda: 1.0)
        return TokenStore(self.repo, self.cipher, self.server.refresh, **options)

    def save_expired_grant(self, refresh_token: str = "refresh-0") -> None:
        self.store().save_oauth_tokens(INSTALLATION, Tokens("access-0", refresh_token, -1))

    def stored_refresh_token(self) -> str:
        credential = self.repo.get(INSTALLATION)
        assert credential is not None
        assert credential.refresh_token is not None
        return self.cipher.decrypt_text(INSTALLATION, credential.refresh_token)

    def version(self) -> int:
        credential = self.repo.get(INSTALLATION)
        assert credential is not None
        return credential.version


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        table = make_table()
        kms, key_id = make_kms_key()
        clock = FakeClock()
        yield World(
            table,
            CredentialRepository(table, clock=clock),
            CredentialCipher(key_id, kms_client=kms),
            clock,
            RotatingTokenServer(),
        )


def test_a_fresh_access_token_is_used_without_a_call(world: World) -> None:
    store = world.store()
    store.save_oauth_tokens(INSTALLATION, Tokens("access-0", "refresh-0", 900))

    assert asyncio.run(store.access_token(INSTALLATION)) == "access-0"
    assert world.server.calls == []


def test_tokens_are_stored_encrypted(world: World) -> None:
    world.store().save_oauth_tokens(INSTALLATION, Tokens("access-plain", "refresh-plain", 900))

    raw = repr(world.table.get({"pk": {"S": f"INST#{INSTALLATION}"}, "sk": {"S": "CRED"}}))

    assert "access-plain" not in raw
    assert "refresh-plain" not in raw


def test_an_expired_token_is_refreshed_once_and_both_tokens_are_stored(world: World) -> None:
    world.save_expired_grant()
    start = world.version()

    token = asyncio.run(world.store().access_token(INSTALLATION))

    assert token == "access-1"
    assert world.server.calls == ["refresh-0"]
    assert world.stored_refresh_token() == "refresh-1"
    assert world.version() == start + 1
    credential = world.repo.get(INSTALLATION)
    assert credential is not None
    assert credential.lease_owner is None
    # The stored access token is the new one: the next caller makes no call.
    assert asyncio.run(world.store().access_token(INSTALLATION)) == "access-1"
    assert len(world.server.calls) == 1


def test_a_token_inside_the_refresh_margin_is_refreshed(world: World) -> None:
    world.store().save_oauth_tokens(INSTALLATION, Tokens("access-0", "refresh-0", 900))
    store = world.store(refresh_margin_s=60)
    world.clock.advance(839)

    assert asyncio.run(store.access_token(INSTALLATION)) == "access-0"
    world.clock.advance(2)  # 59 s left
    assert asyncio.run(store.access_token(INSTALLATION)) == "access-1"


@pytest.mark.parametrize("lifetime", [5, 30, 60])
def test_a_short_lived_token_is_used_for_three_quarters_of_its_life(
    world: World, lifetime: int
) -> None:
    world.server.expires_in = lifetime
    world.store().save_oauth_tokens(INSTALLATION, Tokens("access-0", "refresh-0", lifetime))
    store = world.store()

    tokens = []
    for _ in range(5):  # back to back, all within the first three quarters
        tokens.append(asyncio.run(store.access_token(INSTALLATION)))
        world.clock.advance(lifetime * 0.74 / 5)

    assert tokens == ["access-0"] * 5
    assert world.server.calls == []
    world.clock.advance(lifetime * 0.02)  # into the last quarter
    assert asyncio.run(store.access_token(INSTALLATION)) == "access-1"
    assert asyncio.run(store.access_token(INSTALLATION)) == "access-1"
    assert len(world.server.calls) == 1


def test_concurrent_callers_make_one_refresh_per_expiry_of_a_short_token(world: World) -> None:
    world.server.expires_in = 30
    world.store().save_oauth_tokens(INSTALLATION, Tokens("access-0", "refresh-0", 30))
    stores = [world.store() for _ in range(20)]

    async def everyone() -> set[str]:
        return set(await asyncio.gather(*(store.access_token(INSTALLATION) for store in stores)))

    for round_ in range(1, 11):
        world.clock.advance(30)  # the token has expired
        assert asyncio.run(everyone()) == {f"access-{round_}"}
        assert len(world.server.calls) == round_
        assert asyncio.run(everyone()) == {f"access-{round_}"}  # fresh: nobody calls
        assert len(world.server.calls) == round_
    assert world.server.reuse_detections == 0


def test_a_credential_stored_without_its_lifetime_derives_it(world: World) -> None:
    """Items written before the lifetime was kept: expires_at - refreshed_at is the lifetime."""
    world.repo.save_oauth(
        INSTALLATION,
        access_token=world.cipher.encrypt_text(INSTALLATION, "access-0"),
        refresh_token=world.cipher.encrypt_text(INSTALLATION, "refresh-0"),
        expires_at=world.clock.now + 40,
    )
    stored = world.repo.get(INSTALLATION)
    assert stored is not None
    assert stored.lifetime_s is None
    store = world.store()

    world.clock.advance(29)  # 11 s left of 40: more than a quarter
    assert asyncio.run(store.access_token(INSTALLATION)) == "access-0"
    world.clock.advance(2)  # 9 s left
    assert asyncio.run(store.access_token(INSTALLATION)) == "access-1"
    assert world.server.calls == ["refresh-0"]


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one(world: World) -> None:
    world.server.rotates = False
    world.save_expired_grant()
    start = world.version()
    store = world.store()

    assert asyncio.run(store.access_token(INSTALLATION)) == "access-1"
    assert world.stored_refresh_token() == "refresh-0"
    assert world.version() == start + 1
    world.clock.advance(900)
    assert asyncio.run(store.access_token(INSTALLATION)) == "access-2"

    assert world.server.calls == ["refresh-0", "refresh-0"]
    assert world.stored_refresh_token() == "refresh-0"


def test_concurrent_callers_share_one_refresh(world: World) -> None:
    world.save_expired_grant()
    start = world.version()

    async def many() -> list[str]:
        stores = [world.store() for _ in range(10)]
        return await asyncio.gather(*(store.access_token(INSTALLATION) for store in stores))

    tokens = asyncio.run(many())

    assert tokens == ["access-1"] * 10
    assert len(world.server.calls) == 1
    assert world.server.reuse_detections == 0
    assert world.version() == start + 1


def test_a_waiter_uses_the_token_a_peer_stored(world: World) -> None:
    world.save_expired_grant()
    peer = world.repo.acquire_lease(
        INSTALLATION, "peer", now=world.clock.now, until=world.clock.now + 30
    )
    assert peer.credential is not None
    peer_version = peer.credential.version

    async def peer_finishes_while_we_wait(seconds: float) -> None:
        world.clock.advance(seconds)
        world.repo.complete_refresh(
            INSTALLATION,
            owner="peer",
            expected_version=peer_version,
            access_token=world.cipher.encrypt_text(INSTALLATION, "peer-access"),
            refresh_token=world.cipher.encrypt_text(INSTALLATION, "peer-refresh"),
            expires_at=world.clock.now + 900,
        )

    token = asyncio.run(world.store(sleep=peer_finishes_while_we_wait).access_token(INSTALLATION))

    assert token == "peer-access"
    assert world.server.calls == []


def test_a_lease_left_by_a_crashed_peer_expires_and_is_taken_over(world: World) -> None:
    world.save_expired_grant()
    world.repo.acquire_lease(
        INSTALLATION, "crashed", now=world.clock.now, until=world.clock.now + 30
    )

    token = asyncio.run(world.store().access_token(INSTALLATION))

    assert token == "access-1"
    assert world.clock.now > 1_800_000_030  # it waited for the lease to run out
    assert len(world.server.calls) == 1


def test_the_lease_must_outlive_the_whole_refresh_call(world: World) -> None:
    with pytest.raises(ValueError, match="lease_ttl_s"):
        world.store(lease_ttl_s=12, refresh_timeout_s=10, lease_margin_s=5)


def test_no_call_starts_with_too_little_lease_left(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.save_expired_grant()
    acquired: list[LeaseAttempt] = []
    original = world.repo.acquire_lease

    def slow_acquire(installation_id: str, owner: str, *, now: float, until: float) -> LeaseAttempt:
        attempt = original(installation_id, owner, now=now, until=until)
        acquired.append(attempt)
        if len(acquired) == 1:
            world.clock.advance(20)  # 30 s lease, 10 s call + 5 s margin: only 10 s left
        return attempt

    monkeypatch.setattr(world.repo, "acquire_lease", slow_acquire)
    store = world.store(lease_ttl_s=30, refresh_timeout_s=10, lease_margin_s=5)

    token = asyncio.run(store.access_token(INSTALLATION))

    assert token == "access-1"
    assert len(acquired) == 2
    assert world.server.calls == ["refresh-0"]


def test_a_refresh_call_that_overruns_its_timeout_gives_the_lease_back(world: World) -> None:
    world.save_expired_grant()

    async def hangs(refresh_token: str) -> Tokens:
        await asyncio.sleep(5)
        raise AssertionError("the timeout should have fired")

    store = TokenStore(
        world.repo,
        world.cipher,
        hangs,
        clock=world.clock,
        refresh_timeout_s=0.05,
        lease_margin_s=0,
        lease_ttl_s=1,
    )

    with pytest.raises(TimeoutError):
        asyncio.run(store.access_token(INSTALLATION))

    credential = world.repo.get(INSTALLATION)
    assert credential is not None
    assert credential.lease_owner is None


def test_other_token_endpoint_errors_propagate_and_release_the_lease(world: World) -> None:
    world.save_expired_grant()

    async def fails(refresh_token: str) -> Tokens:
        raise OAuthError("server_error", None, 503)

    store = TokenStore(world.repo, world.cipher, fails, clock=world.clock)

    with pytest.raises(OAuthError):
        asyncio.run(store.access_token(INSTALLATION))

    credential = world.repo.get(INSTALLATION)
    assert credential is not None
    assert credential.lease_owner is None
    assert credential.grant_revoked_at is None


def test_invalid_grant_on_an_unchanged_token_is_a_dead_grant_without_retry(world: World) -> None:
    world.save_expired_grant(refresh_token="refresh-revoked")
    store = world.store()

    with pytest.raises(GrantRevokedError) as raised:
        asyncio.run(store.access_token(INSTALLATION))

    assert world.server.calls == ["refresh-revoked"]
    assert "refresh-revoked" not in str(raised.value)
    # Recorded on the item: nobody calls the token endpoint with it again.
    with pytest.raises(GrantRevokedError):
        asyncio.run(world.store().access_token(INSTALLATION))
    assert len(world.server.calls) == 1


def test_a_dead_grant_marks_the_installation_and_stops_its_schedule(world: World) -> None:
    installations = InstallationRepository(world.table, clock=world.clock)
    installations.create_or_update(
        InstallationRecord(
            installation_id=INSTALLATION,
            company_id="co-1",
            auth_method=AuthMethod.OAUTH,
            status=InstallationStatus.ACTIVATED,
        )
    )
    world.save_expired_grant(refresh_token="refresh-revoked")
    assert list(installations.iter_schedulable()) == [INSTALLATION]

    with pytest.raises(GrantRevokedError):
        asyncio.run(world.store().access_token(INSTALLATION))
    installations.mark_auth_failure(INSTALLATION, status=InstallationStatus.INACTIVE)

    assert list(installations.iter_schedulable()) == []


def test_invalid_grant_after_a_peer_rotated_uses_the_peers_token(world: World) -> None:
    world.save_expired_grant()

    def user_reconnects_meanwhile() -> None:
        world.server.before_answer = None
        world.store().save_oauth_tokens(INSTALLATION, Tokens("reconnected", "refresh-new", 900))
        world.server.live.discard("refresh-0")  # the old grant is gone

    world.server.before_answer = user_reconnects_meanwhile

    token = asyncio.run(world.store().access_token(INSTALLATION))

    assert token == "reconnected"
    assert world.server.calls == ["refresh-0"]
    assert world.stored_refresh_token() == "refresh-new"


def test_a_reconnect_during_the_call_is_not_overwritten(world: World) -> None:
    world.save_expired_grant()

    def user_reconnects_meanwhile() -> None:
        world.server.before_answer = None
        world.store().save_oauth_tokens(INSTALLATION, Tokens("reconnected", "refresh-new", 900))

    world.server.before_answer = user_reconnects_meanwhile

    token = asyncio.run(world.store().access_token(INSTALLATION))

    assert token == "access-1"  # valid for this call
    assert world.stored_refresh_token() == "refresh-new"  # the new grant stays


def test_an_idle_grant_is_refreshed_ahead_of_time(world: World) -> None:
    world.store().save_oauth_tokens(INSTALLATION, Tokens("access-0", "refresh-0", 900))
    store = world.store()

    assert not asyncio.run(store.refresh_if_idle(INSTALLATION, idle_after_s=86400))
    world.clock.advance(86401)
    assert asyncio.run(store.refresh_if_idle(INSTALLATION, idle_after_s=86400))

    assert world.server.calls == ["refresh-0"]
    assert world.stored_refresh_token() == "refresh-1"
    assert not asyncio.run(store.refresh_if_idle(INSTALLATION, idle_after_s=86400))


def test_api_keys_round_trip_encrypted(world: World) -> None:
    store = world.store()
    store.save_api_key(INSTALLATION, "key-plain-123")

    raw = repr(world.table.get({"pk": {"S": f"INST#{INSTALLATION}"}, "sk": {"S": "CRED"}}))

    assert "key-plain-123" not in raw
    assert store.api_key(INSTALLATION) == "key-plain-123"
    with pytest.raises(WrongCredentialKindError):
        asyncio.run(store.access_token(INSTALLATION))
    assert not asyncio.run(store.refresh_if_idle(INSTALLATION, idle_after_s=0))


def test_nothing_stored_is_reported(world: World) -> None:
    store = world.store()

    with pytest.raises(CredentialsNotFoundError):
        asyncio.run(store.access_token(INSTALLATION))
    with pytest.raises(CredentialsNotFoundError):
        store.api_key(INSTALLATION)


def test_delete_forgets_the_credentials(world: World) -> None:
    store = world.store()
    store.save_api_key(INSTALLATION, "key")

    store.delete(INSTALLATION)

    with pytest.raises(CredentialsNotFoundError):
        store.api_key(INSTALLATION)


def test_idle_grants_are_found_through_the_index_and_refreshed(world: World) -> None:
    store = world.store()
    store.save_oauth_tokens("old-live", Tokens("a", "refresh-0", 900))
    store.save_oauth_tokens("old-dead", Tokens("a", "refresh-revoked-at-pleo", 900))
    store.save_api_key("old-key", "key")
    world.clock.advance(10 * 86400)
    store.save_oauth_tokens("recent", Tokens("a", "refresh-recent", 900))
    world.clock.advance(86400)

    report = asyncio.run(store.refresh_idle_grants(idle_after_s=5 * 86400))

    assert report.refreshed == ["old-live"]
    assert report.revoked == ["old-dead"]
    assert report.failed == []
    assert sorted(world.server.calls) == ["refresh-0", "refresh-revoked-at-pleo"]
    # Refreshed and dead grants both leave the idle list; the next run has nothing to do.
    again = asyncio.run(store.refresh_idle_grants(idle_after_s=5 * 86400))
    assert (again.refreshed, again.revoked) == ([], [])
    assert len(world.server.calls) == 2


def test_a_waiter_gives_up_on_a_lease_that_outlasts_its_patience(world: World) -> None:
    world.save_expired_grant()
    world.repo.acquire_lease(INSTALLATION, "slow", now=world.clock.now, until=world.clock.now + 30)

    with pytest.raises(TokenRefreshBusyError):
        asyncio.run(world.store(max_wait_s=5).access_token(INSTALLATION))

    assert world.server.calls == []
