"""The scheduled dispatch: one sync message per schedulable installation, and one keep-alive per
OAuth grant idle for long, sent in batches of ten.

It streams: the `Schedulable` index is read a page at a time and each page goes out as it comes
(`SyncQueue.send_many` keeps a few batches in flight), so 10,000 installations need neither a
list in memory nor more than a few seconds. Paused, inactive and dead installations are not in
the index at all (store/installations.py), so the dispatcher skips them without reading them.

When SQS refuses some messages, the rest still go out. What stayed unsent is logged as an error
and counted in the result, and the run succeeds: those installations are still schedulable, so
the next scheduled run sends them, while failing the run would make Lambda run it again and send
every message that did go out a second time. Only a run that sent nothing at all fails (SQS is
down), and then a retry duplicates nothing.

Each run also counts the installations in each status (`InstallationRepository.count_by_status`
says why through the `ByStatus` index), for its log line, and the first run of every six hours
sends the counts as the `Installations` gauge of metrics.py: CloudWatch bills a series for each
hour it gets data, and counts that move over days need no hourly point. It counts after sending,
and a count that fails is logged and skipped: failing the run for it would make Lambda run it
again and send every message a second time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pleo_connector import metrics
from pleo_connector.observability import logger
from pleo_connector.store.errors import StoreError
from pleo_connector.sync_queue import QueueError, SyncRequest, UnsentRequestsError
from pleo_connector.tokens import DEFAULT_IDLE_REFRESH_AFTER_S
from pleo_connector.vocabulary import SyncReason

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pleo_connector.ports import CredentialVault, InstallationStore, SyncQueuePort
    from pleo_connector.vocabulary import InstallationStatus

# How many of the unsent installations a log line names (the count is always there).
LOGGED_UNSENT = 20
# The `Installations` gauge is sent by the first run in each window of this length (UTC).
GAUGE_WINDOW_S = 6 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchDeps:
    installations: InstallationStore
    tokens: CredentialVault
    sync_queue: SyncQueuePort
    clock: Callable[[], float] = time.time
    # The schedule's period (`SyncRateMinutes`): it says which run is the first of its window.
    schedule_period_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class Dispatched:
    dispatched: int
    keep_alive: int
    unsent: int = 0
    abandoned: bool = False  # SQS stopped answering: part of the stream was not even tried
    # Installations in each status, every status included; empty when they could not be counted.
    by_status: dict[InstallationStatus, int] = field(default_factory=dict)


def dispatch(deps: DispatchDeps) -> Dispatched:
    """Queue every schedulable installation, then every grant idle for longer than the token
    store's idle threshold (the worker re-checks each under the refresh lease)."""
    requests = (
        SyncRequest(installation_id=installation_id, reason=SyncReason.SCHEDULED)
        for installation_id in deps.installations.iter_schedulable()
    )
    dispatched = _send(deps.sync_queue, requests, SyncReason.SCHEDULED)
    idle_before = deps.clock() - DEFAULT_IDLE_REFRESH_AFTER_S
    keep_alive = (
        SyncRequest(installation_id=installation_id, reason=SyncReason.KEEP_ALIVE)
        for installation_id in deps.tokens.iter_idle_grants(idle_before)
    )
    kept_alive = _send(deps.sync_queue, keep_alive, SyncReason.KEEP_ALIVE)
    done = Dispatched(
        dispatched.sent,
        kept_alive.sent,
        dispatched.unsent + kept_alive.unsent,
        dispatched.abandoned or kept_alive.abandoned,
        _count_by_status(deps.installations, gauge=gauge_due(deps.clock(), deps.schedule_period_s)),
    )
    if (done.unsent or done.abandoned) and not (done.dispatched or done.keep_alive):
        raise QueueError("the sync queue took none of the dispatched messages")
    return done


def gauge_due(now: float, period_s: float, window_s: float = GAUGE_WINDOW_S) -> bool:
    """Whether the run at `now` is the first of its gauge window: the run one period before it
    fell in an earlier one. With a period of a window or more, every run is."""
    return now // window_s != (now - period_s) // window_s


def _count_by_status(
    installations: InstallationStore, *, gauge: bool
) -> dict[InstallationStatus, int]:
    """The installations in each status, also recorded as the `Installations` gauge when `gauge`;
    nothing (and a warning) when the store cannot count them now."""
    try:
        counts = installations.count_by_status()
    except StoreError as error:
        logger.warning(
            "installations not counted by status",
            extra={"operation": error.operation, "code": error.code},
        )
        return {}
    if gauge:
        metrics.installations_counted(counts)
    return counts


@dataclass(frozen=True, slots=True)
class _Sent:
    sent: int
    unsent: int = 0
    abandoned: bool = False


def _send(queue: SyncQueuePort, requests: Iterable[SyncRequest], reason: SyncReason) -> _Sent:
    try:
        return _Sent(queue.send_many(requests))
    except UnsentRequestsError as error:
        logger.error(
            "sync messages not sent; the next scheduled run sends them",
            extra={
                "reason": reason,
                "sent": error.sent,
                "unsent": len(error.unsent),
                "abandoned": error.abandoned,
                "unsent_installations": error.unsent[:LOGGED_UNSENT],
            },
        )
        return _Sent(error.sent, len(error.unsent), error.abandoned)
