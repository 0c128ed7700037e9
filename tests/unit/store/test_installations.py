"""One installation per company, optimistic versions, and a schedule index that holds exactly the
installations the dispatcher should sync."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pleo_connector.store.dynamodb import STATUS_INDEX, DynamoTable, Item, s
from pleo_connector.store.errors import (
    CompanyAlreadyInstalledError,
    InstallationNotFoundError,
    WriteConflictError,
)
from pleo_connector.store.installations import (
    InstallationRecord,
    InstallationRepository,
)
from pleo_connector.vocabulary import (
    AuthMethod,
    InstallationErrorCode,
    InstallationStatus,
    LocalError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.unit.store.support import FakeClock

AUTH_ERROR = LocalError.AUTH_ERROR
AUTHORIZED_STATUS = InstallationStatus.AUTHORIZED

pytestmark = pytest.mark.unit


def _record(
    installation_id: str = "inst-1", company_id: str = "co-1", **changes: Any
) -> InstallationRecord:
    record = InstallationRecord(
        installation_id=installation_id,
        company_id=company_id,
        auth_method=AuthMethod.OAUTH,
        status=InstallationStatus.ACTIVATED,
        config={"book": "demo.gnucash", "ratio": 0.25},
        sync_choices={"tag_groups": ["Projects"], "vendors": True},
    )
    return replace(record, **changes)


def _schedulable(repo: InstallationRepository) -> set[str]:
    return set(repo.iter_schedulable())


def test_create_then_get_round_trips_every_field(table: DynamoTable, clock: FakeClock) -> None:
    repo = InstallationRepository(table, clock=clock)

    stored = repo.create_or_update(_record(failure_count=2, local_error=LocalError.SOURCE_FAILING))

    assert stored.version == 1
    assert repo.get("inst-1") == stored
    assert stored.config == {"book": "demo.gnucash", "ratio": 0.25}
    assert stored.created_at is not None
    assert stored.created_at.timestamp() == clock.now


def test_a_second_install_for_the_company_updates_the_one_installation(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    repo.create_or_update(_record(status=InstallationStatus.AUTHORIZED))

    found = repo.find_by_company("co-1")
    assert found is not None
    clock.advance(10)
    updated = repo.create_or_update(replace(found, status=InstallationStatus.ACTIVATED))

    assert updated.version == 2
    assert updated.created_at == found.created_at
    assert repo.find_by_company("co-1") == updated
    assert list(table.query(key_condition="pk = :pk", values={":pk": {"S": "COMPANY#co-1"}}))


def test_creating_an_existing_installation_again_conflicts(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    repo.create_or_update(_record())

    with pytest.raises(WriteConflictError):
        repo.create_or_update(_record())


def test_a_stale_version_conflicts_and_changes_nothing(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    first = repo.create_or_update(_record())
    repo.create_or_update(replace(first, sync_choices={"vendors": False}))

    with pytest.raises(WriteConflictError):
        repo.create_or_update(replace(first, sync_choices={"vendors": "stale"}))

    current = repo.get("inst-1")
    assert current is not None
    assert current.version == 2
    assert current.sync_choices == {"vendors": False}


def test_another_installation_for_the_same_company_is_refused(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    repo.create_or_update(_record())

    with pytest.raises(CompanyAlreadyInstalledError):
        repo.create_or_update(_record(installation_id="inst-2"))

    assert repo.get("inst-2") is None
    found = repo.find_by_company("co-1")
    assert found is not None
    assert found.installation_id == "inst-1"


def test_only_activated_or_pending_installations_are_schedulable(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    for number, status in enumerate(
        [
            InstallationStatus.ACTIVATED,
            InstallationStatus.PENDING_INTEGRATION,
            InstallationStatus.AUTHORIZED,
            InstallationStatus.INACTIVE,
            InstallationStatus.ERROR,
        ]
    ):
        repo.create_or_update(_record(f"inst-{status}", f"co-{number}", status=status))

    assert _schedulable(repo) == {"inst-ACTIVATED", "inst-PENDING_INTEGRATION"}


def test_update_status_moves_the_installation_in_and_out_of_the_schedule(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    created = repo.create_or_update(_record(status=InstallationStatus.AUTHORIZED))
    assert _schedulable(repo) == set()

    pending = repo.update_status("inst-1", InstallationStatus.PENDING_INTEGRATION, created.version)
    assert pending.version == created.version + 1
    assert _schedulable(repo) == {"inst-1"}

    inactive = repo.update_status(
        "inst-1",
        InstallationStatus.INACTIVE,
        pending.version,
        local_error=LocalError.SOURCE_FAILING,
        failure_count=5,
    )
    assert (inactive.status, inactive.local_error, inactive.failure_count) == (
        InstallationStatus.INACTIVE,
        LocalError.SOURCE_FAILING,
        5,
    )
    assert _schedulable(repo) == set()


def test_update_status_with_a_stale_version_conflicts(table: DynamoTable, clock: FakeClock) -> None:
    repo = InstallationRepository(table, clock=clock)
    created = repo.create_or_update(_record())
    repo.update_status("inst-1", InstallationStatus.PENDING_INTEGRATION, created.version)

    with pytest.raises(WriteConflictError):
        repo.update_status("inst-1", InstallationStatus.ACTIVATED, created.version)


def test_update_status_of_a_missing_installation_is_not_found(table: DynamoTable) -> None:
    with pytest.raises(InstallationNotFoundError):
        InstallationRepository(table).update_status("nope", InstallationStatus.ACTIVATED)


def test_an_auth_failure_drops_the_installation_from_the_schedule(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    repo.create_or_update(_record())
    assert _schedulable(repo) == {"inst-1"}

    marked = repo.mark_auth_failure("inst-1")

    assert (marked.status, marked.error_code, marked.local_error) == (
        InstallationStatus.ERROR,
        InstallationErrorCode.AUTH_ERROR,
        LocalError.AUTH_ERROR,
    )
    assert not marked.schedulable
    assert _schedulable(repo) == set()


def test_an_auth_failure_keeps_even_an_activated_status_out_of_the_schedule(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    repo.create_or_update(_record(local_error=AUTH_ERROR))

    assert _schedulable(repo) == set()


def test_delete_all_removes_every_item_and_the_company_pointer(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    repo.create_or_update(_record())
    repo.create_or_update(_record("inst-other", "co-other"))
    for sk in ("CRED", "LEASE", "RUN#2026-01-01T00:00:00Z", "RUN#2026-01-02T00:00:00Z"):
        table.put({"pk": {"S": "INST#inst-1"}, "sk": {"S": sk}})

    deleted = repo.delete_all("inst-1")

    assert deleted == 6
    assert (
        list(
            table.query(
                key_condition="pk = :pk", values={":pk": {"S": "INST#inst-1"}}, consistent=True
            )
        )
        == []
    )
    assert repo.find_by_company("co-1") is None
    assert _schedulable(repo) == {"inst-other"}
    # After a removal the company can install again.
    assert repo.create_or_update(_record("inst-new")).version == 1


def test_a_paused_installation_leaves_the_schedule_until_it_is_resumed(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    created = repo.create_or_update(_record())

    paused = repo.set_paused("inst-1", True)

    assert (paused.paused, paused.schedulable, paused.version) == (True, False, 2)
    assert repo.get("inst-1") == paused
    assert _schedulable(repo) == set()

    resumed = repo.set_paused("inst-1", False)

    assert (resumed.paused, resumed.schedulable) == (False, True)
    assert resumed.status == created.status
    assert _schedulable(repo) == {"inst-1"}


def test_a_status_change_does_not_put_a_paused_installation_back_on_the_schedule(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    repo.create_or_update(_record(status=InstallationStatus.PENDING_INTEGRATION))
    paused = repo.set_paused("inst-1", True)

    activated = repo.update_status("inst-1", InstallationStatus.ACTIVATED, paused.version)

    assert (activated.status, activated.paused, activated.version) == (
        InstallationStatus.ACTIVATED,
        True,
        paused.version + 1,
    )
    assert _schedulable(repo) == set()


def test_a_paused_installation_with_a_stale_version_still_conflicts(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    created = repo.create_or_update(_record())
    repo.set_paused("inst-1", True)

    with pytest.raises(WriteConflictError):
        repo.update_status("inst-1", InstallationStatus.ACTIVATED, created.version)


def test_resuming_keeps_an_installation_out_that_is_not_schedulable_anyway(
    table: DynamoTable, clock: FakeClock
) -> None:
    repo = InstallationRepository(table, clock=clock)
    repo.create_or_update(_record())
    repo.set_paused("inst-1", True)
    repo.mark_auth_failure("inst-1")

    resumed = repo.set_paused("inst-1", False)

    assert (resumed.paused, resumed.local_error) == (False, AUTH_ERROR)
    assert _schedulable(repo) == set()


def test_pausing_a_missing_installation_is_not_found(table: DynamoTable) -> None:
    with pytest.raises(InstallationNotFoundError):
        InstallationRepository(table).set_paused("nope", True)


class _LaggingIndex(DynamoTable):
    """The table, with a `ByStatus` index that still holds `stale` keys under AUTHORIZED: an
    installation that has moved on to another status and one deleted since (the index follows
    the table within a second or so)."""

    stale = ("inst-moved", "inst-deleted")

    def query(self, **request: Any) -> Iterator[Item]:
        yield from super().query(**request)
        authorized = request["values"].get(":status") == s(InstallationStatus.AUTHORIZED)
        if request.get("index") == STATUS_INDEX and authorized:
            for installation_id in self.stale:
                yield {
                    "pk": s(f"INST#{installation_id}"),
                    "sk": s("META"),
                    "status": s("AUTHORIZED"),
                }


def _ids(pages: Iterator[list[InstallationRecord]]) -> list[str]:
    return sorted(record.installation_id for page in pages for record in page)


def test_a_listing_reads_each_installation_once_under_the_status_its_item_has_now(
    table: DynamoTable, clock: FakeClock
) -> None:
    lagging = _LaggingIndex(table.table_name, client=table.client)
    repo = InstallationRepository(lagging, clock=clock)
    repo.create_or_update(_record("inst-moved", "co-moved"))
    repo.create_or_update(_record("inst-waiting", "co-waiting", status=AUTHORIZED_STATUS))
    table.put({"pk": s("INST#inst-moved"), "sk": s("RUN#2026-12-01T00:00:00Z")})

    authorized = _ids(repo.iter_pages([AUTHORIZED_STATUS], page_size=1))
    everything = _ids(repo.iter_pages(page_size=1))

    assert authorized == ["inst-waiting"]
    assert everything == ["inst-moved", "inst-waiting"]
