"""The repositories on the real engine, which rejects what real DynamoDB rejects (unused
expression values, wrong key types) where moto may not, and serves concurrent requests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

import boto3
import pytest

from local.resources import create_table, load_template, resources_of_type
from local.services import LOCAL_REGION
from pleo_connector.store.credentials import CredentialRepository
from pleo_connector.store.dynamodb import DynamoTable
from pleo_connector.store.errors import CompanyAlreadyInstalledError, WriteConflictError
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.store.oauth_state import (
    OAuthStateStore,
    StateExpiredError,
    StateNotFoundError,
)
from pleo_connector.vocabulary import AuthMethod, InstallationStatus

if TYPE_CHECKING:
    from local.services import Service

pytestmark = pytest.mark.integration


def _record(
    installation_id: str, company_id: str, status: InstallationStatus = InstallationStatus.ACTIVATED
) -> InstallationRecord:
    return InstallationRecord(
        installation_id=installation_id,
        company_id=company_id,
        auth_method=AuthMethod.OAUTH,
        status=status,
        sync_choices={"tag_groups": ["Projects"]},
    )


def test_installation_lifecycle(table: DynamoTable, unique: str) -> None:
    repo = InstallationRepository(table)
    inst, company = f"{unique}-inst", f"{unique}-co"

    created = repo.create_or_update(_record(inst, company, InstallationStatus.AUTHORIZED))
    assert inst not in set(repo.iter_schedulable())
    with pytest.raises(WriteConflictError):
        repo.create_or_update(_record(inst, company))
    with pytest.raises(CompanyAlreadyInstalledError):
        repo.create_or_update(_record(f"{unique}-other", company))

    found = repo.find_by_company(company)
    assert found == created
    pending = repo.create_or_update(replace(found, status=InstallationStatus.PENDING_INTEGRATION))
    assert inst in set(repo.iter_schedulable())
    with pytest.raises(WriteConflictError):
        repo.update_status(inst, InstallationStatus.ACTIVATED, created.version)
    activated = repo.update_status(inst, InstallationStatus.ACTIVATED, pending.version)
    assert activated.version == 3

    repo.mark_auth_failure(inst, status=InstallationStatus.INACTIVE)
    assert inst not in set(repo.iter_schedulable())

    CredentialRepository(table).save_api_key(inst, api_key=b"ciphertext")
    assert repo.delete_all(inst) == 3  # META, CRED, company pointer
    assert repo.get(inst) is None
    assert repo.find_by_company(company) is None
    assert CredentialRepository(table).get(inst) is None


def test_a_paused_installation_stays_off_the_schedule(table: DynamoTable, unique: str) -> None:
    repo = InstallationRepository(table)
    inst = f"{unique}-inst"
    created = repo.create_or_update(_record(inst, f"{unique}-co"))

    paused = repo.set_paused(inst, True)
    assert inst not in set(repo.iter_schedulable())
    repo.update_status(inst, InstallationStatus.ACTIVATED, paused.version)
    assert inst not in set(repo.iter_schedulable())
    with pytest.raises(WriteConflictError):
        repo.update_status(inst, InstallationStatus.ACTIVATED, created.version)

    repo.set_paused(inst, False)
    assert inst in set(repo.iter_schedulable())


@pytest.fixture
def own_table(dynamodb_local: Service, unique: str) -> DynamoTable:
    """A table of this test's alone, from the template: a count sees every installation in it."""
    client = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=LOCAL_REGION
    ).client("dynamodb", endpoint_url=dynamodb_local.url)
    name = f"count-{unique}"
    properties = resources_of_type(load_template(), "AWS::DynamoDB::Table")["Table"]["Properties"]
    create_table(client, name, properties)
    return DynamoTable(name, client=client)


def test_installations_are_counted_by_status_on_the_status_index(own_table: DynamoTable) -> None:
    # Given: installations in every status but one, a paused one, one that died since it was
    # written (it moves between the index's keys), and items of theirs that have no status
    repo = InstallationRepository(own_table)
    statuses = [InstallationStatus.ACTIVATED] * 4 + [
        InstallationStatus.PENDING_INTEGRATION,
        InstallationStatus.AUTHORIZED,
        InstallationStatus.AUTHORIZED,
        InstallationStatus.INACTIVE,
    ]
    for number, status in enumerate(statuses):
        repo.create_or_update(_record(f"inst-{number}", f"co-{number}", status))
    repo.set_paused("inst-0", True)
    repo.mark_auth_failure("inst-1")
    CredentialRepository(own_table).save_api_key("inst-2", api_key=b"ciphertext")

    # When: counted a page of two at a time, and in the index's own pages
    paged = repo.count_by_status(page_size=2)
    counted = repo.count_by_status()

    # Then: every installation once, by its status now; pointers and credentials not at all
    assert (
        counted
        == paged
        == {
            InstallationStatus.ACTIVATED: 3,
            InstallationStatus.PENDING_INTEGRATION: 1,
            InstallationStatus.AUTHORIZED: 2,
            InstallationStatus.INACTIVE: 1,
            InstallationStatus.ERROR: 1,
        }
    )


def test_state_consume_is_single_use_even_when_concurrent(table: DynamoTable, unique: str) -> None:
    store = OAuthStateStore(table)
    state = f"{unique}-state"
    store.issue(state, code_verifier="v" * 43, redirect_uri="http://x/cb", browser_binding_hash="h")

    def consume() -> str:
        try:
            store.consume(state)
        except StateNotFoundError:
            return "lost"
        return "won"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: consume(), range(8)))

    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


def test_an_expired_state_still_in_the_table_is_rejected(table: DynamoTable, unique: str) -> None:
    issued_at = time.time() - 3600
    store = OAuthStateStore(table, clock=lambda: issued_at)
    store.issue(
        f"{unique}-state",
        code_verifier="v" * 43,
        redirect_uri="http://x/cb",
        browser_binding_hash="h",
    )

    with pytest.raises(StateExpiredError):
        OAuthStateStore(table).consume(f"{unique}-state")
    with pytest.raises(StateNotFoundError):
        OAuthStateStore(table).consume(f"{unique}-state")


def test_only_one_of_many_concurrent_lease_requests_wins(table: DynamoTable, unique: str) -> None:
    repo = CredentialRepository(table)
    inst = f"{unique}-inst"
    repo.save_oauth(inst, access_token=b"a", refresh_token=b"r", expires_at=0)
    now = time.time()

    with ThreadPoolExecutor(max_workers=10) as pool:
        attempts = list(
            pool.map(
                lambda owner: repo.acquire_lease(inst, f"owner-{owner}", now=now, until=now + 30),
                range(10),
            )
        )

    assert sum(attempt.acquired for attempt in attempts) == 1


def test_idle_grants_query_on_the_real_index(table: DynamoTable, unique: str) -> None:
    now = time.time()
    repo = CredentialRepository(table, clock=lambda: now - 40 * 86400)
    repo.save_oauth(f"{unique}-idle", access_token=b"a", refresh_token=b"r", expires_at=0)
    CredentialRepository(table).save_oauth(
        f"{unique}-fresh", access_token=b"a", refresh_token=b"r", expires_at=0
    )

    idle = [found for found in repo.iter_idle_grants(now - 30 * 86400) if found.startswith(unique)]

    assert idle == [f"{unique}-idle"]
