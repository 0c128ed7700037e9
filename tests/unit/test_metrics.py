"""The metrics of the contract: what each event records, how one invocation prints them (one EMF
line per set of dimensions, once, also when the handler raises), and that nothing is printed when
nothing was recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import pytest

from pleo_connector import metrics
from pleo_connector.observability import observed
from pleo_connector.store.sync_runs import SyncRun
from pleo_connector.vocabulary import Action, Kind, SyncOutcome, SyncReason
from tests.support.handlers import FakeLambdaContext
from tests.support.observed_output import read_printed

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from tests.unit.conftest import MetricKey

pytestmark = pytest.mark.unit

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def run_record(**counts: object) -> SyncRun:
    fields: dict[str, object] = {
        "installation_id": "inst-1",
        "started_at": START,
        "finished_at": START + timedelta(milliseconds=1500),
        "reason": SyncReason.SCHEDULED,
        "outcome": SyncOutcome.SYNCED,
        "applied": {(Kind.TAG, Action.CREATE): 3, (Kind.VENDOR, Action.ARCHIVE): 1},
        "failed": {Kind.VENDOR: 2},
        "requests": 7,
        "rate_limited": 1,
    }
    fields.update(counts)
    return SyncRun(**fields)  # type: ignore[arg-type]


def test_a_run_records_its_records_duration_and_requests(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    metrics.run_counted(run_record())

    assert recorded_metrics() == {
        ("SyncRecords", (("Action", "create"), ("Kind", "tag"))): [3],
        ("SyncRecords", (("Action", "archive"), ("Kind", "vendor"))): [1],
        ("SyncRecords", (("Action", "failed"), ("Kind", "vendor"))): [2],
        ("SyncRunDuration", ()): [1500.0],
        ("PleoRequests", ()): [7],
        ("Pleo429s", ()): [1],
    }


def test_a_run_without_requests_or_429s_sends_neither_count(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    metrics.run_counted(run_record(applied={}, failed={}, requests=0, rate_limited=0))

    assert recorded_metrics() == {("SyncRunDuration", ()): [1500.0]}


def test_counts_add_up_and_durations_stay_apart(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    metrics.run_counted(run_record())
    metrics.run_counted(run_record(finished_at=START + timedelta(milliseconds=250)))

    recorded = recorded_metrics()

    assert recorded[("SyncRunDuration", ())] == [1500.0, 250.0]
    assert recorded[("PleoRequests", ())] == [14]


def test_one_invocation_prints_one_emf_line_per_set_of_dimensions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "pleo-connector")
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    metrics.recorded.take()
    metrics.sync_done(SyncOutcome.SYNCED)
    metrics.sync_done(SyncOutcome.SYNCED)
    metrics.sync_done(SyncOutcome.FAILED)
    metrics.budget_call()
    metrics.installation_stopped()
    metrics.activated()

    metrics.flush()

    printed = read_printed(capsys.readouterr().out)
    assert printed.logs == []
    assert len(printed.emf) == 3
    assert printed.namespaces() == {"PleoConnector"}
    assert printed.metrics() == {
        ("Syncs", (("Outcome", "synced"), ("service", "pleo-connector"))): [2],
        ("Syncs", (("Outcome", "failed"), ("service", "pleo-connector"))): [1],
        ("BudgetDynamoDBCalls", (("service", "pleo-connector"),)): [1],
        ("InstallationsStopped", (("service", "pleo-connector"),)): [1],
        ("Activations", (("service", "pleo-connector"),)): [1],
    }
    metrics.flush()
    assert capsys.readouterr().out == ""  # printed once, then forgotten


def test_the_handler_wrapper_prints_the_metrics_once_even_when_the_handler_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics.recorded.take()

    @observed
    def handler(event: dict[str, str], context: LambdaContext) -> None:
        metrics.sync_done(SyncOutcome(event["outcome"]))
        raise RuntimeError("a handler bug")

    with pytest.raises(RuntimeError):
        handler({"outcome": "busy"}, cast("LambdaContext", FakeLambdaContext()))

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [line["Syncs"] for line in emf] == [[1.0]]
    assert emf[0]["Outcome"] == "busy"


def test_a_handler_that_recorded_nothing_prints_no_metric(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics.recorded.take()

    @observed
    def handler(event: dict[str, str], context: LambdaContext) -> str:
        return "ok"

    assert handler({}, cast("LambdaContext", FakeLambdaContext())) == "ok"
    assert '"_aws"' not in capsys.readouterr().out


@pytest.mark.parametrize(("fails", "outcome"), [(False, "installed"), (True, "failed")])
def test_an_install_is_counted_by_how_it_ended(
    fails: bool,
    outcome: str,
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    """An error that is not a refusal of ours (no 4xx status) counts as failed."""
    from pleo_connector.aio import run

    @metrics.counted_install(metrics.InstallMethod.OAUTH)
    async def install() -> str:
        if fails:
            raise TypeError("a bug")
        return "done"

    if fails:
        with pytest.raises(TypeError):
            run(install())
    else:
        assert run(install()) == "done"

    assert recorded_metrics() == {
        ("Installs", (("Method", "oauth"), ("Outcome", outcome))): [1],
    }
