"""One sync run of one installation, under its lease, in the order that keeps Pleo's status true.

1. Take the lease. When another run holds it, stop at once, having read nothing: that run does
   the work (whichever run holds the lease plans from scratch).
2. Read the installation in Pleo: a dead credential or a removed installation shows here.
3. Open the accounting system's reader, read Pleo's side, and plan, with reads only. A source
   that cannot be read or validated (`SourceError`) ends the run here: nothing is written to
   Pleo, and the failure policy counts it (after too many in a row: INACTIVE).
4. Only when the plan writes: PENDING_INTEGRATION in Pleo, then apply.
5. ACTIVATED again: `me:activate` after the first sync (and after a first sync that was cut
   off), otherwise the status put back with the metadata kept. A run cut off while Pleo showed
   PENDING_INTEGRATION left it so; the next run, holding the lease, finds it and puts it back
   after applying.

At the deadline the applier stops at a checkpoint. The run then records itself, releases the lease
and queues a continuation, which plans again and so skips what is done (each write's ownership is
recorded as soon as it succeeds). When the applier stopped on a failure of Pleo that outlived the
client's retries, the run raises it instead, so the message is retried. Every run that held the
lease is recorded.

A "sync now" stays marked on the installation until a run that saw the mark ends; a press made
while a run held the lease (its own message stops at the lease) gets one more run, queued by the
run that held it once the lease is free.

Unchanged sources (off unless `full_reconcile_s` is set). A run that ended complete and clean (no
record refused, no notice from the reader) leaves on the lease what it reconciled: a digest of the
settings and the source's revision. A scheduled run of an active, healthy installation that finds
that mark from the run just before it, younger than `full_reconcile_s`, asks the source "changed
since?" (a file's status, a conditional request), and when it has not, and the settings are the
same, ends there as UNCHANGED: no Pleo request, no token, and no lease either, since it writes
nothing but its record (one write, where the lease costs two). It goes by the mark only while no
run holds the lease and none took it since the mark was left; otherwise it goes on to the lease
as any run does. The mark keeps its first date, so a full reconcile (which also repairs what
someone changed in Pleo by hand) still happens at least once per interval. "Sync now",
continuations, first syncs and keep-alives always reconcile in full.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, Protocol

from pleo_connector import metrics
from pleo_connector.adapters.base import (
    SourceError,
    reader_notices,
    reader_revision,
    source_unchanged,
)
from pleo_connector.config import DEFAULT_MAX_SOURCE_FAILURES
from pleo_connector.crypto import CredentialDecryptError
from pleo_connector.errors import ConnectorError
from pleo_connector.failure_policy import (
    FailureAction,
    FailureContext,
    deactivate_after_source_failures,
    handle_failure,
    source_failure_reason,
)
from pleo_connector.installation_config import SyncChoices, open_connection
from pleo_connector.observability import logger
from pleo_connector.pleo.errors import NotFoundError
from pleo_connector.pleo.retry import Deadline
from pleo_connector.store.sync_runs import MAX_PROBLEMS, Reconciled, RunProblem, SyncRun
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import (
    Action,
    InstallationErrorCode,
    InstallationStatus,
    Kind,
    SyncOutcome,
    SyncReason,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Iterable

    from pydantic import BaseModel

    from pleo_connector.adapters.base import AdapterDescriptor, SourceReader
    from pleo_connector.adapters.records import SourceNotice
    from pleo_connector.adapters.sources import Revision
    from pleo_connector.installation_config import Cipher
    from pleo_connector.pleo.client import PleoClient
    from pleo_connector.ports import (
        CredentialVault,
        InstallationStore,
        PleoApi,
        PleoClientFactory,
        PreviewStore,
        SyncQueuePort,
        SyncRunStore,
    )
    from pleo_connector.store.installations import InstallationRecord
    from pleo_connector.store.sync_runs import Lease
    from pleo_connector.sync.applier import ApplyResult
    from pleo_connector.sync.model import Entry, Plan, RecordProblem
    from pleo_connector.sync.ports import OwnershipStore

# Without a deadline (local runs, tests) a run is given what the longest Lambda gets.
DEFAULT_RUN_S = 900.0
# The lease outlives the invocation by this much, so it never expires under a live run; a crashed
# run blocks the next one for at most this long past its Lambda's end.
LEASE_GRACE_S = 30.0
# Less time than this left in the invocation: the request is queued again instead of started.
MIN_START_S = 5.0
DEFAULT_DEADLINE_MARGIN_S = 20.0

_OUTCOME_OF_ACTION = {
    FailureAction.MARK_AUTH_FAILURE: SyncOutcome.AUTH_FAILED,
    FailureAction.CLEAN_UP: SyncOutcome.REMOVED,
}
_PLEO_STOPPED = frozenset({InstallationStatus.INACTIVE, InstallationStatus.ERROR})
# The run record's word for a run that had nothing to read, so that an operator does not take it
# for a sync of the accounting system.
NOT_CONFIGURED_MESSAGE = "No accounting system is configured yet: nothing was read or written."


class SyncSteps(Protocol):
    """The three parts a run orders: Pleo's side, the plan, the writes."""

    async def read_pleo(
        self, pleo: PleoApi, company_id: str, choices: SyncChoices
    ) -> list[Entry]: ...

    def plan(
        self,
        reader: SourceReader,
        pleo: Iterable[Entry],
        owned: Collection[tuple[Kind, str]],
        choices: SyncChoices,
    ) -> Plan: ...

    async def apply(
        self,
        plan: Plan,
        pleo: PleoApi,
        company_id: str,
        ownership: OwnershipStore,
        installation_id: str,
        *,
        deadline: Deadline | None,
    ) -> ApplyResult: ...


