"""Refresh race (security bar 18): 20 separate processes on one expired credential, on DynamoDB
Local, against the Pleo emulator (which rotates refresh tokens and revokes the grant on reuse).

Exactly one token call, no reuse detection, every process gets the same token, and the credential
ends at version start + 1. On a dead grant: one call, no retry, GrantRevokedError everywhere, and
the installation, once marked, is no longer scheduled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench.bench_refresh_race import (
    RaceEndpoints,
    RefreshRace,
    build_parts,
    build_table,
    race_once,
)
from local.resources import LocalResources
from local.services import Service
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.vocabulary import AuthMethod, InstallationStatus
from tests.support.emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

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
