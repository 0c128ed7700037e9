"""The applier: the one part of the sync engine that writes to Pleo.

It carries out a `Plan` kind by kind, in `Kind` order (a tag needs its group, an account may name
a tax code), with a few requests in flight at once; the client's rate budget paces them.

- Bulk where Pleo has it: tags are archived and unarchived 100 per call, accounts created 1,000
  per batch. Everything else is one call per record.
- Where a PUT replaces fields this app does not manage (a tag group's or an account's metadata,
  a tax code's tax accounts), it is built on the record as Pleo has it now, read back with list
  and search pages (100 records a read, never a GET per record); a record already as wanted is
  then not written again. A tag's or a vendor's PUT carries all its fields and reads nothing.
  An UPDATE leaves the record active (as the planner promises), unless the plan archives the
  record too: then the one write archives it.
- A create that meets a 409, or whose outcome is unknown, is never sent again: the record is
  looked up by its key, recorded as owned (adopted) and updated if it differs. Not found after
  an unknown outcome, it is reported as failed for this run; the next run's plan creates it.
- Ownership is durable as soon as the writes succeed: recorded in batches of 25 as records are
  created or adopted, after each account batch, and whatever is left when the run stops.
- A record Pleo refuses (a 400, a 404, a clash on update) is reported in `failed`; the run goes
  on. A transient failure that outlived the client's retries, or the deadline, stops the run
  with `complete=False`: what is done stays done and owned, and re-planning skips it. A dead
  credential (401) and a failing store are raised, once what is done is recorded.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pleo_connector.pleo.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ConflictError,
    DeadlineExceededError,
    MalformedResponseError,
    OutcomeUnknownError,
    PleoError,
)
from pleo_connector.pleo.models import Account, Tag, TagGroup, TaxCode, Vendor, VendorState
from pleo_connector.pleo.resources.accounts import BATCH_LIMIT, AccountInput
from pleo_connector.pleo.resources.tags import ARCHIVE_BATCH
from pleo_connector.pleo.resources.vendors import SEARCH_LIST_LIMIT
from pleo_connector.pleo.retry import RETRYABLE_STATUSES, Deadline
from pleo_connector.sync.model import Action, Change, Entry, Kind, Plan, RecordProblem, match_key
from pleo_connector.sync.pleo_state import (
    PAGE_SIZE,
    account_entry,
    tag_entry,
    tag_group_entry,
    tax_code_entry,
    vendor_entry,
)

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Iterable,
        Iterator,
        Mapping,
        Sequence,
    )

    from pleo_connector.pleo.client import PleoClient
    from pleo_connector.sync.ports import OwnershipStore

# Requests in flight at once. The budget decides the rate; this only has to keep enough requests
# waiting on Pleo's latency for the budget to be used (rate x latency: 80 a second at 200 ms).
DEFAULT_CONCURRENCY = 16
OWNERSHIP_BATCH = 25
# Ids per search when reading records back by id (a vendor search takes at most 100).
IDS_PER_SEARCH = min(PAGE_SIZE, SEARCH_LIST_LIMIT)
# Up to this many accounts are looked up one search each; more, and all accounts are read once.
ACCOUNT_LOOKUPS = 10

_NOUNS = {
    Kind.TAG_GROUP: "tag group",
    Kind.TAG: "tag",
    Kind.TAX_CODE: "tax code",
    Kind.VENDOR: "vendor",
    Kind.ACCOUNT: "account",
}


@dataclass
class ApplyResult:
    """What one application of a plan did.

    `complete` is False when the run stopped early, at the deadline or on a transient failure
    (`stopped_by` holds that failure; None at the deadline): the caller continues later and the
    next plan skips what was done. `requests` counts every attempt sent to Pleo, retries
    included, and `rate_limited` the 429s among them.
    """

    applied: dict[tuple[Kind, Action], int] = field(default_factory=dict)
    failed: list[RecordProblem] = field(default_factory=list)
    complete: bool = True
    requests: int = 0
    rate_limited: int = 0
    stopped_by: PleoError | None = None


async def apply_plan(
    plan: Plan,
    pleo: PleoClient,
    company_id: str,
    ownership: OwnershipStore,
    installation_id: str,
    *,
    deadline: Deadline | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> ApplyResult:
    """Carry out `plan` against the company in Pleo, recording what becomes owned."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    run = _Run(plan, pleo, company_id, _OwnershipLog(ownership, installation_id), deadline)
    return await run.execute(concurrency)


