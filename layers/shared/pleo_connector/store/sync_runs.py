"""Sync runs: the lease that keeps two runs of one installation apart, and the record of each run.

Items: `INST#<id>`/`LEASE`, and `INST#<id>`/`RUN#<started at, ISO 8601 UTC>` per run.

The lease is taken with a conditional write that succeeds only when no live lease exists (none
yet, released, or expired), so of two runs started together exactly one gets it. It expires by
itself (`expires_at`), so a run that crashed never blocks the next one past its TTL. Each taking
increments `token`, the fencing token: `holds` and `release` compare it, so a run that outlived
its lease learns it lost it and never releases the lease of the run that took over. A released
lease keeps its item, so the token only grows; DynamoDB's TTL reaps it after a week unused.

A run that ended complete and clean leaves on the lease, as it releases it, what it reconciled
(`Reconciled`: a digest of the settings, the source's revision, when). The next run that takes the
lease reads it back from the same write, so asking "did anything change since?" costs no call of
its own. It counts only for the run right after (the fencing token one above the one it was left
at): a run that crashed in between, having perhaps written half a plan, took a token and left no
mark, so the run after it reconciles in full.

A run record expires after `RUN_TTL_S` (DynamoDB's TTL, attribute `ttl`) and holds what the
settings page shows: counts per kind and action, the requests made and the 429s met, the duration,
the per-record problems (at most `MAX_PROBLEMS`), and the outcome.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pleo_connector.store.dynamodb import (
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
from pleo_connector.store.errors import WriteConflictError
from pleo_connector.store.installations import installation_pk
from pleo_connector.vocabulary import Action, Kind, SyncOutcome, SyncReason, parse_stored

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

LEASE = "LEASE"
RUN_PREFIX = "RUN#"
RUN_TTL_S = 30 * 24 * 3600
# A released or expired lease item is kept this long, so its token keeps growing meanwhile.
LEASE_ITEM_TTL_S = 7 * 24 * 3600
MAX_PROBLEMS = 50
MAX_REFERENCE_CHARS = 200
MAX_MESSAGE_CHARS = 500
FAILED = "failed"  # the key of a kind's failed records in the stored counts


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What a complete, clean run reconciled: the digest of the settings it ran with, the source's
    revision it read (an ETag or a Last-Modified date; see `adapters.sources.Revision`), and when
    that full run started (epoch seconds). No secret: the digest is of sealed settings."""

    settings_digest: str
    source_etag: str | None
    source_modified: str | None
    at: float


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease: `token` is its fencing token, `expires_at` epoch seconds. What the run
    before it left is read with `free_mark`, before the lease is taken."""

    installation_id: str
    token: int
    holder: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class RunProblem:
    """One record a run could not sync, in words a customer can act on."""

    kind: Kind
    reference: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRun:
    """What one run did. `applied` counts the writes that succeeded per kind and action,
    `failed` the records that did not sync per kind; `problems` holds the first of them
    (`problems_total` says how many there were). `message` is a run-wide problem: why the source
    could not be read, or the kind of error that stopped the run."""

    installation_id: str
    started_at: datetime
    finished_at: datetime
    reason: SyncReason
    outcome: SyncOutcome
    applied: Mapping[tuple[Kind, Action], int] = field(default_factory=dict)
    failed: Mapping[Kind, int] = field(default_factory=dict)
    problems: tuple[RunProblem, ...] = ()
    problems_total: int = 0
    requests: int = 0
    rate_limited: int = 0
    message: str | None = None

    @property
    def duration_s(self) -> float:
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)


class SyncRunRepository:
    """Leases and run records of the installations."""

    def __init__(
        self,
        table: DynamoTable,
        *,
        clock: Callable[[], float] = time.time,
        run_ttl_s: int = RUN_TTL_S,
    ) -> None:
        self._table = table
        self._clock = clock
        self._run_ttl_s = run_ttl_s

    # --- the lease -----------------------------------------------------------------------------

    def acquire(self, installation_id: str, ttl_s: float) -> Lease | None:
        """Take the lease for `ttl_s` seconds, or None when another run holds a live one."""
        now = self._clock()
        until = now + ttl_s
        holder = uuid.uuid4().hex
        try:
            item = self._table.update(
                _lease_key(installation_id),
                update=(
                    "SET holder = :holder, expires_at = :until, #ttl = :ttl, "
                    "#token = if_not_exists(#token, :zero) + :one"
                ),
                condition="attribute_not_exists(expires_at) OR expires_at <= :now",
                names={"#ttl": "ttl", "#token": "token"},
                values={
                    ":holder": s(holder),
                    ":until": n(until),
                    ":ttl": n(math.ceil(until + LEASE_ITEM_TTL_S)),
                    ":zero": n(0),
                    ":one": n(1),
                    ":now": n(now),
                },
            )
        except WriteConflictError:
            return None
        token = get_int(item, "token")
        return Lease(installation_id, token, holder, until)

    def holds(self, lease: Lease) -> bool:
        """Whether `lease` is still the live one (nobody took over since)."""
        item = self._table.get(_lease_key(lease.installation_id))
        if item is None:
            return False
        return (
            get_int(item, "token") == lease.token
            and (get_n(item, "expires_at") or 0.0) > self._clock()
        )

    def release(self, lease: Lease, reconciled: Reconciled | None = None) -> bool:
        """Give the lease back, if it is still this one's, leaving `reconciled` for the next run
        (or no mark). False when another run took it over (or the installation's items are
        gone)."""
        values = {
            ":zero": n(0),
            ":ttl": n(math.ceil(self._clock() + LEASE_ITEM_TTL_S)),
            ":token": n(lease.token),
        }
        if reconciled is None:
            update = "SET expires_at = :zero, #ttl = :ttl REMOVE holder, reconciled"
        else:
            update = "SET expires_at = :zero, #ttl = :ttl, reconciled = :reconciled REMOVE holder"
            values[":reconciled"] = json_attr(
                {
                    "token": lease.token,
                    "digest": reconciled.settings_digest,
                    "etag": reconciled.source_etag,
                    "modified": reconciled.source_modified,
                    "at": reconciled.at,
                }
            )
        try:
            self._table.update(
                _lease_key(lease.installation_id),
                update=update,
                condition="#token = :token",
                names={"#ttl": "ttl", "#token": "token"},
                values=values,
            )
        except WriteConflictError:
            return False
        return True

    def free_mark(self, installation_id: str) -> Reconciled | None:
        """The mark the last run left on the lease, while no run holds it and none took it
        since (a strongly consistent read: a run that skips on it takes no lease)."""
        item = self._table.get(_lease_key(installation_id))
        if item is None or (get_n(item, "expires_at") or 0.0) > self._clock():
            return None
        return _reconciled(item, get_int(item, "token"))

    def lease_held(self, installation_id: str) -> bool:
        """Whether a run of the installation holds a live lease now (the pages ask)."""
        item = self._table.get(_lease_key(installation_id))
        return item is not None and (get_n(item, "expires_at") or 0.0) > self._clock()

    # --- run records ---------------------------------------------------------------------------

    def record(self, run: SyncRun) -> None:
        self._table.put(_item_from_run(run, ttl=math.ceil(self._clock() + self._run_ttl_s)))

    def last_run(self, installation_id: str) -> SyncRun | None:
        """The newest run record, or None."""
        return next(iter(self.recent_runs(installation_id, limit=1)), None)

    def recent_runs(self, installation_id: str, *, limit: int = 10) -> list[SyncRun]:
        """The newest `limit` run records, newest first (they expire after `RUN_TTL_S`)."""
        items = self._table.query(
            key_condition="pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": s(installation_pk(installation_id)), ":prefix": s(RUN_PREFIX)},
            descending=True,
            page_size=limit,
        )
        return [_run_from_item(item) for item in itertools.islice(items, limit)]


# --- mapping -------------------------------------------------------------------------------------


def _reconciled(item: Item, token: int) -> Reconciled | None:
    """The mark on the lease item, when the run that held token `token` left it."""
    mark = get_json(item, "reconciled")
    if not isinstance(mark, dict) or mark.get("token") != token:
        return None
    digest, at = mark.get("digest"), mark.get("at")
    etag, modified = mark.get("etag"), mark.get("modified")
    if not isinstance(digest, str) or not isinstance(at, int | float):
        return None
    return Reconciled(
        digest,
        etag if isinstance(etag, str) else None,
        modified if isinstance(modified, str) else None,
        float(at),
    )


def _lease_key(installation_id: str) -> Key:
    return {"pk": s(installation_pk(installation_id)), "sk": s(LEASE)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _item_from_run(run: SyncRun, *, ttl: int) -> Item:
    counts: dict[str, dict[str, int]] = {}
    for (kind, action), count in run.applied.items():
        counts.setdefault(str(kind), {})[str(action)] = count
    for kind, count in run.failed.items():
        counts.setdefault(str(kind), {})[FAILED] = count
    problems = [
        {
            "kind": str(problem.kind),
            "reference": _clip(problem.reference, MAX_REFERENCE_CHARS),
            "message": _clip(problem.message, MAX_MESSAGE_CHARS),
        }
        for problem in run.problems[:MAX_PROBLEMS]
    ]
    item: Item = {
        "pk": s(installation_pk(run.installation_id)),
        "sk": s(RUN_PREFIX + _iso(run.started_at)),
        "entity": s("sync_run"),
        "installation_id": s(run.installation_id),
        "started_at": s(_iso(run.started_at)),
        "finished_at": s(_iso(run.finished_at)),
        "duration_s": n(float(run.duration_s)),
        "reason": s(run.reason),
        "outcome": s(run.outcome),
        "counts": json_attr(counts),
        "problems": json_attr(problems),
        "problems_total": n(max(run.problems_total, len(run.problems))),
        "requests": n(run.requests),
        "rate_limited": n(run.rate_limited),
        "ttl": n(ttl),
    }
    if run.message:
        item["message"] = s(_clip(run.message, MAX_MESSAGE_CHARS))
    return item


def _run_from_item(item: Item) -> SyncRun:
    applied: dict[tuple[Kind, Action], int] = {}
    failed: dict[Kind, int] = {}
    counts: dict[str, dict[str, int]] = get_json(item, "counts") or {}
    for kind_value, by_action in counts.items():
        kind = parse_stored(Kind, kind_value, field="counts")
        for action_value, count in by_action.items():
            if action_value == FAILED:
                failed[kind] = int(count)
            else:
                applied[(kind, parse_stored(Action, action_value, field="counts"))] = int(count)
    stored_problems: list[dict[str, Any]] = get_json(item, "problems") or []
    problems = tuple(
        RunProblem(
            parse_stored(Kind, str(problem["kind"]), field="problems"),
            str(problem["reference"]),
            str(problem["message"]),
        )
        for problem in stored_problems
    )
    return SyncRun(
        installation_id=need_s(item, "installation_id"),
        started_at=datetime.fromisoformat(need_s(item, "started_at")),
        finished_at=datetime.fromisoformat(need_s(item, "finished_at")),
        reason=parse_stored(SyncReason, need_s(item, "reason"), field="reason"),
        outcome=parse_stored(SyncOutcome, need_s(item, "outcome"), field="outcome"),
        applied=applied,
        failed=failed,
        problems=problems,
        problems_total=get_int(item, "problems_total"),
        requests=get_int(item, "requests"),
        rate_limited=get_int(item, "rate_limited"),
        message=get_s(item, "message"),
    )
