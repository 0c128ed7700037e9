"""The cost model's arithmetic: usage from measured figures and the template, dollars from the
price table. Not the size of the figures: those are the benchmark's to print."""

from __future__ import annotations

import datetime
from collections import Counter

import pytest

from bench import bench_cost
from bench.bench_cost import Facts, Item, Measured
from local.resources import load_template
from tests.support.metric_contract import emitted_series

pytestmark = pytest.mark.unit

FACTS = Facts(
    sync_rate_minutes=60,
    worker_memory_mb=1024,
    dispatcher_memory_mb=512,
    settings_memory_mb=512,
    worker_batch_size=5,
    worker_max_concurrency=5,
    log_retention_days=30,
    secrets=2,
    keys=1,
)


def measured(**changes: object) -> Measured:
    figures: dict[str, object] = {
        "noop_ms": 2000.0,
        "noop_calls": Counter({"dynamodb.GetItem": 3, "kms.Decrypt": 2, "sqs.SendMessage": 0}),
        "noop_rru": 10.0,
        "noop_wru": 4.0,
        "noop_log_bytes": 1000,
        "noop_emf_bytes": 500,
        "cold_ms": 1000.0,
        "cold_secret_reads": 1,
        "dispatch_ms_per_installation": 1.0,
        "dispatch_calls_per_installation": {"dynamodb": 0.001, "sqs": 0.1},
        "dispatch_rru_per_installation": 0.5,
        "settings_ms": 100.0,
        "settings_calls": Counter({"dynamodb.GetItem": 2, "kms.Decrypt": 1}),
        "settings_rru": 3.0,
        "settings_wru": 0.0,
        "stored_bytes": 1024**3 // 2,
        "run_series": frozenset({("Syncs", (("Outcome", "noop"),)), ("SyncRunDuration", ())}),
        "gauge_series": 6,
        "gauge_hours_share": 0.5,
        "metric_series_possible": 56,
    }
    figures.update(changes)
    return Measured(**figures)  # type: ignore[arg-type]


def items_by_name(items: list[Item]) -> dict[str, Item]:
    return {item.name: item for item in items}


def test_hourly_syncs_are_730_runs_a_month() -> None:
    assert FACTS.runs_per_month == 730
    assert Facts(**{**FACTS.__dict__, "sync_rate_minutes": 30}).runs_per_month == 1460


def test_worker_gb_seconds_are_runs_times_duration_times_memory_plus_shared_cold_starts() -> None:
    items = items_by_name(bench_cost.model(measured(), FACTS, installations=1000))

    # 730 no-op runs of 2 s at 1 GB, and 730 bursts x 5 cold starts of 1 s shared by 1,000.
    expected = 730 * 2.0 * 1.0 + 730 * 5 / 1000 * 1.0 * 1.0
    assert items["worker Lambda GB-s"].quantity == pytest.approx(expected)
    assert items["worker Lambda requests"].quantity == 730


def test_dynamodb_units_add_the_runs_the_dispatcher_share_and_one_page_view() -> None:
    items = items_by_name(bench_cost.model(measured(), FACTS, installations=1000))

    assert items["DynamoDB reads"].quantity == pytest.approx(730 * (10.0 + 0.5) + 3.0)
    assert items["DynamoDB writes"].quantity == pytest.approx(730 * 4.0)
    assert items["DynamoDB storage"].quantity == pytest.approx(0.5)
    assert items["KMS requests"].quantity == 730 * 2 + 1


def test_fixed_costs_of_a_deployment_are_shared_by_its_installations() -> None:
    many = items_by_name(bench_cost.model(measured(), FACTS, installations=1000))
    few = items_by_name(bench_cost.model(measured(), FACTS, installations=100))

    for name in (
        "KMS key",
        "Secrets Manager secrets",
        "CloudWatch metrics",
        "scheduler invocations",
    ):
        assert few[name].quantity == pytest.approx(10 * many[name].quantity)
    assert many["KMS key"].quantity == pytest.approx(1 / 1000)
    assert many["CloudWatch metrics"].quantity == pytest.approx(5 / 1000)
    assert few["DynamoDB writes"].quantity == many["DynamoDB writes"].quantity