# --- the run ---------------------------------------------------------------------------------


class _Stopped(Exception):
    """The run stopped (deadline, transient failure): start nothing new."""


class _Severity(Enum):
    RECORD = "record"  # this record only: report it, go on
    HALT = "halt"  # transient or out of time: stop, complete=False
    FATAL = "fatal"  # stop, record what is done, raise


def _severity(error: BaseException) -> _Severity:
    if isinstance(error, AuthenticationError):
        return _Severity.FATAL
    if isinstance(error, DeadlineExceededError | APIConnectionError | OutcomeUnknownError):
        return _Severity.HALT
    if isinstance(error, APIStatusError):
        transient = error.status_code in RETRYABLE_STATUSES or error.status_code >= 500
        return _Severity.HALT if transient else _Severity.RECORD
    if isinstance(error, PleoError):
        return _Severity.RECORD  # a malformed answer, a bad id: about this record
    return _Severity.FATAL


@dataclass
class _Job:
    """One unit of work: a record (or a bulk call), and how to name it if Pleo refuses it."""

    kind: Kind
    reference: str
    verb: str
    run: Callable[[], Awaitable[None]]


@dataclass
class _Target:
    """The record-level changes of one existing record, merged into one write."""

    kind: Kind
    pleo_id: str
    changes: list[Change] = field(default_factory=list)

    @property
    def values(self) -> Mapping[str, Any] | None:
        """The source's values, when the plan updates the record."""
        for change in self.changes:
            if change.action is Action.UPDATE:
                return change.values
        return None

    @property
    def archived(self) -> bool | None:
        """What the record's archived flag must become, or None to keep it as it is. An UPDATE
        leaves the record active (the planner updates only what the source has active)."""
        actions = {change.action for change in self.changes}
        if Action.ARCHIVE in actions:
            return True
        if actions & {Action.UNARCHIVE, Action.UPDATE}:
            return False
        return None

    @property
    def verb(self) -> str:
        return " and ".join(str(change.action) for change in self.changes)


class _OwnershipLog:
    """Owned records on their way to the store: written 25 at a time, off the event loop."""

    def __init__(self, store: OwnershipStore, installation_id: str) -> None:
        self._store = store
        self._installation_id = installation_id
        self._pending: list[tuple[Kind, str]] = []
        self._lock = asyncio.Lock()

    async def add(self, entries: Iterable[tuple[Kind, str]]) -> None:
        self._pending.extend(entries)
        if len(self._pending) >= OWNERSHIP_BATCH:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                await asyncio.to_thread(self._store.record, self._installation_id, batch)
            except BaseException:
                self._pending[:0] = batch  # kept for the final flush
                raise


