"""Installations: one per company, written with optimistic `version` conditions.

Items: the installation `INST#<id>`/`META`, and a pointer `COMPANY#<id>`/`INSTALLATION` written in
the same transaction, so a second install for the same company finds the one installation and
updates it instead of adding another. The `Schedulable` index holds exactly the installations
the dispatcher should sync: `schedule_pk`/`schedule_sk` exist only while the status is ACTIVATED
or PENDING_INTEGRATION, the installation is not marked for an auth failure, and nobody paused it
(`paused`, set by an operator: it leaves the index like a dead installation, whatever its status
does meanwhile, until it is unpaused). The `ByStatus` index holds every installation under its
`status`, for `count_by_status` and for the listings of `iter_pages`.

Two pieces of bookkeeping are written without the version (a settings save that read the record
before them must not fail for them): the count of runs in a row that could not read the source
(`record_source_failure`), and when "sync now" was last pressed (`mark_sync_requested`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import batched
from typing import TYPE_CHECKING, Any

from pleo_connector.store.dynamodb import (
    SCHEDULABLE_INDEX,
    STATUS_INDEX,
    DynamoTable,
    Item,
    Key,
    get_int,
    get_json,
    get_n,
    get_s,
    json_attr,
    n,
    need_s,
    s,
)
from pleo_connector.store.errors import (
    CompanyAlreadyInstalledError,
    IndexUnavailableError,
    InstallationNotFoundError,
    WriteConflictError,
)
from pleo_connector.vocabulary import (
    SCHEDULABLE_STATUSES,
    AuthMethod,
    InstallationErrorCode,
    InstallationStatus,
    LocalError,
    parse_stored,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Sequence

SCHEDULABLE_PARTITION = "SCHEDULABLE"

META = "META"
COMPANY_POINTER = "INSTALLATION"
_PAUSE_ATTEMPTS = 3


def installation_pk(installation_id: str) -> str:
    return f"INST#{installation_id}"


def company_pk(company_id: str) -> str:
    return f"COMPANY#{company_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallationRecord:
    """What the app knows about one installation. `version` is the stored version this record was
    read at (0 for one not stored yet); every write checks it and returns the record at +1."""

    installation_id: str
    company_id: str
    auth_method: AuthMethod
    status: InstallationStatus
    error_code: InstallationErrorCode | None = None
    local_error: LocalError | None = None
    config: dict[str, Any] = field(default_factory=dict)
    sync_choices: dict[str, Any] = field(default_factory=dict)
    failure_count: int = 0
    paused: bool = False
    # Why the source could not be read, in words for the customer (with SOURCE_FAILING).
    failure_reason: str | None = None
    # When "sync now" queued a run that has not started yet.
    sync_requested_at: datetime | None = None
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def schedulable(self) -> bool:
        return is_schedulable(self.status, self.local_error, paused=self.paused)


def is_schedulable(
    status: InstallationStatus, local_error: LocalError | None, *, paused: bool = False
) -> bool:
    return status in SCHEDULABLE_STATUSES and local_error != LocalError.AUTH_ERROR and not paused


class InstallationRepository:
    def __init__(self, table: DynamoTable, *, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    # --- reads ---------------------------------------------------------------------------------

    def get(self, installation_id: str) -> InstallationRecord | None:
        item = self._table.get(_meta_key(installation_id))
        return None if item is None else _record_from_item(item)

    def require(self, installation_id: str) -> InstallationRecord:
        record = self.get(installation_id)
        if record is None:
            raise InstallationNotFoundError("no such installation", operation="GetItem")
        return record

    def find_by_company(self, company_id: str) -> InstallationRecord | None:
        pointer = self.company_pointer(company_id)
        if pointer is None:
            return None
        return self.get(need_s(pointer, "installation_id"))

    def iter_schedulable(self, page_size: int = 1000) -> Iterator[str]:
        """Ids of the installations the dispatcher should sync, a page at a time (the index is
        eventually consistent: a change shows up within a second or so). Its items are keys only,
        so a page of 1,000 is small: 10,000 installations are ten queries."""
        for item in self._table.query(
            index=SCHEDULABLE_INDEX,
            key_condition="schedule_pk = :partition",
            values={":partition": s(SCHEDULABLE_PARTITION)},
            page_size=page_size,
        ):
            yield need_s(item, "schedule_sk")

    def count_by_status(self, page_size: int | None = None) -> dict[InstallationStatus, int]:
        """How many installations are in each status, paused and dead ones included: one
        `Select=COUNT` query per status on the `ByStatus` index.

        Why this index, not what the dispatcher already reads: the `Schedulable` entries are keys
        only (no status: ACTIVATED and PENDING_INTEGRATION cannot be told apart) and leave out
        every installation that is paused, dead, AUTHORIZED, INACTIVE or ERROR, which is what an
        operator wants counted. A scan would read every item of the table (runs, ownership: many
        per installation) each time. `ByStatus` is keyed on the `status` the META item already
        has, so DynamoDB filled it for the installations stored before it existed and keeps it
        without a write of ours; its entries are keys only (about 60 bytes), so counting 1,000
        installations reads about 64 KB: 8 read units, a page per status."""
        return {
            status: self._table.count(
                index=STATUS_INDEX,
                key_condition="#status = :status",
                names={"#status": "status"},
                values={":status": s(status)},
                page_size=page_size,
            )
            for status in InstallationStatus
        }

    def iter_pages(
        self,
        statuses: Collection[InstallationStatus] = (),
        *,
        page_size: int = 1000,
        on_scan: Callable[[], None] | None = None,
    ) -> Iterator[list[InstallationRecord]]:
        """Every installation (only those in `statuses`, when given), a page at a time, for the
        admin tool's listings: the `ByStatus` index's keys, `page_size` a query, status after
        status, then the META items they point at by BatchGetItem (100 a request).

        The cost grows with the installations listed, not with the table: the index pages are
        keys only (about 64 KB per 1,000), and each META item is billed as one read rounded up
        to 4 KB (half a read unit, eventually consistent), so 1,000 installations cost about
        500 read units whatever runs and ownership records the table holds besides. A page may
        come back empty. An installation whose status changes meanwhile is listed once, under
        the status its META item has when read (and left out if that status was not asked for).

        While the index cannot be read (DynamoDB still backfilling it after it was added, or a
        table made without it) the rest of the listing is a scan of the whole table, as before
        the index existed: `on_scan` is called once when that starts."""
        wanted = [status for status in InstallationStatus if not statuses or status in statuses]
        listed: set[str] = set()
        queried: list[InstallationStatus] = []
        try:
            for status in wanted:
                keys = self._table.query(
                    index=STATUS_INDEX,
                    key_condition="#status = :status",
                    names={"#status": "status"},
                    values={":status": s(status)},
                    page_size=page_size,
                )
                for page in batched(keys, page_size, strict=False):
                    yield self._fresh(self._metas(page), wanted, listed)
                queried.append(status)
        except IndexUnavailableError:
            if on_scan is not None:
                on_scan()
            left = [status for status in wanted if status not in queried]
            for records in self._scanned_pages(left if statuses or queried else (), page_size):
                yield self._fresh(records, wanted, listed)

    def _metas(self, keys: Sequence[Item]) -> list[InstallationRecord]:
        """The records of the META items under an index page's `keys`, in the page's order (one
        deleted since the index was read is left out)."""
        items = self._table.batch_get([{"pk": key["pk"], "sk": key["sk"]} for key in keys])
        by_pk = {need_s(item, "pk"): item for item in items}
        return [
            _record_from_item(by_pk[pk])
            for pk in (need_s(key, "pk") for key in keys)
            if pk in by_pk
        ]

    @staticmethod
    def _fresh(
        records: list[InstallationRecord],
        wanted: Collection[InstallationStatus],
        listed: set[str],
    ) -> list[InstallationRecord]:
        """The `records` in a `wanted` status that were not listed yet (and now are)."""
        fresh = [
            record
            for record in records
            if record.status in wanted and record.installation_id not in listed
        ]
        listed.update(record.installation_id for record in fresh)
        return fresh

    def _scanned_pages(
        self, statuses: Collection[InstallationStatus], page_size: int
    ) -> Iterator[list[InstallationRecord]]:
        """The META items in `statuses` (all, when empty), a page of the whole table at a time:
        the listing without the `ByStatus` index, its cost growing with the whole table."""
        condition = "entity = :installation"
        values: dict[str, Any] = {":installation": s("installation")}
        if statuses:
            names = []
            for index, status in enumerate(sorted(set(statuses))):
                names.append(f":status{index}")
                values[f":status{index}"] = s(status)
            condition += f" AND #status IN ({', '.join(names)})"
        for page in self._table.scan_pages(
            filter_expression=condition,
            values=values,
            names={"#status": "status"} if statuses else None,
            page_size=page_size,
        ):
            yield [_record_from_item(item) for item in page if get_s(item, "sk") == META]

    # --- writes --------------------------------------------------------------------------------

    def create_or_update(self, record: InstallationRecord) -> InstallationRecord:
        """Store `record` if nobody wrote the installation since it was read at `record.version`.

        Raises WriteConflictError when the version moved on (re-read and try again), and
        CompanyAlreadyInstalledError when the company already has another installation.
        """
        now = self._now()
        stored = replace(
            record,
            version=record.version + 1,
            created_at=record.created_at or now,
            updated_at=now,
        )
        if record.version == 0:
            meta_condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            meta_condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": n(record.version)},
            }
        pointer: Item = {
            "pk": s(company_pk(record.company_id)),
            "sk": s(COMPANY_POINTER),
            "installation_id": s(record.installation_id),
            "updated_at": s(_iso(now)),
        }
        try:
            self._table.transact_write(
                [
                    {"Put": {"Item": _item_from_record(stored), **meta_condition}},
                    {
                        "Put": {
                            "Item": pointer,
                            "ConditionExpression": (
                                "attribute_not_exists(pk) OR installation_id = :installation"
                            ),
                            "ExpressionAttributeValues": {
                                ":installation": s(record.installation_id)
                            },
                        }
                    },
                ]
            )
        except WriteConflictError as error:
            if len(error.reasons) > 1 and error.reasons[1] == "ConditionalCheckFailed":
                raise CompanyAlreadyInstalledError(
                    "the company already has another installation",
                    operation=error.operation,
                    code=error.code,
                    reasons=error.reasons,
                ) from error
            raise
        return stored

    def update_status(
        self,
        installation_id: str,
        status: InstallationStatus,
        expected_version: int | None = None,
        *,
        error_code: InstallationErrorCode | None = None,
        local_error: LocalError | None = None,
        failure_count: int | None = None,
    ) -> InstallationRecord:
        """Set the status (and error fields: None clears them; clearing `local_error` clears the
        failure reason with it), keeping the schedule index in step.

        With `expected_version`, only if nobody wrote since; without, whatever the version. A
        paused installation stays out of the index whatever its status.
        """
        write = _StatusWrite(
            installation_id, status, expected_version, error_code, local_error, failure_count
        )
        schedule = is_schedulable(status, local_error)
        try:
            return self._write_status(write, schedule=schedule)
        except WriteConflictError as error:
            if error.current is None:
                raise InstallationNotFoundError(
                    "no such installation", operation=error.operation
                ) from error
            if schedule and _lost_only_to_pause(error.current, expected_version):
                return self._write_status(write, schedule=False)
            raise

    def _write_status(self, write: _StatusWrite, *, schedule: bool) -> InstallationRecord:
        """One conditional update; with `schedule`, it joins the index unless it is paused (the
        condition fails then, and the caller writes again without the index)."""
        now = self._now()
        sets = ["#status = :status", "updated_at = :now", "version = version + :one"]
        removes: list[str] = []
        values: dict[str, Any] = {
            ":status": s(write.status),
            ":now": s(_iso(now)),
            ":one": n(1),
        }
        for name, value in (("error_code", write.error_code), ("local_error", write.local_error)):
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = s(value)
        if write.local_error is None:
            removes.append("failure_reason")  # the reason goes with the error it explained
        if write.failure_count is not None:
            sets.append("failure_count = :failure_count")
            values[":failure_count"] = n(write.failure_count)
        condition = "attribute_exists(pk)"
        if schedule:
            sets += ["schedule_pk = :schedule_pk", "schedule_sk = :schedule_sk"]
            values[":schedule_pk"] = s(SCHEDULABLE_PARTITION)
            values[":schedule_sk"] = s(write.installation_id)
            condition += " AND (attribute_not_exists(paused) OR paused = :unpaused)"
            values[":unpaused"] = {"BOOL": False}
        else:
            removes += ["schedule_pk", "schedule_sk"]
        if write.expected_version is not None:
            condition += " AND version = :expected"
            values[":expected"] = n(write.expected_version)
        update = "SET " + ", ".join(sets)
        if removes:
            update += " REMOVE " + ", ".join(removes)
        item = self._table.update(
            _meta_key(write.installation_id),
            update=update,
            condition=condition,
            names={"#status": "status"},
            values=values,
            return_old_on_conflict=True,
        )
        return _record_from_item(item)

    def set_paused(self, installation_id: str, paused: bool) -> InstallationRecord:
        """Pause (or resume) the scheduled syncs of one installation: a paused one leaves the
        `Schedulable` index, and the worker skips what is already queued for it. Resuming puts it
        back only where its status and errors allow. Retried on a concurrent write."""
        conflicts = 0
        while True:
            record = self.require(installation_id)
            if record.paused == paused:
                return record
            sets = ["updated_at = :now", "version = version + :one"]
            removes: list[str] = []
            values: dict[str, Any] = {
                ":now": s(_iso(self._now())),
                ":one": n(1),
                ":expected": n(record.version),
            }
            if paused:
                sets.append("paused = :paused")
                values[":paused"] = {"BOOL": True}
            else:
                removes.append("paused")
            if is_schedulable(record.status, record.local_error, paused=paused):
                sets += ["schedule_pk = :schedule_pk", "schedule_sk = :schedule_sk"]
                values[":schedule_pk"] = s(SCHEDULABLE_PARTITION)
                values[":schedule_sk"] = s(installation_id)
            else:
                removes += ["schedule_pk", "schedule_sk"]
            update = "SET " + ", ".join(sets)
            if removes:
                update += " REMOVE " + ", ".join(removes)
            try:
                item = self._table.update(
                    _meta_key(installation_id),
                    update=update,
                    condition="version = :expected",
                    values=values,
                )
            except WriteConflictError:
                conflicts += 1
                if conflicts == _PAUSE_ATTEMPTS:
                    raise
                continue
            return _record_from_item(item)

    def mark_auth_failure(
        self, installation_id: str, status: InstallationStatus = InstallationStatus.ERROR
    ) -> InstallationRecord:
        """The credential is dead (`invalid_grant`, a rejected API key): stop scheduling it until
        the user reconnects. `status` is what Pleo was (or would be) told: ERROR, or INACTIVE when
        Pleo can no longer be told."""
        return self.update_status(
            installation_id,
            status,
            error_code=InstallationErrorCode.AUTH_ERROR,
            local_error=LocalError.AUTH_ERROR,
        )

    def record_source_failure(self, installation_id: str, reason: str) -> InstallationRecord:
        """One more run that could not read the source: count it and keep why (SOURCE_FAILING).
        The status is left as it is; the failure policy decides when it changes."""
        try:
            item = self._table.update(
                _meta_key(installation_id),
                update=(
                    "SET failure_count = if_not_exists(failure_count, :zero) + :one, "
                    "local_error = :source_failing, failure_reason = :reason, updated_at = :now"
                ),
                condition="attribute_exists(pk)",
                values={
                    ":zero": n(0),
                    ":one": n(1),
                    ":source_failing": s(LocalError.SOURCE_FAILING),
                    ":reason": s(reason),
                    ":now": s(_iso(self._now())),
                },
            )
        except WriteConflictError as error:
            raise InstallationNotFoundError(
                "no such installation", operation=error.operation
            ) from error
        return _record_from_item(item)

    def mark_sync_requested(self, installation_id: str, *, window_s: float) -> bool:
        """Note that "sync now" queued a run, unless one was queued within `window_s` seconds and
        has not started yet. False: one is queued already (nothing was written)."""
        now = self._clock()
        try:
            self._table.update(
                _meta_key(installation_id),
                update="SET sync_requested_at = :now",
                condition=(
                    "attribute_exists(pk) AND "
                    "(attribute_not_exists(sync_requested_at) OR sync_requested_at < :cutoff)"
                ),
                values={":now": n(now), ":cutoff": n(now - window_s)},
                return_old_on_conflict=True,
            )
        except WriteConflictError as error:
            if error.current is None:
                raise InstallationNotFoundError(
                    "no such installation", operation=error.operation
                ) from error
            return False
        return True

    def clear_sync_request(
        self, installation_id: str, *, requested_at: datetime | None = None
    ) -> bool:
        """The run a "sync now" asked for has ended (or it could not be queued): it may be pressed
        again. With `requested_at`, only that press is cleared, not one made since. False: nothing
        was cleared (another press, or the installation is gone)."""
        condition = "attribute_exists(sync_requested_at)"
        values: dict[str, Any] = {}
        if requested_at is not None:
            condition += " AND sync_requested_at = :seen"
            values[":seen"] = n(requested_at.timestamp())
        try:
            self._table.update(
                _meta_key(installation_id),
                update="REMOVE sync_requested_at",
                condition=condition,
                values=values or None,
            )
        except WriteConflictError:
            return False
        return True

    def items_of(self, installation_id: str) -> Iterator[Item]:
        """Every stored item of the installation (META, CRED, LEASE, RUN#..., OWN#...), as
        stored: ciphertexts included, so only for deleting them or for a redacted export."""
        return self._table.query(
            key_condition="pk = :pk",
            values={":pk": s(installation_pk(installation_id))},
            consistent=True,
        )

    def company_pointer(self, company_id: str) -> Item | None:
        """The company's pointer item, as stored."""
        return self._table.get({"pk": s(company_pk(company_id)), "sk": s(COMPANY_POINTER)})

    def delete_all(self, installation_id: str) -> int:
        """Remove every item of the installation (META, CRED, LEASE, RUN#...) and its company
        pointer. Returns how many items were deleted."""
        keys: list[Key] = []
        company_id: str | None = None
        for item in self.items_of(installation_id):
            keys.append({"pk": item["pk"], "sk": item["sk"]})
            if get_s(item, "sk") == META:
                company_id = get_s(item, "company_id")
        deleted = self._table.delete_many(keys)
        if company_id is not None:
            try:
                self._table.delete(
                    {"pk": s(company_pk(company_id)), "sk": s(COMPANY_POINTER)},
                    condition="installation_id = :installation",
                    values={":installation": s(installation_id)},
                )
                deleted += 1
            except WriteConflictError:
                pass  # the pointer already names a newer installation: keep it
        return deleted

    def _now(self) -> datetime:
        """Now, at the millisecond precision it is stored with (so returned == re-read)."""
        moment = datetime.fromtimestamp(self._clock(), tz=UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- mapping between the domain record and the stored item ---------------------------------------


def _meta_key(installation_id: str) -> Key:
    return {"pk": s(installation_pk(installation_id)), "sk": s(META)}


@dataclass(frozen=True, slots=True)
class _StatusWrite:
    installation_id: str
    status: InstallationStatus
    expected_version: int | None
    error_code: InstallationErrorCode | None
    local_error: LocalError | None
    failure_count: int | None


def _is_paused(item: Item) -> bool:
    value = item.get("paused")
    return bool(value and value.get("BOOL"))


def _lost_only_to_pause(current: Item, expected_version: int | None) -> bool:
    """Whether a status write failed because the installation is paused, and not (also) because
    its version moved on."""
    version_held = expected_version is None or get_int(current, "version") == expected_version
    return _is_paused(current) and version_held


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _item_from_record(record: InstallationRecord) -> Item:
    item: Item = {
        **_meta_key(record.installation_id),
        "entity": s("installation"),
        "installation_id": s(record.installation_id),
        "company_id": s(record.company_id),
        "auth_method": s(record.auth_method),
        "status": s(record.status),
        "config": json_attr(record.config),
        "sync_choices": json_attr(record.sync_choices),
        "failure_count": n(record.failure_count),
        "version": n(record.version),
    }
    if record.error_code is not None:
        item["error_code"] = s(record.error_code)
    if record.local_error is not None:
        item["local_error"] = s(record.local_error)
    if record.paused:
        item["paused"] = {"BOOL": True}
    if record.failure_reason is not None:
        item["failure_reason"] = s(record.failure_reason)
    if record.sync_requested_at is not None:
        item["sync_requested_at"] = n(record.sync_requested_at.timestamp())
    if record.created_at is not None:
        item["created_at"] = s(_iso(record.created_at))
    if record.updated_at is not None:
        item["updated_at"] = s(_iso(record.updated_at))
    if record.schedulable:
        item["schedule_pk"] = s(SCHEDULABLE_PARTITION)
        item["schedule_sk"] = s(record.installation_id)
    return item


def _record_from_item(item: Item) -> InstallationRecord:
    created_at = get_s(item, "created_at")
    updated_at = get_s(item, "updated_at")
    error_code = get_s(item, "error_code")
    local_error = get_s(item, "local_error")
    sync_requested_at = get_n(item, "sync_requested_at")
    return InstallationRecord(
        installation_id=need_s(item, "installation_id"),
        company_id=need_s(item, "company_id"),
        auth_method=parse_stored(AuthMethod, need_s(item, "auth_method"), field="auth_method"),
        status=parse_stored(InstallationStatus, need_s(item, "status"), field="status"),
        error_code=(
            None
            if error_code is None
            else parse_stored(InstallationErrorCode, error_code, field="error_code")
        ),
        local_error=(
            None
            if local_error is None
            else parse_stored(LocalError, local_error, field="local_error")
        ),
        config=get_json(item, "config") or {},
        sync_choices=get_json(item, "sync_choices") or {},
        failure_count=get_int(item, "failure_count"),
        paused=_is_paused(item),
        failure_reason=get_s(item, "failure_reason"),
        sync_requested_at=(
            None if sync_requested_at is None else datetime.fromtimestamp(sync_requested_at, UTC)
        ),
        version=get_int(item, "version"),
        created_at=datetime.fromisoformat(created_at) if created_at else None,
        updated_at=datetime.fromisoformat(updated_at) if updated_at else None,
    )
