"""Refresh race (security bar 18): 20 separate processes on one expired credential, on DynamoDB
Local, against the Pleo emulator (which rotates refresh tokens and revokes the grant on reuse).

Exactly one token call, no reuse detection, every process gets the same token, and the credential
ends at version start + 1. On a dead grant: one call, no retry, GrantRevokedError everywhere, and
the installation, once marked, is no longer scheduled. Tokens that live seconds cost one call per
expiry too, and a server that does not rotate refresh tokens (RFC 6749 section 6) keeps working.

For short-lived tokens the racing processes' clock is frozen and moved by the test (with the
emulator's), so a token expires when the test says, however slow the machine.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from bench.bench_refresh_race import (
    RaceEndpoints,
    RefreshRace,
    build_parts,
    build_table,
    count_token_calls,
    race_once,
)
from pleo_connector.pleo.oauth import OAuthClient, TokenSet
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.tokens import GrantRevokedError, TokenStore
from pleo_connector.vocabulary import AuthMethod, InstallationStatus
from tests.support.emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local.resources import LocalResources
    from local.services import Service

pytestmark = pytest.mark.integration

PROCESSES = 20


@pytest.fixture(scope="module")
def endpoints(
    dynamodb_local: Service,
    moto_server: Service,
    local_resources: LocalResources,
    pleo_emulator: Any,
) -> RaceEndpoints:
    return RaceEndpoints(
        dynamodb_url=dynamodb_local.url,
        kms_url=moto_server.url,
        table_name=local_resources.tables["Table"],
        kms_key_id=local_resources.keys["CredentialsKey"],
        auth_url=pleo_emulator.url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
    )


@pytest.fixture(scope="module")
def race(endpoints: RaceEndpoints) -> Iterator[RefreshRace]:
    with RefreshRace(endpoints, PROCESSES) as running:
        yield running


def test_twenty_processes_make_one_token_call(
    race: RefreshRace, endpoints: RaceEndpoints, emulator: Any
) -> None:
    repo, cipher = build_parts(endpoints)

    first = race_once(race, repo, cipher, emulator.control, installation_id="race-one")
    # Again on the same installation: a new grant saved over the old one, a later start version.
    second = race_once(race, repo, cipher, emulator.control, installation_id="race-one")

    for record in (first, second):
        assert record.result.errors == []
        assert len(record.result.outcomes) == PROCESSES
        assert len(record.result.distinct_tokens) == 1
        assert record.token_calls == 1
        assert record.reuse_detections == 0
        assert record.final_version == record.start_version + 1
    assert second.start_version > first.final_version


def test_a_dead_grant_is_one_call_no_retry_and_leaves_the_schedule(
    race: RefreshRace, endpoints: RaceEndpoints, emulator: Any
) -> None:
    repo, cipher = build_parts(endpoints)
    installations = InstallationRepository(build_table(endpoints))
    installations.create_or_update(
        InstallationRecord(
            installation_id="race-dead",
            company_id="race-dead-company",
            auth_method=AuthMethod.OAUTH,
            status=InstallationStatus.ACTIVATED,
        )
    )
    assert "race-dead" in set(installations.iter_schedulable())

    record = race_once(
        race, repo, cipher, _RevokingControl(emulator.control), installation_id="race-dead"
    )

    assert record.token_calls == 1
    assert record.reuse_detections == 0
    assert sorted(set(record.result.errors)) == ["GrantRevokedError"]
    assert len(record.result.errors) == PROCESSES
    stored = repo.get("race-dead")
    assert stored is not None
    assert stored.grant_revoked_at is not None

    installations.mark_auth_failure("race-dead", status=InstallationStatus.INACTIVE)
    assert "race-dead" not in set(installations.iter_schedulable())


@pytest.mark.parametrize("lifetime", [5, 30])
def test_a_short_lived_token_costs_one_token_call_per_expiry(
    race: RefreshRace, endpoints: RaceEndpoints, emulator: Any, lifetime: int
) -> None:
    control = emulator.control
    control.set_token_lifetime(access_s=lifetime)
    repo, cipher = build_parts(endpoints)
    installation_id = f"race-short-{lifetime}"
    tokens = control.obtain_tokens()
    assert tokens["expires_in"] == lifetime

    def race_and_count() -> tuple[int, int]:
        """(token calls, distinct access tokens) when all 20 processes ask at once."""
        control.clear_request_log()
        result = race.run(installation_id)
        assert result.errors == []
        return count_token_calls(control), len(result.distinct_tokens)

    def advance(seconds: float) -> None:
        race.advance_clock(seconds)
        control.advance_clock(seconds)

    rounds = []
    with race.frozen_clock():
        TokenStore(repo, cipher, clock=race.clock).save_oauth_tokens(
            installation_id,
            TokenSet(tokens["access_token"], tokens["refresh_token"], tokens["expires_in"]),
        )
        for _ in range(3):
            advance(lifetime * 0.7)  # most of the lifetime gone, still more than a quarter left
            within_lifetime = race_and_count()
            advance(lifetime * 0.3)  # expired
            rounds.append((within_lifetime, race_and_count()))

    # Each expiry: one call, one token for all; before its last quarter, a token is used as it is.
    assert rounds == [((0, 1), (1, 1))] * 3
    assert control.events().get("refresh_token_reuse_detected", 0) == 0


@pytest.mark.parametrize("token_type", ["bearer", "BEARER"])
def test_a_server_that_does_not_rotate_keeps_working_until_it_revokes(
    endpoints: RaceEndpoints, emulator: Any, token_type: str
) -> None:
    """RFC 6749 section 6: no `refresh_token` in the refresh answer, the old one stays valid; and
    with neither `expires_in` (only RECOMMENDED) nor a capitalised token type."""
    control = emulator.control
    repo, cipher = build_parts(endpoints)
    installation_id = f"no-rotation-{token_type}"
    tokens = control.obtain_tokens()
    control.update_settings(
        rotate_refresh_tokens=False, send_expires_in=False, token_type=token_type
    )
    now = [1_800_000_000.0]

    async def access_tokens(count: int) -> list[str]:
        oauth = OAuthClient(emulator.url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        store = TokenStore(repo, cipher, oauth.refresh, clock=lambda: now[0])
        try:
            got = []
            for _ in range(count):
                now[0] += 3600  # expired each time: every call refreshes
                got.append(await store.access_token(installation_id))
            return got
        finally:
            await oauth.aclose()

    TokenStore(repo, cipher, clock=lambda: now[0]).save_oauth_tokens(
        installation_id, TokenSet(tokens["access_token"], tokens["refresh_token"], 3600)
    )
    control.clear_request_log()

    refreshed = asyncio.run(access_tokens(3))

    assert len(set(refreshed)) == 3
    assert count_token_calls(control) == 3
    stored = repo.get(installation_id)
    assert stored is not None
    assert stored.refresh_token is not None
    assert cipher.decrypt_text(installation_id, stored.refresh_token) == tokens["refresh_token"]
    assert stored.lifetime_s == 300  # no expires_in: the documented default
    # The grant revoked at Pleo: refused once, recorded, never tried again.
    control.revoke_grants()
    with pytest.raises(GrantRevokedError):
        asyncio.run(access_tokens(1))
    with pytest.raises(GrantRevokedError):
        asyncio.run(access_tokens(1))
    assert count_token_calls(control) == 4
    stored = repo.get(installation_id)
    assert stored is not None
    assert stored.grant_revoked_at is not None


class _RevokingControl:
    """The emulator's control API, revoking the grant right after race_once obtained it (as
    when the customer removes the app in Pleo)."""

    def __init__(self, control: Any) -> None:
        self._control = control

    def obtain_tokens(self) -> dict[str, Any]:
        tokens: dict[str, Any] = self._control.obtain_tokens()
        self._control.revoke_grants()
        return tokens

    def __getattr__(self, name: str) -> Any:
        return getattr(self._control, name)