class _Run:
    def __init__(
        self,
        plan: Plan,
        pleo: PleoClient,
        company_id: str,
        owned: _OwnershipLog,
        deadline: Deadline | None,
    ) -> None:
        self.plan = plan
        self.pleo = pleo
        self.company_id = company_id
        self.owned = owned
        self.deadline = deadline
        self.applied: Counter[tuple[Kind, Action]] = Counter()
        self.failed: list[RecordProblem] = []
        self.halted = False
        self.stopped_by: PleoError | None = None
        self.fatal: BaseException | None = None
        self.concurrency = DEFAULT_CONCURRENCY
        # Tag groups by key, as created, adopted or listed in this run (tags are created in them).
        self.group_ids: dict[str, str] = {}
        self.groups_listed = False
        self.groups_lock = asyncio.Lock()
        self.group_tags: dict[str, dict[str, Tag]] = {}
        self.group_tags_locks: dict[str, asyncio.Lock] = {}

    async def execute(self, concurrency: int) -> ApplyResult:
        self.concurrency = concurrency
        counts = self.pleo.transport.counts
        sent, limited = counts.sent, counts.rate_limited
        restore = self.pleo.deadline
        if self.deadline is not None and (
            restore is None or self.deadline.remaining() < restore.remaining()
        ):
            self.pleo.deadline = self.deadline
        try:
            await self._adopt()
            by_kind: dict[Kind, list[Change]] = {kind: [] for kind in Kind}
            for change in self.plan.changes:
                if change.action is not Action.ADOPT:
                    by_kind[change.kind].append(change)
            for kind in Kind:
                if self.halted:
                    break
                if by_kind[kind]:
                    await self._apply_kind(kind, by_kind[kind])
                    await self.owned.flush()
        finally:
            self.pleo.deadline = restore
            try:
                await self.owned.flush()
            except BaseException as error:
                if self.fatal is None:
                    self.fatal = error
        if self.fatal is not None:
            raise self.fatal
        return ApplyResult(
            applied=dict(self.applied),
            failed=self.failed,
            complete=not self.halted,
            requests=counts.sent - sent,
            rate_limited=counts.rate_limited - limited,
            stopped_by=self.stopped_by,
        )

    # -- control --------------------------------------------------------------------------------

    def _check_go(self) -> None:
        """Before each request: nothing new starts once the run stopped or its time is up."""
        if not self.halted and self.deadline is not None and self.deadline.expired:
            self.halted = True
        if self.halted:
            raise _Stopped

    async def _call[T](self, request: Callable[[], Awaitable[T]]) -> T:
        self._check_go()
        return await request()

    async def _read_all[T](self, pages: Callable[[], AsyncIterator[T]]) -> list[T]:
        """Every item of a paginated read (the transport stops it at the deadline)."""
        self._check_go()
        return [item async for item in pages()]

    def _halt(self, error: PleoError | None) -> None:
        if (
            not self.halted
            and error is not None
            and not isinstance(error, DeadlineExceededError)
            and self.stopped_by is None
        ):
            self.stopped_by = error
        self.halted = True

    def _fail(self, kind: Kind, reference: str, message: str) -> None:
        self.failed.append(RecordProblem(kind=kind, reference=reference, message=message))

    async def _pool(self, jobs: Iterable[_Job]) -> None:
        """Run `jobs` with `concurrency` of them at once, until done or the run stops."""
        iterator = iter(jobs)

        async def worker() -> None:
            for job in iterator:
                if self.halted:
                    return
                await self._guarded(job)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _guarded(self, job: _Job) -> None:
        try:
            await job.run()
        except _Stopped:
            return
        except Exception as error:
            severity = _severity(error)
            if severity is _Severity.RECORD:
                self._fail(job.kind, job.reference, _refused(job.verb, error))
            elif severity is _Severity.HALT:
                self._halt(error if isinstance(error, PleoError) else None)
            else:
                if self.fatal is None:
                    self.fatal = error
                self.halted = True

    async def _own(self, kind: Kind, pleo_ids: Iterable[str]) -> None:
        await self.owned.add((kind, pleo_id) for pleo_id in pleo_ids)

    async def _adopt(self) -> None:
        """ADOPT writes nothing to Pleo: the records become owned, all at once."""
        adoptions = [c for c in self.plan.changes if c.action is Action.ADOPT and c.pleo_id]
        if not adoptions:
            return
        await self.owned.add((change.kind, str(change.pleo_id)) for change in adoptions)
        await self.owned.flush()
        for change in adoptions:
            self.applied[(change.kind, Action.ADOPT)] += 1
            if change.kind is Kind.TAG_GROUP:
                self.group_ids[change.key] = str(change.pleo_id)

    # -- one kind ---------------------------------------------------------------------------------

    async def _apply_kind(self, kind: Kind, changes: list[Change]) -> None:
        creates = [change for change in changes if change.action is Action.CREATE]
        targets: dict[str, _Target] = {}
        for change in changes:
            if change.action is Action.CREATE:
                continue
            if not change.pleo_id:
                self._fail(kind, _reference(change), "the plan names no record in Pleo for it")
                continue
            targets.setdefault(change.pleo_id, _Target(kind, change.pleo_id)).changes.append(change)
            if kind is Kind.TAG_GROUP:
                self.group_ids[change.key] = change.pleo_id
        handler = _HANDLERS[kind](self)
        await handler.apply(creates, list(targets.values()))

    def tally(self, target: _Target) -> None:
        for change in target.changes:
            self.applied[(change.kind, change.action)] += 1

    async def create_or_adopt[M](
        self,
        change: Change,
        create: Callable[[], Awaitable[M]],
        find: Callable[[], Awaitable[M | None]],
        adopt: Callable[[M], Awaitable[None]],
    ) -> M | None:
        """Create the record; after a 409 or an unknown outcome, find it by its key instead,
        own it and bring it to what the source says (`adopt`). Returns the record, or None."""
        try:
            record = await self._call(create)
        except (ConflictError, OutcomeUnknownError, MalformedResponseError) as error:
            found = await find()
            if found is None:
                message = (
                    f"Pleo already has a {_NOUNS[change.kind]} that clashes with it (same code "
                    "or external id), and it could not be found to take over"
                    if isinstance(error, ConflictError)
                    else "Pleo did not confirm that it was created, and it is not there yet; "
                    "the next sync creates it"
                )
                self._fail(change.kind, _reference(change), message)
                return None
            await adopt(found)
            return found
        await self._own(change.kind, [_pleo_id(record)])
        self.applied[(change.kind, Action.CREATE)] += 1
        return record

    # -- tag groups and their tags ----------------------------------------------------------------

    async def group_id(self, group_key: str) -> str | None:
        """The Pleo id of the group a tag goes in: created or named in this run, or listed once."""
        if group_key not in self.group_ids and not self.groups_listed:
            async with self.groups_lock:
                if not self.groups_listed:
                    await self.list_groups()
        return self.group_ids.get(group_key)

    async def list_groups(self) -> list[TagGroup]:
        groups = await self._call(
            lambda: self.pleo.tag_groups.list(self.company_id, include_archived=True)
        )
        for group in groups:
            if group.code:
                self.group_ids.setdefault(match_key(group.code), group.id)
        self.groups_listed = True
        return groups

    async def find_tag(self, group_id: str, group_key: str, key: str) -> Tag | None:
        """A tag of the group by key, from the group's listing (read again on a miss)."""
        lock = self.group_tags_locks.setdefault(group_id, asyncio.Lock())
        async with lock:
            known = self.group_tags.get(group_id, {})
            if key not in known:
                tags: list[Tag] = await self._read_all(
                    lambda: self.pleo.tags.list(
                        group_id, include_archived=True, page_size=PAGE_SIZE
                    )
                )
                known = {tag_entry(tag, group_key).key: tag for tag in tags}
                self.group_tags[group_id] = known
            return known.get(key)


