"""The app's CloudWatch metrics, as Powertools prints them (the embedded metric format, EMF).

The names and dimensions are a contract with the alarms and the dashboard of template.yaml, so
they live here and nowhere else. Each event is one call (`install_done`, `activated`, `sync_done`,
`run_counted`, `budget_call`, `installation_stopped`, `installations_counted`), which only adds
to an in-memory set; the handler wrapper (`observability.observed`) prints the set once per
invocation with `flush`, one EMF line per combination of dimensions (EMF gives every metric of a
line the same dimensions).

Dimensions stay bounded: methods, outcomes, kinds, actions and statuses, never an installation id
(the logs carry that). Powertools' metrics module is loaded with its logger already (the package's
`__init__` imports both), so recording costs nothing at cold start; a function that recorded
nothing prints nothing.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import defaultdict
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping
    from datetime import datetime

    from pleo_connector.vocabulary import Action, InstallationStatus, Kind, SyncOutcome

NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
SERVICE_ENV = "POWERTOOLS_SERVICE_NAME"
DEFAULT_NAMESPACE = "PleoConnector"
DEFAULT_SERVICE = "pleo-connector"
FAILED_ACTION = "failed"  # the Action dimension of the records a run could not sync

COUNT = "Count"
MILLISECONDS = "Milliseconds"


class Metric(StrEnum):
    INSTALLS = "Installs"
    ACTIVATIONS = "Activations"
    SYNCS = "Syncs"
    SYNC_RECORDS = "SyncRecords"
    SYNC_RUN_DURATION = "SyncRunDuration"
    PLEO_REQUESTS = "PleoRequests"
    PLEO_429S = "Pleo429s"
    BUDGET_DYNAMODB_CALLS = "BudgetDynamoDBCalls"
    INSTALLATIONS_STOPPED = "InstallationsStopped"
    INSTALLATIONS = "Installations"  # a gauge: how many are in each status, at one moment


class InstallMethod(StrEnum):
    OAUTH = "oauth"
    API_KEY = "api_key"


class InstallOutcome(StrEnum):
    INSTALLED = "installed"
    REFUSED = "refused"  # the request was refused with a 4xx: a user's or a browser's problem
    FAILED = "failed"  # anything else: Pleo, AWS or a bug


Dimensions = tuple[tuple[str, str], ...]


class MetricSet:
    """What one invocation recorded, by dimensions then by (name, unit). Counts are summed;
    other values are kept one by one (a duration's percentiles need each run). Thread-safe: the
    rate budget records from worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: defaultdict[Dimensions, defaultdict[tuple[str, str], list[float]]] = (
            defaultdict(lambda: defaultdict(list))
        )

    def add(self, name: Metric, value: float, unit: str = COUNT, **dimensions: str) -> None:
        key = tuple(sorted(dimensions.items()))
        with self._lock:
            values = self._points[key][(str(name), unit)]
            if unit == COUNT and values:
                values[0] += value
            else:
                values.append(value)

    def take(self) -> dict[Dimensions, dict[tuple[str, str], list[float]]]:
        """Everything recorded so far, and a clean set."""
        with self._lock:
            taken = {dims: dict(values) for dims, values in self._points.items()}
            self._points.clear()
        return taken

    def flush(self) -> None:
        """Print one EMF line per set of dimensions, and forget them."""
        taken = self.take()
        if not taken:
            return
        from aws_lambda_powertools.metrics import EphemeralMetrics

        namespace = os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE
        service = os.environ.get(SERVICE_ENV) or DEFAULT_SERVICE
        for dimensions, values in taken.items():
            line = EphemeralMetrics(namespace=namespace, service=service)
            for dimension, value in dimensions:
                line.add_dimension(name=dimension, value=value)
            for (name, unit), points in values.items():
                for point in points:
                    line.add_metric(name=name, unit=unit, value=point)
            line.flush_metrics()


recorded = MetricSet()


def flush() -> None:
    """Print what this invocation recorded (the handler wrapper calls it once per invocation)."""
    recorded.flush()


# --- the events --------------------------------------------------------------------------------


type AsyncFunction[**P, T] = Callable[P, Coroutine[Any, Any, T]]


def counted_install[**P, T](
    method: InstallMethod,
) -> Callable[[AsyncFunction[P, T]], AsyncFunction[P, T]]:
    """Count each call of an install service by how it ended: `installed` when it returned,
    `refused` when it raised an error that maps to a 4xx, `failed` otherwise."""

    def decorate(install: AsyncFunction[P, T]) -> AsyncFunction[P, T]:
        @functools.wraps(install)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                done = await install(*args, **kwargs)
            except Exception as error:
                status = getattr(error, "http_status", 500)
                refused = isinstance(status, int) and 400 <= status < 500
                install_done(method, InstallOutcome.REFUSED if refused else InstallOutcome.FAILED)
                raise
            install_done(method, InstallOutcome.INSTALLED)
            return done

        return counted

    return decorate


def install_done(method: InstallMethod, outcome: InstallOutcome) -> None:
    recorded.add(Metric.INSTALLS, 1, Method=str(method), Outcome=str(outcome))


def activated() -> None:
    """`me:activate` succeeded."""
    recorded.add(Metric.ACTIVATIONS, 1)


def sync_done(outcome: SyncOutcome) -> None:
    """One sync request came to `outcome` (FAILED when it raised)."""
    recorded.add(Metric.SYNCS, 1, Outcome=str(outcome))


class RunCounts(Protocol):
    """What `run_counted` reads of a run's record (`store.sync_runs.SyncRun` has it)."""

    @property
    def started_at(self) -> datetime: ...
    @property
    def finished_at(self) -> datetime: ...
    @property
    def applied(self) -> Mapping[tuple[Kind, Action], int]: ...
    @property
    def failed(self) -> Mapping[Kind, int]: ...
    @property
    def requests(self) -> int: ...
    @property
    def rate_limited(self) -> int: ...


def run_counted(run: RunCounts) -> None:
    """A run that held the lease ended (and was recorded): its records, duration and requests."""
    for (kind, action), count in run.applied.items():
        if count:
            recorded.add(Metric.SYNC_RECORDS, count, Kind=str(kind), Action=str(action))
    for kind, count in run.failed.items():
        if count:
            recorded.add(Metric.SYNC_RECORDS, count, Kind=str(kind), Action=FAILED_ACTION)
    duration_ms = (run.finished_at - run.started_at).total_seconds() * 1000
    recorded.add(Metric.SYNC_RUN_DURATION, max(duration_ms, 0.0), MILLISECONDS)
    # A count of 0 is left unsent: CloudWatch bills a series for each hour it gets data, and most
    # runs make no 429 (an unchanged run no request). The alarms treat missing data as 0.
    if run.requests:
        recorded.add(Metric.PLEO_REQUESTS, run.requests)
    if run.rate_limited:
        recorded.add(Metric.PLEO_429S, run.rate_limited)


def budget_call() -> None:
    """One DynamoDB call of the shared rate budget."""
    recorded.add(Metric.BUDGET_DYNAMODB_CALLS, 1)


def installation_stopped() -> None:
    """An installation went INACTIVE or ERROR."""
    recorded.add(Metric.INSTALLATIONS_STOPPED, 1)


def installations_counted(counts: Mapping[InstallationStatus, int]) -> None:
    """How many installations each status has, as the dispatcher counted them (one run in six
    hours sends them, so the point is a gauge: plot its Maximum or Average, not its Sum). A
    status with none gets no point: its series costs nothing while it stays empty."""
    for status, count in counts.items():
        if count:
            recorded.add(Metric.INSTALLATIONS, count, Status=str(status))