class PleoSyncSteps:
    """The real parts (`sync.pleo_state`, `sync.planner`, `sync.applier`), imported on first use so
    that building the worker stays cheap."""

    async def read_pleo(self, pleo: PleoApi, company_id: str, choices: SyncChoices) -> list[Entry]:
        from pleo_connector.sync.pleo_state import read_pleo_entries

        return await read_pleo_entries(_client(pleo), company_id, choices)

    def plan(
        self,
        reader: SourceReader,
        pleo: Iterable[Entry],
        owned: Collection[tuple[Kind, str]],
        choices: SyncChoices,
    ) -> Plan:
        from pleo_connector.sync.planner import plan_sync

        return plan_sync(reader, pleo, owned, choices)

    async def apply(
        self,
        plan: Plan,
        pleo: PleoApi,
        company_id: str,
        ownership: OwnershipStore,
        installation_id: str,
        *,
        deadline: Deadline | None,
    ) -> ApplyResult:
        from pleo_connector.sync.applier import apply_plan

        return await apply_plan(
            plan, _client(pleo), company_id, ownership, installation_id, deadline=deadline
        )


def _client(pleo: PleoApi) -> PleoClient:
    """The reads and writes need the whole client, which the real factory makes."""
    from pleo_connector.pleo.client import PleoClient

    if not isinstance(pleo, PleoClient):
        raise TypeError("the sync steps need a PleoClient")
    return pleo


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDeps:
    """What one sync needs."""

    installations: InstallationStore
    pleo: PleoClientFactory
    tokens: CredentialVault
    adapter: AdapterDescriptor
    runs: SyncRunStore
    ownership: OwnershipStore
    cipher: Cipher
    sync_queue: SyncQueuePort
    previews: PreviewStore
    steps: SyncSteps = field(default_factory=PleoSyncSteps)
    max_source_failures: int = DEFAULT_MAX_SOURCE_FAILURES
    deadline_margin_s: float = DEFAULT_DEADLINE_MARGIN_S
    # How long the lease outlives the run's deadline and margin: a crashed run blocks the next
    # one for this long past its invocation's end.
    lease_grace_s: float = LEASE_GRACE_S
    # Scheduled runs may skip an unchanged source for this long after a full reconcile; 0: never.
    full_reconcile_s: float = 0.0
    clock: Callable[[], datetime] = _utc_now


class ConnectionSettingsError(SourceError):
    """The saved connection settings cannot be used (they no longer fit the adapter's form, or
    their secret does not decrypt here): the customer enters them again."""