# --- per kind --------------------------------------------------------------------------------


class _KindHandler[M]:
    """How one kind is created, looked up after a failed create, read back by id and written.

    A target is written either on the record as Pleo has it now (`needs_current`: read by id
    first, so that a whole-record PUT keeps what the app does not manage), or straight away
    (`direct_jobs`: the bulk calls, and PUTs that carry every field)."""

    kind: Kind

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.pleo = run.pleo
        self.company_id = run.company_id

    def entry(self, record: M) -> Entry:
        raise NotImplementedError

    async def read_by_ids(self, ids: Sequence[str]) -> list[M]:
        raise NotImplementedError

    async def put(
        self, pleo_id: str, values: Mapping[str, Any], archived: bool, current: M | None
    ) -> None:
        """Replace the record with `values` and `archived`, keeping what the app does not own
        (from `current`, where the kind has such fields)."""
        raise NotImplementedError

    def needs_current(self, target: _Target) -> bool:
        return True

    def direct_jobs(self, targets: list[_Target]) -> Iterator[_Job]:
        """Jobs for the targets that need no current record."""
        return iter(())

    def create_jobs(self, creates: list[Change]) -> Iterator[_Job]:
        raise NotImplementedError

    async def apply(self, creates: list[Change], targets: list[_Target]) -> None:
        run = self.run
        with_current = [target for target in targets if self.needs_current(target)]
        current: dict[str, M] = {}
        unread: dict[str, str] = {}
        ids = [target.pleo_id for target in with_current]

        def read_job(chunk: list[str]) -> _Job:
            async def read() -> None:
                try:
                    for record in await self.read_by_ids(chunk):
                        current[_pleo_id(record)] = record
                except Exception as error:
                    if _severity(error) is not _Severity.RECORD:
                        raise
                    unread.update(dict.fromkeys(chunk, _refused("read", error)))

            return _Job(self.kind, f"{len(chunk)} records", "read", read)

        await run._pool(
            read_job(ids[start : start + IDS_PER_SEARCH])
            for start in range(0, len(ids), IDS_PER_SEARCH)
        )
        if run.halted:
            return

        def target_job(target: _Target) -> _Job:
            async def write() -> None:
                record = current.get(target.pleo_id)
                if record is None:
                    message = unread.get(target.pleo_id, "it is no longer in Pleo")
                    run._fail(self.kind, job.reference, message)
                    return
                job.reference = _reference(target.changes[0], self.entry(record))
                await self.write_target(target, record)

            job = _Job(self.kind, _reference(target.changes[0]), target.verb, write)
            return job

        def jobs() -> Iterator[_Job]:
            yield from self.create_jobs(creates)
            yield from (target_job(target) for target in with_current)
            yield from self.direct_jobs([t for t in targets if not self.needs_current(t)])

        await run._pool(jobs())

    async def write_target(self, target: _Target, record: M) -> None:
        """Write what the target's changes ask for, unless the record already is so."""
        entry = self.entry(record)
        values = _merge(entry, target.values)
        archived = entry.archived if target.archived is None else target.archived
        if values != dict(entry.values) or archived != entry.archived:
            await self.run._call(lambda: self.put(_pleo_id(record), values, archived, record))
        self.run.tally(target)

    def put_job(self, target: _Target, values: Mapping[str, Any]) -> _Job:
        """A PUT of every field the app writes, with no current record needed."""

        async def put() -> None:
            archived = bool(target.archived)
            await self.run._call(lambda: self.put(target.pleo_id, values, archived, None))
            self.run.tally(target)

        return _Job(self.kind, _reference(target.changes[0]), target.verb, put)

    async def adopt(self, change: Change, record: M) -> None:
        """After a failed create found `record`: own it, and make it what the source says."""
        entry = self.entry(record)
        values = _merge(entry, change.values)
        await self.run._own(self.kind, [_pleo_id(record)])
        self.run.applied[(self.kind, Action.ADOPT)] += 1
        if values != dict(entry.values) or entry.archived:
            await self.run._call(lambda: self.put(_pleo_id(record), values, False, record))
            self.run.applied[(self.kind, Action.UPDATE)] += 1

    def single_create_jobs(
        self,
        creates: list[Change],
        create: Callable[[Change], Awaitable[M]],
        find: Callable[[Change], Awaitable[M | None]],
    ) -> Iterator[_Job]:
        for change in creates:

            async def work(change: Change = change) -> None:
                await self.run.create_or_adopt(
                    change,
                    lambda: create(change),
                    lambda: find(change),
                    lambda record: self.adopt(change, record),
                )

            yield _Job(self.kind, _reference(change), "create", work)

    def find_in(self, records: Iterable[M], key: str) -> M | None:
        return next((record for record in records if self.entry(record).key == key), None)