def test_sqs_counts_the_dispatcher_share_the_mapping_and_its_idle_polls() -> None:
    items = items_by_name(bench_cost.model(measured(), FACTS, installations=1000))

    per_run = 0.1 + 2 / 5 + 0
    idle = 5 * 3 * 60 * 730 / 1000
    assert items["SQS requests"].quantity == pytest.approx(730 * per_run + idle)


def test_log_bytes_count_the_app_lines_the_emf_and_the_platform_lines() -> None:
    items = items_by_name(bench_cost.model(measured(), FACTS, installations=1000))

    per_run = 1000 + 500 + bench_cost.PLATFORM_LOG_BYTES
    ingested = (730 * per_run + bench_cost.PLATFORM_LOG_BYTES * (1 + 730 / 1000)) / 1024**3
    assert items["CloudWatch Logs ingestion"].quantity == pytest.approx(ingested)
    assert items["CloudWatch Logs storage"].quantity == pytest.approx(ingested)


def test_dollars_are_quantity_times_price_and_the_summary_adds_them() -> None:
    items = [
        Item("a", 2.0, "u", "p1", "knob a"),
        Item("b", 10.0, "u", "p2", "knob b"),
        Item("c", 1.0, "u", "p1", "knob c"),
        Item("d", 0.0, "u", "p2", "knob d"),
    ]
    priced = bench_cost.price(items, {"p1": 0.5, "p2": 0.01})

    assert [dollars for _, dollars in priced] == pytest.approx([1.0, 0.1, 0.5, 0.0])
    total = bench_cost.summary(priced, installations=1000)
    assert total["per_installation"] == pytest.approx(1.6)
    assert total["per_1000"] == pytest.approx(1600.0)
    assert [item.name for item, _ in total["biggest"]] == ["a", "c", "b"]


def test_every_item_has_a_price_in_every_region_and_a_knob() -> None:
    items = bench_cost.model(measured(), FACTS, installations=1000)
    for region in ("us-east-1", "eu-west-1"):
        prices, taken = bench_cost.load_prices(region)
        assert datetime.date.fromisoformat(taken)
        assert all(item.price in prices for item in items)
    assert all(item.knob for item in items)
    default, _ = bench_cost.load_prices()
    assert default == bench_cost.load_prices("us-east-1")[0]


def test_facts_come_from_the_template() -> None:
    template = load_template()
    facts = bench_cost.template_facts(template)

    worker = template["Resources"]["SyncWorkerFunction"]["Properties"]
    assert facts.worker_memory_mb == worker["MemorySize"]
    assert facts.dispatcher_memory_mb == template["Globals"]["Function"]["MemorySize"]
    assert facts.sync_rate_minutes == template["Parameters"]["SyncRateMinutes"]["Default"]
    assert facts.worker_batch_size == worker["Events"]["Queue"]["Properties"]["BatchSize"]
    assert facts.keys >= 1
    assert facts.secrets >= 2


def test_the_contract_counts_every_series_the_app_can_print() -> None:
    _, printable = emitted_series(load_template())

    assert bench_cost.metric_series_possible() == len(printable)
    gauge = {series for series in printable if series[0] == "Installations"}
    assert bench_cost.dispatch_run_series() == len(gauge)


def test_each_series_is_billed_for_the_hours_it_gets_data() -> None:
    run = measured()

    assert run.metric_series == pytest.approx(2 + 6 * 0.5)
    # The gauge: once in six hours on an hourly or faster schedule, every run of a slower one.
    assert bench_cost.gauge_hours_share(60) == pytest.approx(1 / 6)
    assert bench_cost.gauge_hours_share(5) == pytest.approx(1 / 6)
    assert bench_cost.gauge_hours_share(360) == pytest.approx(1 / 6)
    assert bench_cost.gauge_hours_share(720) == pytest.approx(1 / 12)
    items = items_by_name(bench_cost.model(run, FACTS, 10))
    assert items["CloudWatch metrics"].quantity == pytest.approx(5 / 10)