class PleoRecordMissingError(ConnectorError):
    """A record Pleo listed was gone when the run reached it. Not the installation (the failure
    policy takes a 404 as the app's removal), so the run fails, is retried, and plans again."""

    http_status: ClassVar[int] = 503


class _LeaseLostError(Exception):
    """Another run took the lease over: this one stops without writing."""


def connection_settings(
    deps: SyncDeps, installation_id: str, stored: object | None
) -> BaseModel | None:
    """The sealed connection settings `stored` opened for the adapter; None when nothing is
    stored. Settings that no longer open or fit are a source failure the customer can fix."""
    if stored is None:
        return None
    try:
        settings = open_connection(
            deps.cipher, installation_id, stored, deps.adapter.settings_model
        )
    except CredentialDecryptError:
        raise ConnectionSettingsError(
            "The saved connection settings of the accounting system can no longer be read. "
            "Enter them again below and save."
        ) from None
    if settings is None:
        raise ConnectionSettingsError(
            "The saved connection settings no longer fit this accounting system. "
            "Enter them again below and save."
        )
    return settings


def settings_digest(adapter: str, record: InstallationRecord) -> str:
    """What a run's result depends on besides the source: the adapter, the (sealed) connection
    settings and the sync choices. A save changes it, so the next run reconciles in full."""
    document = json.dumps(
        [adapter, record.config, record.sync_choices],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(document.encode()).hexdigest()


def lambda_deadline(
    remaining_ms: int, margin_s: float, clock: Callable[[], float] = time.monotonic
) -> Deadline:
    """The point a run stops at: Lambda's own end less `margin_s`."""
    return Deadline.after(max(remaining_ms / 1000 - margin_s, 0.0), clock)


async def sync_installation(
    deps: SyncDeps,
    record: InstallationRecord,
    request: SyncRequest,
    *,
    deadline: Deadline | None = None,
) -> SyncOutcome:
    """One run of a schedulable installation; returns what happened. A transient failure raises
    (after the run is recorded and the lease released), so the message comes back."""
    if deadline is not None and deadline.remaining() < MIN_START_S:
        deps.sync_queue.send(request)
        logger.info("too little time left in this invocation; the request is queued again")
        return SyncOutcome.DEFERRED
    unchanged, connection = _skipped_as_unchanged(deps, record, request)
    if unchanged:
        return SyncOutcome.UNCHANGED
    run_s = deadline.remaining() if deadline is not None else DEFAULT_RUN_S
    lease = deps.runs.acquire(
        record.installation_id, run_s + deps.deadline_margin_s + deps.lease_grace_s
    )
    if lease is None:
        logger.info("another run of this installation holds the lease; this one stops")
        return SyncOutcome.BUSY
    return await _Run(deps, record, request, deadline, lease, connection=connection).execute()


def _skipped_as_unchanged(
    deps: SyncDeps, record: InstallationRecord, request: SyncRequest
) -> tuple[bool, BaseModel | None]:
    """Whether this scheduled run ended here, as UNCHANGED and recorded (see the module's text),
    and the connection settings it opened to ask, for the full run to reuse. It takes no lease:
    it writes nothing but its record, and the mark it goes by is the one the last run left while
    no run holds the lease (a run that holds it, or took it since, makes this one go on to the
    lease and read in full)."""
    if (
        deps.full_reconcile_s <= 0
        or request.reason is not SyncReason.SCHEDULED
        or record.status is not InstallationStatus.ACTIVATED
        or record.failure_count
        or record.local_error is not None
        or record.sync_requested_at is not None
    ):
        return False, None
    started_at = deps.clock()
    mark = deps.runs.free_mark(record.installation_id)
    if (
        mark is None
        or started_at.timestamp() - mark.at >= deps.full_reconcile_s
        or mark.settings_digest != settings_digest(deps.adapter.name, record)
    ):
        return False, None
    from pleo_connector.adapters.sources import Revision

    settings = None
    try:
        settings = connection_settings(
            deps, record.installation_id, record.config.get("connection")
        )
        known = Revision(etag=mark.source_etag, modified=mark.source_modified)
        if settings is None or not source_unchanged(deps.adapter, settings, known):
            return False, settings
    except SourceError:
        return False, settings  # the full run meets it too, and counts it
    run = SyncRun(
        installation_id=record.installation_id,
        started_at=started_at,
        finished_at=deps.clock(),
        reason=request.reason,
        outcome=SyncOutcome.UNCHANGED,
    )
    metrics.run_counted(run)
    deps.runs.record(run)
    logger.info("sync run done", extra={"outcome": str(SyncOutcome.UNCHANGED)})
    return True, settings


def outcome_after_failure(deps: SyncDeps, installation_id: str, error: Exception) -> SyncOutcome:
    """The failure policy's verdict as this run's outcome; what it does not settle (a transient
    failure, a bug) is raised again, so the message is retried."""
    action = handle_failure(
        error,
        FailureContext.SYNC,
        deps.installations,
        installation_id,
        max_source_failures=deps.max_source_failures,
    )
    outcome = _OUTCOME_OF_ACTION.get(action) if action is not None else None
    if outcome is None:
        raise error
    return outcome


class _Run:
    """The state of one run that holds the lease: what it did, for its record."""

    def __init__(
        self,
        deps: SyncDeps,
        record: InstallationRecord,
        request: SyncRequest,
        deadline: Deadline | None,
        lease: Lease,
        *,
        connection: BaseModel | None = None,
    ) -> None:
        self.deps = deps
        self._opened = connection  # the connection settings, when opened before the run
        self.started = record  # as read before the run: the status the run started from
        self.record = record  # as last written by the run
        self.request = request
        self.deadline = deadline
        self.lease = lease
        self.applied: Counter[tuple[Kind, Action]] = Counter()
        self.problems: list[RecordProblem] = []
        # What the reader said of the records it streamed (names cleaned, records skipped).
        self.notices: list[SourceNotice] = []
        # The revision of the source the plan was made from (None when it names none).
        self.revision: Revision | None = None
        self.requests = 0
        self.rate_limited = 0
        self.message: str | None = None

    @property
    def installation_id(self) -> str:
        return self.record.installation_id

    async def execute(self) -> SyncOutcome:
        started_at = self.deps.clock()
        try:
            outcome, continuation = await self._sync()
        except _LeaseLostError:
            logger.warning("the lease was taken over; this run stopped without writing")
            return SyncOutcome.BUSY
        except BaseException as error:
            self.message = self.message or type(error).__name__
            self._close(started_at, SyncOutcome.FAILED, quiet=True)
            raise
        if outcome is not SyncOutcome.REMOVED:  # the installation's items are gone with it
            self._close(started_at, outcome)
        if continuation is not None:
            # Only once the lease is free, or the continuation could find it held and stop.
            self.deps.sync_queue.send(continuation)
        elif outcome is not SyncOutcome.REMOVED:
            self._answer_sync_now()
        return outcome

    def _answer_sync_now(self) -> None:
        """The sync is done: clear the "sync now" this run served, or queue one more run for a
        press made while it ran (that press's own message stopped at the lease)."""
        seen = self.started.sync_requested_at
        latest = self.deps.installations.get(self.installation_id)
        if latest is None or latest.sync_requested_at is None:
            return
        if latest.sync_requested_at == seen and self.deps.installations.clear_sync_request(
            self.installation_id, requested_at=seen
        ):
            return
        logger.info("sync now was pressed during the run; one more run is queued")
        self.deps.sync_queue.send(
            SyncRequest(installation_id=self.installation_id, reason=SyncReason.SYNC_NOW)
        )

    async def _sync(self) -> tuple[SyncOutcome, SyncRequest | None]:
        try:
            async with self.deps.pleo.for_installation(
                self.installation_id, self.record.auth_method
            ) as pleo:
                counts = pleo.request_counts
                sent, limited = counts.sent, counts.rate_limited
                try:
                    return await self._reconcile(pleo)
                finally:
                    # The run's requests: the installation's, the plan's reads, the writes, and
                    # every retry of them (Pleo's rate limit counts each), and the 429s among them.
                    self.requests = counts.sent - sent
                    self.rate_limited = counts.rate_limited - limited
        except _LeaseLostError:
            raise
        except Exception as error:
            return outcome_after_failure(self.deps, self.installation_id, error), None

    def _reconciled(self, started_at: datetime, outcome: SyncOutcome) -> Reconciled | None:
        """The mark this run leaves for the next: what it reconciled, when it ended complete and
        clean; otherwise none."""
        clean = not self.problems and not self.notices
        if outcome not in (SyncOutcome.SYNCED, SyncOutcome.ACTIVATED) or not clean:
            return None
        if self.revision is None:
            return None
        return Reconciled(
            settings_digest=settings_digest(self.deps.adapter.name, self.started),
            source_etag=self.revision.etag,
            source_modified=self.revision.modified,
            at=started_at.timestamp(),
        )

    async def _reconcile(self, pleo: PleoApi) -> tuple[SyncOutcome, SyncRequest | None]:
        deps, request = self.deps, self.request
        current = await pleo.installations.get()
        if current.status in _PLEO_STOPPED and not request.activate_on_success:
            return self._mirror_stopped(current.known_status(), current.error_code), None
        choices = SyncChoices.model_validate(self.record.sync_choices or {})
        try:
            plan = await self._plan(pleo, choices)
        except SourceError as error:
            return await self._source_failed(pleo, error), None
        if plan is None:
            self.message = NOT_CONFIGURED_MESSAGE
        pending = current.status == InstallationStatus.PENDING_INTEGRATION
        if plan is not None and plan.changes:
            if plan.has_writes and not pending:
                if not deps.runs.holds(self.lease):
                    raise _LeaseLostError
                await pleo.installations.update(
                    InstallationStatus.PENDING_INTEGRATION, metadata=current.metadata
                )
                self.record = deps.installations.update_status(
                    self.installation_id, InstallationStatus.PENDING_INTEGRATION
                )
                pending = True
            result = await pleo_step(
                deps.steps.apply(
                    plan,
                    pleo,
                    self.record.company_id,
                    deps.ownership,
                    self.installation_id,
                    deadline=self.deadline,
                )
            )
            self._count(result)
            if result.stopped_by is not None:
                # Pleo kept failing past the client's retries: the message is retried later,
                # and what was done stays done (re-planning skips it).
                self.message = type(result.stopped_by).__name__
                raise result.stopped_by
            if not result.complete:
                logger.info("stopped at the deadline; a continuation carries on")
                return SyncOutcome.CONTINUED, request.model_copy(
                    update={"reason": SyncReason.CONTINUATION}
                )
        return await self._settle(pleo, current.known_status(), pending), None

    async def _plan(self, pleo: PleoApi, choices: SyncChoices) -> Plan | None:
        """The plan, with reads only; None when no accounting system is configured yet."""
        settings = self._connection
        if settings is None:
            return None
        deps = self.deps
        with deps.adapter.open_reader(settings) as reader:
            entries = await pleo_step(deps.steps.read_pleo(pleo, self.record.company_id, choices))
            owned = deps.ownership.owned(self.installation_id)
            plan = deps.steps.plan(reader, entries, owned, choices)
            self.notices = reader_notices(reader)
            self.revision = reader_revision(reader)
        self.problems.extend(plan.problems)
        return plan

    @cached_property
    def _connection(self) -> BaseModel | None:
        """Opened once a run: asking the source "changed since?" and reading it share one
        decrypt (settings that fail to open are not kept, and fail again where next asked)."""
        if self._opened is not None:
            return self._opened
        return connection_settings(
            self.deps, self.installation_id, self.record.config.get("connection")
        )

    async def _source_failed(self, pleo: PleoApi, error: SourceError) -> SyncOutcome:
        """Counted by the failure policy; nothing of this run reaches Pleo but, after too many
        failures in a row, the INACTIVE status."""
        self.message = source_failure_reason(error)
        logger.warning(
            "the accounting system could not be read", extra={"error_type": type(error).__name__}
        )
        action = handle_failure(
            error,
            FailureContext.SYNC,
            self.deps.installations,
            self.installation_id,
            max_source_failures=self.deps.max_source_failures,
        )
        if action is FailureAction.DEACTIVATE:
            await deactivate_after_source_failures(
                self.deps.installations, self.installation_id, pleo.installations
            )
            return SyncOutcome.DEACTIVATED
        return SyncOutcome.SOURCE_FAILED

    async def _settle(
        self, pleo: PleoApi, in_pleo: InstallationStatus, pending: bool
    ) -> SyncOutcome:
        """The run is complete: ACTIVATED in Pleo and here, and the failure count reset."""
        outcome = SyncOutcome.SYNCED
        status = in_pleo
        never_activated = self.started.status != InstallationStatus.ACTIVATED
        if never_activated and (self.request.activate_on_success or pending):
            status = (await pleo.installations.activate()).known_status()
            metrics.activated()
            outcome = SyncOutcome.ACTIVATED
            logger.info("installation activated after its first sync")
        elif pending:
            latest = await pleo.installations.get()  # metadata a save may have changed meanwhile
            updated = await pleo.installations.update(
                InstallationStatus.ACTIVATED, metadata=latest.metadata
            )
            status = updated.known_status()
        failing = self.record.local_error is not None or self.record.failure_count > 0
        if status != self.record.status or failing:
            self.record = self.deps.installations.update_status(
                self.installation_id,
                status,
                self.record.version,
                failure_count=0 if failing else None,
            )
        return outcome

    def _mirror_stopped(
        self, status: InstallationStatus, error_code: InstallationErrorCode | str | None
    ) -> SyncOutcome:
        """Pleo shows the installation stopped: say so here too, and sync nothing."""
        known = error_code if isinstance(error_code, InstallationErrorCode) else None
        if self.record.status not in _PLEO_STOPPED:
            metrics.installation_stopped()
        self.record = self.deps.installations.update_status(
            self.installation_id, status, error_code=known, local_error=self.record.local_error
        )
        logger.info("Pleo shows the installation stopped; nothing synced", extra={"status": status})
        return SyncOutcome.SKIPPED

    def _count(self, result: ApplyResult) -> None:
        self.applied.update(result.applied)
        self.problems.extend(result.failed)

    def _close(self, started_at: datetime, outcome: SyncOutcome, *, quiet: bool = False) -> None:
        """Record the run, then release the lease. `quiet`: the run is failing already, so a
        failure here is logged, never raised over the first one."""
        reconciled = None if quiet else self._reconciled(started_at, outcome)
        try:
            summary = self._summary(started_at, outcome)
            metrics.run_counted(summary)
            self.deps.runs.record(summary)
        except Exception as error:
            if not quiet:
                raise
            logger.warning(
                "the run could not be recorded", extra={"error_type": type(error).__name__}
            )
        finally:
            try:
                if not self.deps.runs.release(self.lease, reconciled):
                    logger.warning("the lease had been taken over before the run released it")
            except Exception as error:
                if not quiet:
                    raise
                logger.warning(
                    "the lease could not be released", extra={"error_type": type(error).__name__}
                )
        logger.info(
            "sync run done",
            extra={
                "outcome": str(outcome),
                "applied": sum(self.applied.values()),
                "failed": len(self.problems),
                "requests": self.requests,
                "rate_limited": self.rate_limited,
            },
        )

    def _summary(self, started_at: datetime, outcome: SyncOutcome) -> SyncRun:
        failed = Counter(problem.kind for problem in self.problems)
        failed.update(notice.kind for notice in self.notices if notice.skipped)
        shown: list[RecordProblem | SourceNotice] = [*self.problems, *self.notices]
        return SyncRun(
            installation_id=self.installation_id,
            started_at=started_at,
            finished_at=self.deps.clock(),
            reason=self.request.reason,
            outcome=outcome,
            applied=dict(self.applied),
            failed=dict(failed),
            problems=tuple(
                RunProblem(problem.kind, problem.reference, problem.message)
                for problem in shown[:MAX_PROBLEMS]
            ),
            problems_total=len(shown),
            requests=self.requests,
            rate_limited=self.rate_limited,
            message=self.message,
        )


async def pleo_step[T](step: Awaitable[T]) -> T:
    """A read or write of Pleo's records: a 404 there is about a record, not the installation."""
    try:
        return await step
    except NotFoundError as error:
        raise PleoRecordMissingError(f"a Pleo record was not found: {error}") from error