class _TagGroups(_KindHandler[TagGroup]):
    kind = Kind.TAG_GROUP

    def entry(self, record: TagGroup) -> Entry:
        return tag_group_entry(record)

    async def read_by_ids(self, ids: Sequence[str]) -> list[TagGroup]:
        wanted = set(ids)
        return [group for group in await self.run.list_groups() if group.id in wanted]

    async def put(
        self,
        pleo_id: str,
        values: Mapping[str, Any],
        archived: bool,
        current: TagGroup | None,
    ) -> None:
        await self.pleo.tag_groups.update(
            pleo_id,
            code=str(values["code"]),
            name=str(values["name"]),
            archived=archived,
            metadata=current.metadata if current is not None else None,
        )

    def create_jobs(self, creates: list[Change]) -> Iterator[_Job]:
        async def create(change: Change) -> TagGroup:
            group = await self.pleo.tag_groups.create(
                self.company_id, code=change.values["code"], name=change.values["name"]
            )
            self.run.group_ids[change.key] = group.id
            return group

        async def find(change: Change) -> TagGroup | None:
            group = self.find_in(await self.run.list_groups(), change.key)
            if group is not None:
                self.run.group_ids[change.key] = group.id
            return group

        return self.single_create_jobs(creates, create, find)


class _Tags(_KindHandler[Tag]):
    """Tags: archived and unarchived in bulk, updated with a PUT of their code and name; neither
    needs the tag read first."""

    kind = Kind.TAG

    def entry(self, record: Tag) -> Entry:
        return tag_entry(record, "")  # only the values and the flag are compared

    def needs_current(self, target: _Target) -> bool:
        return False

    async def put(
        self, pleo_id: str, values: Mapping[str, Any], archived: bool, current: Tag | None
    ) -> None:
        await self.pleo.tags.update(
            pleo_id, code=str(values["code"]), name=values["name"], archived=archived
        )

    def direct_jobs(self, targets: list[_Target]) -> Iterator[_Job]:
        for target in targets:
            if target.values is not None:
                yield self.put_job(target, target.values)
        for archived in (True, False):
            chosen = [t for t in targets if t.values is None and t.archived is archived]
            for start in range(0, len(chosen), ARCHIVE_BATCH):
                yield self._bulk_job(chosen[start : start + ARCHIVE_BATCH], archived)

    def _bulk_job(self, targets: list[_Target], archived: bool) -> _Job:
        async def bulk() -> None:
            ids = [target.pleo_id for target in targets]
            try:
                await self.run._call(
                    lambda: self.pleo.tags.archive(self.company_id, ids, archived=archived)
                )
            except Exception as error:
                if _severity(error) is not _Severity.RECORD or len(targets) == 1:
                    raise
                # One bad id refuses the whole call: find it, one tag at a time.
                for target in targets:
                    await self.run._guarded(self._bulk_job([target], archived))
                return
            for target in targets:
                self.run.tally(target)

        verb = "archive" if archived else "unarchive"
        reference = _reference(targets[0].changes[0]) if len(targets) == 1 else "tags"
        return _Job(self.kind, reference, verb, bulk)

    def create_jobs(self, creates: list[Change]) -> Iterator[_Job]:
        for change in creates:

            async def work(change: Change = change) -> None:
                group_key = change.parent or change.key.split("\x1f", 1)[0]
                group_id = change.parent_id or await self.run.group_id(group_key)
                if group_id is None:
                    self.run._fail(self.kind, _reference(change), "its tag group is not in Pleo")
                    return

                async def create() -> Tag:
                    return await self.pleo.tags.create(
                        group_id, code=change.values["code"], name=change.values.get("name")
                    )

                await self.run.create_or_adopt(
                    change,
                    create,
                    lambda: self.run.find_tag(group_id, group_key, change.key),
                    lambda record: self.adopt(change, record),
                )

            yield _Job(self.kind, _reference(change), "create", work)


