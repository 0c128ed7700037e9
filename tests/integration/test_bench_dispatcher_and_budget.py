"""The dispatcher and budget benchmarks, run small: they start their own stand-ins, print every
figure in the `bench: <name> = <value> <unit>` form, and pass their own checks (every message in
the queue, the shared budget within its bound). Figures are printed, never asserted on."""

from __future__ import annotations

import os
import re

import pytest

from bench import bench_budget, bench_dispatcher

pytestmark = pytest.mark.integration

FIGURE = re.compile(r"^bench: (?P<name>[a-z0-9_.]+) = (?P<value>[0-9.]+) (?P<unit>\S+)$", re.M)


def figures(out: str) -> dict[str, str]:
    return {match["name"]: match["value"] for match in FIGURE.finditer(out)}


def test_the_dispatcher_benchmark_sends_every_schedulable_installation_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    environment = dict(os.environ)

    status = bench_dispatcher.main(["--installations", "120", "--skipped", "12"])

    printed = figures(capsys.readouterr().out)
    assert status == 0
    assert printed["dispatcher_messages_arrived"] == "120"  # the 12 skipped ones stayed out
    assert printed["dispatcher_unsent"] == "0"
    assert {"dispatcher_120_s", "dispatcher_messages_per_s"} <= printed.keys()
    assert dict(os.environ) == environment  # the endpoints it set are gone again


def test_the_budget_benchmark_reports_calls_per_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = bench_budget.main(
        ["--workers", "2", "--requests", "40", "--rate", "6000", "--latency-ms", "5"]
    )

    printed = figures(capsys.readouterr().out)
    assert status == 0
    assert printed["budget_requests"] == "80"
    calls = int(printed["budget_dynamodb_calls"])
    assert float(printed["budget_dynamodb_calls_per_request"]) == pytest.approx(calls / 80, 1e-3)
