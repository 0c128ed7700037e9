"""A dry run: what the next sync would change, planned the way a sync plans, with reads only.

The settings page asks for it (`connect.settings.request_preview`) and the worker runs it, because
only the worker has the accounting system's reader (the web functions never import it). It takes
no lease: nothing is written to Pleo, so it never stands in a real run's way, and what it plans is
what a run starting now would plan. The plan's counts, the first records of each kind and action,
and the records that would be refused are kept on the installation's dry-run item for the page.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from pleo_connector.adapters.base import SourceError, reader_notices
from pleo_connector.failure_policy import source_failure_reason
from pleo_connector.installation_config import SyncChoices
from pleo_connector.observability import logger
from pleo_connector.store.previews import (
    SAMPLES_PER_ACTION,
    PlannedRecord,
    PlanSummary,
    in_applied_order,
)
from pleo_connector.store.sync_runs import MAX_PROBLEMS, RunProblem
from pleo_connector.sync.engine import (
    ConnectionSettingsError,
    connection_settings,
    outcome_after_failure,
    pleo_step,
)
from pleo_connector.vocabulary import Action, Kind, SyncOutcome

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pydantic import BaseModel

    from pleo_connector.adapters.records import SourceNotice
    from pleo_connector.ports import PleoApi
    from pleo_connector.store.installations import InstallationRecord
    from pleo_connector.store.previews import Preview
    from pleo_connector.sync.engine import SyncDeps
    from pleo_connector.sync.model import Entry, Plan
    from pleo_connector.sync_queue import SyncRequest

NOTHING_TO_READ = "Enter the accounting system's settings first: there is nothing to read yet."
NOT_COMPLETED = "The dry run could not be completed: Pleo did not answer in time. Try again."
_FAILURE_MESSAGES = {
    SyncOutcome.AUTH_FAILED: "Pleo no longer accepts this connection. Please connect again.",
    SyncOutcome.REMOVED: "This connection was removed in Pleo.",
}


async def preview_installation(
    deps: SyncDeps, record: InstallationRecord, request: SyncRequest
) -> SyncOutcome:
    """Plan the installation's next sync and keep the plan; returns PREVIEWED, or SKIPPED when a
    newer dry run replaced this one. A failure is kept for the page, never retried: asking
    again is one click, and a retried dry run would only show an older question's answer."""
    if request.preview_id is None:
        logger.warning("a dry-run request without its id; skipped")
        return SyncOutcome.SKIPPED
    preview = deps.previews.start(record.installation_id, request.preview_id)
    if preview is None:
        logger.info("a newer dry run replaced this one, or it is done; skipped")
        return SyncOutcome.SKIPPED
    try:
        summary = await _plan_summary(deps, record, preview)
    except SourceError as error:
        _fail(deps, preview, source_failure_reason(error))
        return SyncOutcome.PREVIEWED
    except Exception as error:
        _fail(deps, preview, _message_for(deps, record.installation_id, error))
        return SyncOutcome.FAILED
    deps.previews.finish(record.installation_id, preview.preview_id, summary)
    logger.info("dry run planned", extra={"changes": summary.changes})
    return SyncOutcome.PREVIEWED


def _fail(deps: SyncDeps, preview: Preview, message: str) -> None:
    deps.previews.fail(preview.installation_id, preview.preview_id, message)
    logger.info("dry run failed", extra={"reason": message})


def _message_for(deps: SyncDeps, installation_id: str, error: Exception) -> str:
    """What the page says of a failure other than the source's. A dead credential or a removed
    installation is handled as a sync would handle it (the failure policy), anything else is
    logged for the operator."""
    try:
        outcome = outcome_after_failure(deps, installation_id, error)
    except Exception:
        logger.exception("the dry run failed")
        return NOT_COMPLETED
    return _FAILURE_MESSAGES.get(outcome, NOT_COMPLETED)


async def _plan_summary(
    deps: SyncDeps, record: InstallationRecord, preview: Preview
) -> PlanSummary:
    stored = (
        preview.connection if preview.connection is not None else record.config.get("connection")
    )
    settings = connection_settings(deps, record.installation_id, stored)
    if settings is None:
        raise ConnectionSettingsError(NOTHING_TO_READ)
    choices = SyncChoices.model_validate(preview.sync_choices or record.sync_choices or {})
    async with deps.pleo.for_installation(record.installation_id, record.auth_method) as pleo:
        return await _plan(deps, pleo, record, settings, choices)


async def _plan(
    deps: SyncDeps,
    pleo: PleoApi,
    record: InstallationRecord,
    settings: BaseModel,
    choices: SyncChoices,
) -> PlanSummary:
    with deps.adapter.open_reader(settings) as reader:
        entries = await pleo_step(deps.steps.read_pleo(pleo, record.company_id, choices))
        owned = deps.ownership.owned(record.installation_id)
        plan = deps.steps.plan(reader, entries, owned, choices)
        notices = reader_notices(reader)
    return summarise(plan, entries, notices)


def summarise(plan: Plan, pleo: Iterable[Entry], notices: Sequence[SourceNotice]) -> PlanSummary:
    """The page's view of `plan`: counts in the order a run applies them, the first records of
    each kind and action by name and code (Pleo's, for a change that carries no values), and
    the records that would be refused: the plan's problems, then what the reader left out."""
    known = {(entry.kind, entry.key): entry for entry in pleo}
    samples: defaultdict[tuple[Kind, Action], list[PlannedRecord]] = defaultdict(list)
    for change in plan.changes:
        shown = samples[(change.kind, change.action)]
        if len(shown) >= SAMPLES_PER_ACTION:
            continue
        values = change.values or getattr(known.get((change.kind, change.key)), "values", {})
        shown.append(
            PlannedRecord(str(values.get("name") or ""), str(values.get("code") or change.key))
        )
    refused = [
        RunProblem(problem.kind, problem.reference, problem.message) for problem in plan.problems
    ]
    refused += [
        RunProblem(notice.kind, notice.reference, notice.message)
        for notice in notices
        if notice.skipped
    ]
    notes = [
        RunProblem(notice.kind, notice.reference, notice.message)
        for notice in notices
        if not notice.skipped
    ]
    return PlanSummary(
        counts=in_applied_order(plan.counts()),
        samples=in_applied_order({key: tuple(records) for key, records in samples.items()}),
        refused=tuple(refused[:MAX_PROBLEMS]),
        refused_total=len(refused),
        notes=tuple(notes[:MAX_PROBLEMS]),
    )