class _TaxCodes(_KindHandler[TaxCode]):
    kind = Kind.TAX_CODE

    def entry(self, record: TaxCode) -> Entry:
        return tax_code_entry(record)

    async def read_by_ids(self, ids: Sequence[str]) -> list[TaxCode]:
        return await self.run._read_all(
            lambda: self.pleo.tax_codes.search(
                self.company_id, tax_code_ids=ids, page_size=PAGE_SIZE
            )
        )

    async def put(
        self,
        pleo_id: str,
        values: Mapping[str, Any],
        archived: bool,
        current: TaxCode | None,
    ) -> None:
        await self.pleo.tax_codes.update(
            pleo_id,
            company_id=self.company_id,
            name=str(values["name"]),
            rate=_rate(values["rate"]),
            type=str(values["type"]),
            archived=archived,
            code=values["code"],
            ingoing_tax_account=current.ingoing_tax_account if current is not None else None,
            outgoing_tax_account=current.outgoing_tax_account if current is not None else None,
        )

    def create_jobs(self, creates: list[Change]) -> Iterator[_Job]:
        async def create(change: Change) -> TaxCode:
            values = change.values
            return await self.pleo.tax_codes.create(
                self.company_id,
                name=values["name"],
                rate=_rate(values["rate"]),
                type=str(values["type"]),
                code=values["code"],
            )

        async def find(change: Change) -> TaxCode | None:
            tax_codes: list[TaxCode] = await self.run._read_all(
                lambda: self.pleo.tax_codes.search(self.company_id, page_size=PAGE_SIZE)
            )
            return self.find_in(tax_codes, change.key)

        return self.single_create_jobs(creates, create, find)


