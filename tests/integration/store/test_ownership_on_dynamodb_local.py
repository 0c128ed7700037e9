"""The ownership record on the real engine: batch writes from several threads at once (the
applier records off its event loop), read back whole, and removed with the installation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.store.ownership import OwnershipRepository
from pleo_connector.vocabulary import AuthMethod, InstallationStatus, Kind

if TYPE_CHECKING:
    from pleo_connector.store.dynamodb import DynamoTable

pytestmark = pytest.mark.integration


def test_records_written_from_several_threads_are_all_read_back(
    table: DynamoTable, unique: str
) -> None:
    repo = OwnershipRepository(table)
    installation_id = f"{unique}-inst"
    batches = [[(kind, f"{kind}-{n}") for n in range(40)] for kind in Kind]

    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        list(pool.map(lambda batch: repo.record(installation_id, batch), batches))

    assert repo.owned(installation_id) == {entry for batch in batches for entry in batch}
    assert repo.owned(f"{unique}-other") == set()


def test_what_an_installation_owned_goes_with_it(table: DynamoTable, unique: str) -> None:
    installation_id, company_id = f"{unique}-inst", f"{unique}-co"
    installations = InstallationRepository(table)
    installations.create_or_update(
        InstallationRecord(
            installation_id=installation_id,
            company_id=company_id,
            auth_method=AuthMethod.API_KEY,
            status=InstallationStatus.ACTIVATED,
        )
    )
    repo = OwnershipRepository(table)
    repo.record(installation_id, [(Kind.VENDOR, f"v-{n}") for n in range(30)])

    deleted = installations.delete_all(installation_id)

    assert deleted == 1 + 30 + 1  # META, the owned records, the company pointer
    assert repo.owned(installation_id) == set()