def test_the_series_and_bytes_come_from_the_emf_lines_printed() -> None:
    emf = (
        '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"PleoConnector",'
        '"Dimensions":[["Outcome","service"]],"Metrics":[{"Name":"Syncs","Unit":"Count"}]}]},'
        '"Outcome":"unchanged","service":"pleo-connector","Syncs":[1.0]}'
    )
    other = '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"PleoConnector",'
    other += '"Dimensions":[["service"]],"Metrics":[{"Name":"SyncRunDuration","Unit":'
    other += '"Milliseconds"},{"Name":"PleoRequests","Unit":"Count"}]}]},"service":"s",'
    other += '"SyncRunDuration":[5.0],"PleoRequests":[3.0]}'
    stdout = "\n".join([emf, '{"message": "not a metric"}', "plain text", other]) + "\n"

    series, size = bench_cost.printed_metrics(stdout)

    assert series == {
        ("Syncs", (("Outcome", "unchanged"), ("service", "pleo-connector"))),
        ("SyncRunDuration", (("service", "s"),)),
        ("PleoRequests", (("service", "s"),)),
    }
    assert size == len(emf) + 1 + len(other) + 1


# --- a full-reconcile interval -------------------------------------------------------------------


def test_one_run_an_interval_reads_pleo_in_full_and_at_zero_every_run_does() -> None:
    assert bench_cost.full_share(60, 24) == pytest.approx(1 / 24)
    assert bench_cost.full_share(15, 1) == pytest.approx(1 / 4)
    assert bench_cost.full_share(60, 0.5) == 1.0  # an interval shorter than the schedule
    assert bench_cost.full_share(60, 0) == 1.0


def test_the_typical_run_mixes_the_full_and_the_skipping_run_by_their_share() -> None:
    full = measured()
    skipping = bench_cost.RunFigures(
        ms=100.0,
        calls={"dynamodb.GetItem": 1, "kms.Decrypt": 1, "dynamodb.PutItem": 1},
        rru=2.0,
        wru=3.0,
        log_bytes=200,
        emf_bytes=300,
        pleo_requests=0,
        series=frozenset({("Syncs", (("Outcome", "unchanged"),)), ("SyncRunDuration", ())}),
    )

    typical = bench_cost.with_unchanged_runs(full, skipping, 0.25)

    assert typical.noop_ms == pytest.approx(0.25 * 2000 + 0.75 * 100)
    assert typical.noop_calls["kms.Decrypt"] == pytest.approx(0.25 * 2 + 0.75 * 1)
    assert typical.noop_calls["dynamodb.PutItem"] == pytest.approx(0.75)
    assert typical.noop_rru == pytest.approx(0.25 * 10 + 0.75 * 2)
    assert typical.noop_wru == pytest.approx(0.25 * 4 + 0.75 * 3)
    assert typical.noop_log_bytes == pytest.approx(400)
    assert typical.run_series == full.run_series | skipping.series
    assert typical.metric_series == full.metric_series + 1
    # Everything not per run stays as measured.
    assert (typical.cold_ms, typical.stored_bytes) == (full.cold_ms, full.stored_bytes)
    assert bench_cost.with_unchanged_runs(full, skipping, 1.0).metric_series == full.metric_series


def test_the_bill_splits_into_what_each_installation_brings_and_what_they_share() -> None:
    prices, _ = bench_cost.load_prices("us-east-1")
    run = measured()

    variable, fixed = bench_cost.variable_and_fixed(run, FACTS, prices)

    for installations in (1, 10, 1000, 25_000):
        priced = bench_cost.price(bench_cost.model(run, FACTS, installations), prices)
        total = bench_cost.summary(priced, installations)["per_installation"]
        assert total == pytest.approx(variable + fixed / installations)
    # The key and the two secrets alone are shared: the fixed part holds at least them.
    shared = FACTS.keys * prices["kms_key_month"] + 2 * prices["secrets_manager_secret_month"]
    assert fixed >= shared


def test_the_target_is_met_from_the_size_whose_share_of_the_fixed_costs_fits_in_it() -> None:
    target = bench_cost.TARGET_PER_INSTALLATION

    needed = bench_cost.installations_for_target(target / 2, 10.0)

    assert needed == 2000  # 10 / (target - target / 2) with a target of 0.01
    assert needed is not None
    assert target / 2 + 10.0 / needed <= target
    assert target / 2 + 10.0 / (needed - 1) > target
    assert bench_cost.installations_for_target(target, 1.0) is None
    assert bench_cost.installations_for_target(target * 2, 0.0) is None