class _Vendors(_KindHandler[Vendor]):
    """Vendors: a PUT (with the state) carries every field, archive is `:archive`; only an
    unarchive alone reads the vendor first, for `:activate` to link it to its external id."""

    kind = Kind.VENDOR

    def entry(self, record: Vendor) -> Entry:
        return vendor_entry(record)

    def needs_current(self, target: _Target) -> bool:
        return target.values is None and target.archived is False

    async def read_by_ids(self, ids: Sequence[str]) -> list[Vendor]:
        return await self.run._read_all(
            lambda: self.pleo.vendors.search(self.company_id, ids=ids, page_size=PAGE_SIZE)
        )

    async def put(
        self, pleo_id: str, values: Mapping[str, Any], archived: bool, current: Vendor | None
    ) -> None:
        await self.pleo.vendors.update(
            pleo_id,
            company_id=self.company_id,
            name=str(values["name"]),
            default_currency=str(values["defaultCurrency"]),
            external_id=str(values["externalId"]),
            state=VendorState.ARCHIVED if archived else VendorState.ACTIVE,
            code=values["code"],
            country=values["country"],
            registration_number=values["registrationNumber"],
            tax_registration_number=values["taxRegistrationNumber"],
        )

    async def write_target(self, target: _Target, record: Vendor) -> None:
        """Unarchive alone: Pleo's own operation (a DRAFT vendor is activated the same way)."""
        if record.state != VendorState.ACTIVE and record.external_id:
            external_id = record.external_id
            await self.run._call(
                lambda: self.pleo.vendors.activate(
                    record.id, external_id=external_id, code=record.code
                )
            )
        self.run.tally(target)

    def direct_jobs(self, targets: list[_Target]) -> Iterator[_Job]:
        for target in targets:
            if target.values is not None:
                yield self.put_job(target, target.values)
            else:  # archive alone
                yield self._archive_job(target)

    def _archive_job(self, target: _Target) -> _Job:
        async def archive() -> None:
            await self.run._call(lambda: self.pleo.vendors.archive(target.pleo_id))
            self.run.tally(target)

        return _Job(self.kind, _reference(target.changes[0]), "archive", archive)

    def create_jobs(self, creates: list[Change]) -> Iterator[_Job]:
        async def create(change: Change) -> Vendor:
            values = change.values
            return await self.pleo.vendors.create(
                self.company_id,
                name=values["name"],
                default_currency=values["defaultCurrency"],
                code=values.get("code"),
                external_id=values["externalId"],
                country=values.get("country"),
                registration_number=values.get("registrationNumber"),
                tax_registration_number=values.get("taxRegistrationNumber"),
            )

        async def find(change: Change) -> Vendor | None:
            vendors: list[Vendor] = await self.run._read_all(
                lambda: self.pleo.vendors.search(
                    self.company_id, external_ids=[change.values["externalId"]]
                )
            )
            return self.find_in(vendors, change.key)

        return self.single_create_jobs(creates, create, find)


