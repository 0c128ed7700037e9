"""Dry runs: what the next sync would change, asked for on the settings page and planned by the
worker (the only function with the accounting system's reader), with reads only.

One item per installation, `INST#<id>`/`PREVIEW`: a new request replaces the last one, so the page
always shows the newest. Each request gets a fresh `preview_id`; the worker starts and finishes a
dry run only while its id is still the item's, so a slow worker never overwrites a newer request
with an older plan. The connection settings to try (when the customer previews unsaved ones) are
kept sealed as saved settings are, and the item expires after a day.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pleo_connector.store.dynamodb import (
    DynamoTable,
    Item,
    Key,
    get_json,
    get_n,
    get_s,
    json_attr,
    n,
    need_s,
    s,
)
from pleo_connector.store.errors import WriteConflictError
from pleo_connector.store.installations import installation_pk
from pleo_connector.store.sync_runs import MAX_MESSAGE_CHARS, MAX_PROBLEMS, RunProblem
from pleo_connector.vocabulary import (
    Action,
    Kind,
    PreviewState,
    UnknownStoredValueError,
    parse_stored,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

PREVIEW = "PREVIEW"
PREVIEW_TTL_S = 24 * 3600
# A dry run queued or running for longer than this is shown as lost: its message did not make it
# (the worker plans even a 100,000-record book in seconds), and the customer may ask again.
PREVIEW_LOST_AFTER_S = 600.0
# How many records of each kind and action the page names.
SAMPLES_PER_ACTION = 5
MAX_SAMPLE_CHARS = 120
_STORED_STATES = (
    PreviewState.QUEUED,
    PreviewState.RUNNING,
    PreviewState.READY,
    PreviewState.FAILED,
)


@dataclass(frozen=True, slots=True)
class PlannedRecord:
    """A record the plan would change, as the page names it."""

    name: str
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSummary:
    """What a dry run found: counts per kind and action, the first records of each, the records
    that would be refused (with why: `refused_total` says how many there were) and notes on
    records that sync with a change (a name cleaned)."""

    counts: Mapping[tuple[Kind, Action], int] = field(default_factory=dict)
    samples: Mapping[tuple[Kind, Action], tuple[PlannedRecord, ...]] = field(default_factory=dict)
    refused: tuple[RunProblem, ...] = ()
    refused_total: int = 0
    notes: tuple[RunProblem, ...] = ()

    @property
    def changes(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Preview:
    """The newest dry run of an installation. `connection` is the sealed connection settings to
    try (None: the saved ones), `sync_choices` the choices to try (None: the saved ones)."""

    installation_id: str
    preview_id: str
    state: PreviewState
    requested_at: float
    updated_at: float
    connection: Mapping[str, Any] | None = None
    sync_choices: Mapping[str, Any] | None = None
    summary: PlanSummary | None = None
    message: str | None = None

    def shown_state(self, now: float, lost_after_s: float = PREVIEW_LOST_AFTER_S) -> PreviewState:
        """The state the page shows: a dry run still unfinished long after it was touched last
        is LOST."""
        if self.state.unfinished and now - self.updated_at > lost_after_s:
            return PreviewState.LOST
        return self.state


def in_applied_order[V](
    by_key: Mapping[tuple[Kind, Action], V],
) -> dict[tuple[Kind, Action], V]:
    """`by_key` ordered as a sync applies its changes: by kind, then by action."""
    return {
        (kind, action): by_key[(kind, action)]
        for kind in Kind
        for action in Action
        if (kind, action) in by_key
    }


class PreviewRepository:
    """The dry-run item of each installation."""

    def __init__(self, table: DynamoTable, *, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def request(
        self,
        installation_id: str,
        *,
        connection: Mapping[str, Any] | None = None,
        sync_choices: Mapping[str, Any] | None = None,
    ) -> Preview:
        """A new dry run, QUEUED; it replaces whatever dry run the installation had."""
        now = self._clock()
        preview = Preview(
            installation_id=installation_id,
            preview_id=uuid.uuid4().hex,
            state=PreviewState.QUEUED,
            requested_at=now,
            updated_at=now,
            connection=connection,
            sync_choices=sync_choices,
        )
        item: Item = {
            **_key(installation_id),
            "entity": s("preview"),
            "installation_id": s(installation_id),
            "preview_id": s(preview.preview_id),
            "state": s(preview.state),
            "requested_at": n(now),
            "updated_at": n(now),
            "ttl": n(math.ceil(now + PREVIEW_TTL_S)),
        }
        if connection is not None:
            item["connection"] = json_attr(connection)
        if sync_choices is not None:
            item["sync_choices"] = json_attr(sync_choices)
        self._table.put(item)
        return preview

    def get(self, installation_id: str) -> Preview | None:
        item = self._table.get(_key(installation_id))
        return None if item is None else _preview_from_item(item)

    def start(self, installation_id: str, preview_id: str) -> Preview | None:
        """Mark the dry run RUNNING and return it; None when a newer one replaced it, or it is
        finished already (a message delivered twice)."""
        try:
            item = self._table.update(
                _key(installation_id),
                update="SET #state = :running, updated_at = :now",
                condition="preview_id = :id AND #state IN (:queued, :running)",
                names={"#state": "state"},
                values={
                    ":running": s(PreviewState.RUNNING),
                    ":queued": s(PreviewState.QUEUED),
                    ":now": n(self._clock()),
                    ":id": s(preview_id),
                },
            )
        except WriteConflictError:
            return None
        return _preview_from_item(item)

    def finish(self, installation_id: str, preview_id: str, summary: PlanSummary) -> bool:
        """Keep the plan, READY; False when a newer dry run replaced this one meanwhile. The
        connection settings it tried are dropped with it: they were needed only to plan."""
        return self._end(
            installation_id,
            preview_id,
            "SET #state = :state, updated_at = :now, #summary = :summary REMOVE #connection",
            {"#summary": "summary"},
            {":state": s(PreviewState.READY), ":summary": json_attr(_summary_json(summary))},
        )

    def fail(self, installation_id: str, preview_id: str, message: str) -> bool:
        """The dry run could not plan (`message` says why, for the customer): FAILED."""
        return self._end(
            installation_id,
            preview_id,
            "SET #state = :state, updated_at = :now, #message = :message REMOVE #connection",
            {"#message": "message"},
            {":state": s(PreviewState.FAILED), ":message": s(_clip(message, MAX_MESSAGE_CHARS))},
        )

    def _end(
        self,
        installation_id: str,
        preview_id: str,
        update: str,
        names: Mapping[str, str],
        values: Item,
    ) -> bool:
        """`update`, while the item is still this dry run (CONNECTION and the like are words
        DynamoDB reserves, hence the names)."""
        try:
            self._table.update(
                _key(installation_id),
                update=update,
                condition="preview_id = :id",
                names={"#state": "state", "#connection": "connection", **names},
                values={**values, ":now": n(self._clock()), ":id": s(preview_id)},
            )
        except WriteConflictError:
            return False
        return True


# --- mapping -------------------------------------------------------------------------------------


def _key(installation_id: str) -> Key:
    return {"pk": s(installation_pk(installation_id)), "sk": s(PREVIEW)}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _problems_json(problems: tuple[RunProblem, ...]) -> list[dict[str, str]]:
    return [
        {"kind": str(problem.kind), "reference": problem.reference, "message": problem.message}
        for problem in problems[:MAX_PROBLEMS]
    ]


def _summary_json(summary: PlanSummary) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for (kind, action), count in summary.counts.items():
        counts.setdefault(str(kind), {})[str(action)] = count
    samples: dict[str, dict[str, list[list[str]]]] = {}
    for (kind, action), records in summary.samples.items():
        samples.setdefault(str(kind), {})[str(action)] = [
            [_clip(record.name, MAX_SAMPLE_CHARS), _clip(record.code, MAX_SAMPLE_CHARS)]
            for record in records[:SAMPLES_PER_ACTION]
        ]
    return {
        "counts": counts,
        "samples": samples,
        "refused": _problems_json(summary.refused),
        "refused_total": max(summary.refused_total, len(summary.refused)),
        "notes": _problems_json(summary.notes),
    }


def _problems_from(stored: list[dict[str, Any]], field: str) -> tuple[RunProblem, ...]:
    return tuple(
        RunProblem(
            parse_stored(Kind, str(problem["kind"]), field=field),
            str(problem["reference"]),
            str(problem["message"]),
        )
        for problem in stored
    )


def _summary_from(stored: dict[str, Any]) -> PlanSummary:
    counts: dict[tuple[Kind, Action], int] = {}
    for kind_value, by_action in dict(stored.get("counts", {})).items():
        kind = parse_stored(Kind, kind_value, field="counts")
        for action_value, count in dict(by_action).items():
            counts[(kind, parse_stored(Action, action_value, field="counts"))] = int(count)
    samples: dict[tuple[Kind, Action], tuple[PlannedRecord, ...]] = {}
    for kind_value, by_action in dict(stored.get("samples", {})).items():
        kind = parse_stored(Kind, kind_value, field="samples")
        for action_value, records in dict(by_action).items():
            action = parse_stored(Action, action_value, field="samples")
            samples[(kind, action)] = tuple(
                PlannedRecord(str(name), str(code)) for name, code in records
            )
    # Stored JSON keeps its keys sorted: the order a sync applies them is restored here.
    return PlanSummary(
        counts=in_applied_order(counts),
        samples=in_applied_order(samples),
        refused=_problems_from(list(stored.get("refused", [])), "refused"),
        refused_total=int(stored.get("refused_total", 0)),
        notes=_problems_from(list(stored.get("notes", [])), "notes"),
    )


def _preview_from_item(item: Item) -> Preview:
    state = parse_stored(PreviewState, need_s(item, "state"), field="state")
    if state not in _STORED_STATES:
        raise UnknownStoredValueError("stored state is not one a dry run is stored with")
    summary = get_json(item, "summary")
    return Preview(
        installation_id=need_s(item, "installation_id"),
        preview_id=need_s(item, "preview_id"),
        state=state,
        requested_at=get_n(item, "requested_at") or 0.0,
        updated_at=get_n(item, "updated_at") or 0.0,
        connection=get_json(item, "connection"),
        sync_choices=get_json(item, "sync_choices"),
        summary=None if summary is None else _summary_from(summary),
        message=get_s(item, "message"),
    )
