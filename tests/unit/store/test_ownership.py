"""The ownership record on moto: what an installation created or adopted, added in batches of 25,
read back whole, and forgotten with the installation."""

from __future__ import annotations

from typing import Any

import pytest

from pleo_connector.store.dynamodb import DynamoTable, s
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.store.ownership import OwnershipRepository
from pleo_connector.vocabulary import (
    AuthMethod,
    InstallationStatus,
    Kind,
    UnknownStoredValueError,
)

pytestmark = pytest.mark.unit


class CountingClient:
    """The real (moto) client, counting the batch writes that pass through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.batches: list[int] = []

    def batch_write_item(self, **request: Any) -> Any:
        [writes] = request["RequestItems"].values()
        self.batches.append(len(writes))
        return self._client.batch_write_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_owned_records_are_read_back_as_recorded_in_batches_of_25(table: DynamoTable) -> None:
    counting = CountingClient(table.client)
    repo = OwnershipRepository(DynamoTable(table.table_name, client=counting))  # type: ignore[arg-type]
    entries = [(Kind.TAG, f"tag-{n}") for n in range(55)] + [(Kind.VENDOR, "v#1")]

    repo.record("inst-1", entries)
    repo.record("inst-1", entries[:3])  # recording again is harmless

    assert counting.batches == [25, 25, 6, 3]
    assert repo.owned("inst-1") == set(entries)
    assert repo.owned("inst-2") == set()


def test_recording_nothing_writes_nothing(table: DynamoTable) -> None:
    counting = CountingClient(table.client)
    repo = OwnershipRepository(DynamoTable(table.table_name, client=counting))  # type: ignore[arg-type]

    repo.record("inst-1", [])

    assert counting.batches == []


def test_a_stored_kind_this_version_does_not_know_is_an_error(table: DynamoTable) -> None:
    table.put({"pk": s("INST#inst-1"), "sk": s("OWN#gadget#g1")})

    with pytest.raises(UnknownStoredValueError):
        OwnershipRepository(table).owned("inst-1")


def test_removing_the_installation_forgets_what_it_owned(table: DynamoTable) -> None:
    installations = InstallationRepository(table)
    installations.create_or_update(
        InstallationRecord(
            installation_id="inst-1",
            company_id="company-1",
            auth_method=AuthMethod.API_KEY,
            status=InstallationStatus.ACTIVATED,
        )
    )
    repo = OwnershipRepository(table)
    repo.record("inst-1", [(Kind.ACCOUNT, "a1"), (Kind.TAX_CODE, "t1")])

    installations.delete_all("inst-1")

    assert repo.owned("inst-1") == set()