class _Accounts(_KindHandler[Account]):
    """Accounts: created 1,000 per batch call; Pleo reports the items it refused one by one."""

    kind = Kind.ACCOUNT

    def entry(self, record: Account) -> Entry:
        return account_entry(record)

    async def read_by_ids(self, ids: Sequence[str]) -> list[Account]:
        return await self.run._read_all(
            lambda: self.pleo.accounts.search(self.company_id, ids=ids, page_size=PAGE_SIZE)
        )

    async def put(
        self,
        pleo_id: str,
        values: Mapping[str, Any],
        archived: bool,
        current: Account | None,
    ) -> None:
        await self.pleo.accounts.update(
            pleo_id,
            name=str(values["name"]),
            archived=archived,
            code=values["code"],
            tax_code_external_id=values["taxCodeExternalId"],
            metadata=current.metadata if current is not None else None,
        )

    def create_jobs(self, creates: list[Change]) -> Iterator[_Job]:
        for start in range(0, len(creates), BATCH_LIMIT):
            chunk = creates[start : start + BATCH_LIMIT]

            async def batch(chunk: list[Change] = chunk) -> None:
                await self._create_batch(chunk)
                await self.run.owned.flush()  # this batch is owned before the next is sent

            reference = _reference(chunk[0]) if len(chunk) == 1 else f"{len(chunk)} accounts"
            yield _Job(self.kind, reference, "create", batch)

    async def _create_batch(self, chunk: list[Change]) -> None:
        run = self.run
        by_key: dict[str, Change] = {}
        inputs: list[AccountInput] = []
        for change in chunk:
            try:
                inputs.append(_account_input(change))
            except ValidationError as error:  # what the client's model refuses, Pleo would too
                fields = ", ".join(f"{e['loc'][0]} {e['msg'].lower()}" for e in error.errors())
                run._fail(self.kind, _reference(change), f"Pleo would refuse it: {fields}")
                continue
            by_key[change.key] = change
        if not inputs:
            return
        chunk = list(by_key.values())
        try:
            result = await run._call(lambda: self.pleo.accounts.batch(self.company_id, inputs))
        except (ConflictError, OutcomeUnknownError, MalformedResponseError):
            await self._adopt_all(list(by_key.values()), unknown=True)
            return
        except Exception as error:
            if _severity(error) is not _Severity.RECORD:
                raise
            # The batch as a whole was refused: each account alone, to name the bad ones.
            for change in chunk:
                await run._guarded(self._single_job(change))
            return
        # Every account the batch created is this installation's, whatever else happens.
        await run._own(self.kind, [account.id for account in result.created])
        for account in result.created:
            if by_key.pop(match_key(account.external_id or ""), None) is not None:
                run.applied[(self.kind, Action.CREATE)] += 1
        clashes: list[Change] = []
        for failure in result.failed:
            refused = by_key.pop(match_key(str(failure.request.get("externalId") or "")), None)
            if refused is None:
                continue
            if "EXTERNAL_ID_ALREADY_EXISTS" in failure.reasons:
                clashes.append(refused)
            else:
                reasons = ", ".join(failure.reasons) or "no reason given"
                run._fail(self.kind, _reference(refused), f"Pleo refused to create it: {reasons}")
        # Anything Pleo reported neither way is looked for too.
        await self._adopt_all(clashes, unknown=False)
        await self._adopt_all(list(by_key.values()), unknown=True)

    async def _adopt_all(self, changes: list[Change], *, unknown: bool) -> None:
        if not changes:
            return
        found = await self._find_many([change.values["externalId"] for change in changes])
        for change in changes:
            record = found.get(change.key)
            if record is None:
                message = (
                    "Pleo did not confirm that it was created, and it is not there yet; "
                    "the next sync creates it"
                    if unknown
                    else "Pleo already has an account with this external id, and it could not "
                    "be found to take over"
                )
                self.run._fail(self.kind, _reference(change), message)
                continue
            await self.run._guarded(
                _Job(self.kind, _reference(change), "update", self._adopt_job(change, record))
            )

    def _adopt_job(self, change: Change, record: Account) -> Callable[[], Awaitable[None]]:
        return lambda: self.adopt(change, record)

    def _single_job(self, change: Change) -> _Job:
        async def create() -> Account:
            return await self.pleo.accounts.create(self.company_id, _account_input(change))

        async def find() -> Account | None:
            return (await self._find_many([change.values["externalId"]])).get(change.key)

        async def work() -> None:
            await self.run.create_or_adopt(
                change, create, find, lambda record: self.adopt(change, record)
            )

        return _Job(self.kind, _reference(change), "create", work)

    async def _find_many(self, external_ids: list[str]) -> dict[str, Account]:
        """Accounts by key: one search each for a few, one read of them all for more."""
        accounts: list[Account] = []
        if len(external_ids) <= ACCOUNT_LOOKUPS:
            for external_id in external_ids:

                def search(external_id: str = external_id) -> AsyncIterator[Account]:
                    return self.pleo.accounts.search(self.company_id, external_id=external_id)

                accounts += await self.run._read_all(search)
        else:
            accounts = await self.run._read_all(
                lambda: self.pleo.accounts.search(self.company_id, page_size=PAGE_SIZE)
            )
        found: dict[str, Account] = {}
        for account in accounts:
            found.setdefault(self.entry(account).key, account)
        return found


_HANDLERS: dict[Kind, Callable[[_Run], _KindHandler[Any]]] = {
    Kind.TAG_GROUP: _TagGroups,
    Kind.TAG: _Tags,
    Kind.TAX_CODE: _TaxCodes,
    Kind.VENDOR: _Vendors,
    Kind.ACCOUNT: _Accounts,
}


# --- small pieces ----------------------------------------------------------------------------


def _merge(current: Entry, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The record's values as they must become: the source's where the plan gives them."""
    merged = dict(current.values)
    if values:
        merged.update((name, value) for name, value in values.items() if name in merged)
    return merged


def _pleo_id(record: Any) -> str:
    return str(record.id)


def _rate(value: Any) -> float:
    """A rate from the plan's text ("0.25") as the number Pleo's body takes."""
    return float(Decimal(str(value)))


def _account_input(change: Change) -> AccountInput:
    values = change.values
    return AccountInput(
        external_id=values["externalId"],
        name=values["name"],
        code=values.get("code"),
        tax_code_external_id=values.get("taxCodeExternalId"),
    )


def _reference(change: Change, entry: Entry | None = None) -> str:
    """The record as the customer knows it: its external id or code, as the source (or else
    Pleo) has it."""
    for values in (change.values, entry.values if entry is not None else {}):
        for name in ("externalId", "code"):
            value = values.get(name)
            if value:
                return str(value)
    return change.key.rpartition("\x1f")[2] or str(change.pleo_id or "")


def _refused(verb: str, error: BaseException) -> str:
    """A per-record failure in words: what was refused, and Pleo's answer (its messages carry
    the operation, status and request id, never a credential)."""
    return f"Pleo refused to {verb} it: {error}"
