"""The first-request benchmark runs each function through its probe, beside a baseline with the
same environment, and splits each worker's time into the probe's items and the app's rest."""

from __future__ import annotations

import pytest

from bench import bench_first_request
from bench.bench_cold_start import VARIANTS
from local.function_spec import FunctionSpec

pytestmark = pytest.mark.unit

SPEC = FunctionSpec(
    name="SettingsFunction",
    handler="app.handler",
    code_dir="/code/settings",
    layer_dirs=("/layers/shared",),
    runtime="python3.13",
    timeout_s=15,
    memory_mb=512,
    environment={"TABLE_NAME": "table"},
)


def test_the_probe_goes_in_front_of_the_layers_and_the_real_handler_is_named_to_it() -> None:
    probed = bench_first_request.probed(SPEC)

    assert probed.handler == "bench_probe.handler"
    assert probed.layer_dirs == (str(bench_first_request.PROBE_DIR), "/layers/shared")
    assert (bench_first_request.PROBE_DIR / "bench_probe.py").exists()
    row = bench_first_request.Row("SettingsFunction", SPEC, {}, VARIANTS[0])
    environment = bench_first_request.probe_environment(lambda spec: {"A": "1"}, row, "out")  # type: ignore[arg-type]
    assert environment(probed) == {"A": "1", "BENCH_PROBE_HANDLER": "app.handler",
                                   "BENCH_PROBE_OUT": "out"}  # fmt: skip


def test_the_baseline_keeps_the_environment_and_drops_the_layers() -> None:
    baseline = bench_first_request.baseline_spec(SPEC)

    assert baseline.environment == SPEC.environment
    assert baseline.layer_dirs == ()
    assert (bench_first_request.BASELINE_DIR / "app.py").exists()


def test_the_rest_is_what_the_probed_items_leave_of_each_phase() -> None:
    row = bench_first_request.Row("SettingsFunction", SPEC, {}, VARIANTS[0])
    row.inits, row.firsts = [100.0, 120.0, 110.0], [50.0, 70.0, 60.0]
    row.probes = [
        {"init_ms": 100.0, "first_ms": 50.0, "init": {}, "first": {"dynamodb calls": 10.0}},
        {"init_ms": 120.0, "first_ms": 70.0, "init": {"import boto3/botocore": 20.0},
         "first": {"dynamodb calls": 30.0}},
        {"init_ms": 110.0, "first_ms": 60.0, "init": {}, "first": {"dynamodb calls": 20.0}},
    ]  # fmt: skip

    assert row.colds == [150.0, 190.0, 170.0]
    assert row.item_median("dynamodb calls") == 20.0
    assert row.item_median("import boto3/botocore") == 0.0
    assert row.rest_median("init") == 100.0
    assert row.rest_median("first") == 40.0


def test_the_stack_row_keeps_the_layers_and_the_environment_and_runs_its_own_code() -> None:
    stack = bench_first_request.stack_spec(SPEC)

    assert stack.environment == SPEC.environment
    assert stack.layer_dirs == SPEC.layer_dirs
    assert stack.code_dir == str(bench_first_request.STACK_DIR)
    assert (bench_first_request.STACK_DIR / "app.py").exists()


def _measured(name: str, spec: FunctionSpec, colds: list[float]) -> bench_first_request.Row:
    row = bench_first_request.Row(name, spec, {}, VARIANTS[0])
    row.inits, row.firsts, row.warms = [cold - 10.0 for cold in colds], [10.0] * 3, [1.0] * 3
    row.probes = [{"init_ms": 0.0, "first_ms": 0.0, "init": {}, "first": {}, "calls": {}}] * 3
    return row


def test_the_report_sets_each_function_against_the_baseline_and_against_the_stack() -> None:
    rows = [
        _measured(bench_first_request.BASELINE, SPEC, [200.0, 190.0, 210.0]),
        _measured(bench_first_request.STACK, SPEC, [300.0, 310.0, 290.0]),
        _measured("SettingsFunction", SPEC, [450.0, 460.0, 440.0]),
    ]

    lines = bench_first_request.report(rows, 3)

    assert "bench: first_request.baseline.cold_median = 200.0 ms" in lines
    assert "bench: first_request.stack.ratio_to_baseline = 1.50 x" in lines
    assert "bench: first_request.SettingsFunction.ratio_to_baseline = 2.25 x" in lines
    assert "bench: first_request.SettingsFunction.ratio_to_stack = 1.50 x" in lines
    assert not any(line.startswith("bench: first_request.stack.init_median") for line in lines)
