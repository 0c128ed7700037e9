"""The cost model: AWS usage and dollars per installation-month for a typical installation.

A typical installation syncs on the template's schedule (hourly), and nearly every run is a no-op:
the accounting system did not change. Its size is the sync benchmarks' (bench_first_sync.py):
about 10,000 entities. What one run costs is measured with the real code on the local stand-ins
(DynamoDB Local, moto's server, the Pleo emulator):

- the worker's handler (functions/sync_worker/app.py) runs one no-op sync of an API-key
  installation, after a first sync that filled Pleo, with Pleo answering 200 ms late and the
  template's rate budget; its duration, every AWS call (a hook on botocore), the DynamoDB request
  units DynamoDB Local reports (ReturnConsumedCapacity) and the bytes it logs are recorded;
- one dispatch of `--dispatch` installations (the dispatcher's composition root) gives the
  dispatcher's share per installation;
- one settings page view (the settings function's view and page, as GET /settings builds them)
  per month;
- a fresh interpreter imports the worker's handler and builds its clients: the cold-start
  surcharge, paid once per worker environment, shared by the installations it serves.

Metrics: the model counts the series the measured runs printed (their EMF lines, as the worker's
handler printed them; billed per month whatever the number of installations, since no dimension
names an installation), and their bytes. The dispatcher's `Installations` gauge is counted from
the contract (a series for each status, the most a deployment has), for the hours it gets data
(one in each window of sync/dispatcher.py's `GAUGE_WINDOW_S`). A dispatch's own EMF lines, shared
by every installation, are left out.

The counts are multiplied by the list prices of bench/prices.toml (one table per region, with the
date they were taken). It prints `$ per installation-month`, `$ per 1,000 installations`, the
three biggest items, and for every item the knob that moves it.

The installation's source is a JSON snapshot by default (its location is a secret: a URL may
carry a token, so each run decrypts it); `--adapter gnucash` measures a GnuCash book of the same
size instead, whose location is stored in the clear.

Run with `.venv/bin/python -m bench.bench_cost [--entities 10000] [--installations 1000]
[--region us-east-1] [--adapter json|gnucash]`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
PRICES = Path(__file__).resolve().parent / "prices.toml"
TARGET_PER_INSTALLATION = 0.01
HOURS_PER_MONTH = 730
GB = 1024**3
# Lambda's own lines per invocation in the JSON log format (platform.start, platform.report, with
# the request id, durations and memory): about 450 bytes, as such lines usually measure.
PLATFORM_LOG_BYTES = 450
# The SQS event source mapping long-polls (20 s) with a few pollers even when the queue is empty.
SQS_POLLERS = 5
SQS_LONG_POLL_S = 20
PLEO_LATENCY_MS = 200

Series = tuple[str, tuple[tuple[str, str], ...]]  # a metric's name and its dimensions, sorted


# ---------------------------------------------------------------------------------------------
# The model: pure arithmetic, tested by tests/unit/bench/test_bench_cost.py
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Facts:
    """What template.yaml says about the functions and resources the model prices."""

    sync_rate_minutes: int
    worker_memory_mb: int
    dispatcher_memory_mb: int
    settings_memory_mb: int
    worker_batch_size: int
    worker_max_concurrency: int
    log_retention_days: int
    secrets: int
    keys: int

    @property
    def runs_per_month(self) -> float:
        return HOURS_PER_MONTH * 60 / self.sync_rate_minutes


@dataclass
class Measured:
    """What the stand-ins measured: one no-op run, a dispatcher share, a settings page view."""

    noop_ms: float
    noop_calls: Mapping[str, float]
    noop_rru: float
    noop_wru: float
    noop_log_bytes: float
    noop_emf_bytes: float
    cold_ms: float
    cold_secret_reads: int
    dispatch_ms_per_installation: float
    dispatch_calls_per_installation: dict[str, float]
    dispatch_rru_per_installation: float
    settings_ms: float
    settings_calls: Counter[str]
    settings_rru: float
    settings_wru: float
    stored_bytes: int
    # The series the measured run printed, each fed every hour; the gauge's series (one a status)
    # and the share of hours they get data; all the series the contract allows.
    run_series: frozenset[Series]
    gauge_series: int
    gauge_hours_share: float
    metric_series_possible: int
    extra: dict[str, float] = field(default_factory=dict)

    def calls(self, counter: Mapping[str, float], service: str) -> float:
        return sum(count for name, count in counter.items() if name.startswith(f"{service}."))

    @property
    def metric_series(self) -> float:
        """Metric-months a month: CloudWatch bills each series for the hours it gets data."""
        return len(self.run_series) + self.gauge_series * self.gauge_hours_share


@dataclass(frozen=True)
class RunFigures:
    """One measured run that skipped an unchanged source (`FullReconcileHours` above 0)."""

    ms: float
    calls: Mapping[str, float]
    rru: float
    wru: float
    log_bytes: float
    emf_bytes: float
    pleo_requests: int
    series: frozenset[Series] = frozenset()


def full_share(sync_rate_minutes: float, full_reconcile_hours: float) -> float:
    """The share of scheduled runs that read Pleo in full: one per interval, or all at 0."""
    if full_reconcile_hours <= 0:
        return 1.0
    return min(1.0, sync_rate_minutes / (full_reconcile_hours * 60))


def with_unchanged_runs(m: Measured, unchanged: RunFigures, share: float) -> Measured:
    """The typical run when `share` of them are the measured full no-op run and the rest skip an
    unchanged source: each per-run figure is the mix of the two, and the series are both runs'
    (the unchanged run's own: Syncs by the outcome `unchanged`)."""

    def mix(full: float, skipped: float) -> float:
        return share * full + (1 - share) * skipped

    names = set(m.noop_calls) | set(unchanged.calls)
    return replace(
        m,
        noop_ms=mix(m.noop_ms, unchanged.ms),
        noop_calls=Counter(
            {n: mix(m.noop_calls.get(n, 0), unchanged.calls.get(n, 0)) for n in names}
        ),
        noop_rru=mix(m.noop_rru, unchanged.rru),
        noop_wru=mix(m.noop_wru, unchanged.wru),
        noop_log_bytes=mix(m.noop_log_bytes, unchanged.log_bytes),
        noop_emf_bytes=mix(m.noop_emf_bytes, unchanged.emf_bytes),
        run_series=m.run_series | unchanged.series if share < 1 else m.run_series,
    )


@dataclass(frozen=True)
class Item:
    """One line of the bill, per installation-month: a quantity times one price of the table."""

    name: str
    quantity: float
    unit: str
    price: str
    knob: str


def model(measured: Measured, facts: Facts, installations: int) -> list[Item]:
    """Usage per installation-month. Fixed costs of a deployment (keys, secrets, metrics, the
    pollers) are shared by `installations`."""
    runs = facts.runs_per_month
    m = measured
    worker_gb = facts.worker_memory_mb / 1024
    # Worker environments live while the hourly burst of messages lasts and are gone an hour later:
    # each burst starts at most MaximumConcurrency of them, shared by every installation.
    cold_starts = runs * facts.worker_max_concurrency / installations
    dispatch_runs = runs / installations
    logs_gb = (
        runs * (m.noop_log_bytes + m.noop_emf_bytes + PLATFORM_LOG_BYTES)
        + PLATFORM_LOG_BYTES  # one page view: its platform lines
        + dispatch_runs * PLATFORM_LOG_BYTES
    ) / GB
    sqs_per_run = (
        m.dispatch_calls_per_installation.get("sqs", 0.0)  # the dispatcher's SendMessageBatch
        + 2 / facts.worker_batch_size  # the mapping's ReceiveMessage and DeleteMessageBatch
        + m.calls(m.noop_calls, "sqs")  # the worker's own (continuations)
    )
    idle_polls = SQS_POLLERS * (60 / SQS_LONG_POLL_S) * 60 * HOURS_PER_MONTH / installations
    secret_calls = (
        runs * m.calls(m.noop_calls, "secretsmanager")
        + cold_starts * m.cold_secret_reads
        + m.calls(m.settings_calls, "secretsmanager")
    )
    return [
        Item(
            "worker Lambda GB-s",
            runs * m.noop_ms / 1000 * worker_gb + cold_starts * m.cold_ms / 1000 * worker_gb,
            "GB-s",
            "lambda_gb_second_arm64",
            "SyncWorkerFunction MemorySize, SyncRateMinutes, the no-op run's Pleo reads",
        ),
        Item(
            "worker Lambda requests",
            runs,
            "requests",
            "lambda_request",
            "SyncRateMinutes",
        ),
        Item(
            "dispatcher Lambda GB-s",
            runs * m.dispatch_ms_per_installation / 1000 * facts.dispatcher_memory_mb / 1024,
            "GB-s",
            "lambda_gb_second_arm64",
            "SyncDispatcherFunction MemorySize, SyncRateMinutes",
        ),
        Item(
            "dispatcher Lambda requests",
            dispatch_runs,
            "requests",
            "lambda_request",
            "SyncRateMinutes (shared by every installation)",
        ),
        Item(
            "scheduler invocations",
            dispatch_runs,
            "invocations",
            "scheduler_invocation",
            "SyncRateMinutes (shared by every installation)",
        ),
        Item(
            "settings page views (Lambda GB-s)",
            m.settings_ms / 1000 * facts.settings_memory_mb / 1024,
            "GB-s",
            "lambda_gb_second_arm64",
            "views a month, SettingsFunction MemorySize",
        ),
        Item(
            "settings page views (Lambda requests)",
            1,
            "requests",
            "lambda_request",
            "views a month",
        ),
        Item("settings page views (HTTP API)", 1, "requests", "http_api_request", "views a month"),
        Item(
            "DynamoDB reads",
            runs * (m.noop_rru + m.dispatch_rru_per_installation) + m.settings_rru,
            "RRU",
            "dynamodb_read_request_unit",
            "reads a run makes (lease, runs, ownership, rate budget), SyncRateMinutes",
        ),
        Item(
            "DynamoDB writes",
            runs * m.noop_wru + m.settings_wru,
            "WRU",
            "dynamodb_write_request_unit",
            "items a run writes (lease, run record, budget blocks), SyncRateMinutes",
        ),
        Item(
            "DynamoDB storage",
            m.stored_bytes / GB,
            "GB-month",
            "dynamodb_storage_gb_month",
            "ownership items per entity (size of each)",
        ),
        Item(
            "DynamoDB PITR",
            m.stored_bytes / GB,
            "GB-month",
            "dynamodb_pitr_gb_month",
            "PointInTimeRecoveryEnabled, item sizes",
        ),
        Item(
            "SQS requests",
            runs * sqs_per_run + idle_polls,
            "requests",
            "sqs_request",
            "BatchSize, the event source mapping's pollers, SyncRateMinutes",
        ),
        Item(
            "KMS requests",
            runs * m.calls(m.noop_calls, "kms") + m.calls(m.settings_calls, "kms"),
            "requests",
            "kms_request",
            "decrypts a run makes (credentials, connection), SyncRateMinutes",
        ),
        Item(
            "KMS key",
            facts.keys / installations,
            "key-months",
            "kms_key_month",
            "installations per deployment",
        ),
        Item(
            "Secrets Manager calls",
            secret_calls,
            "calls",
            "secrets_manager_api_call",
            "the secrets cache (reads per cold start)",
        ),
        Item(
            "Secrets Manager secrets",
            facts.secrets / installations,
            "secret-months",
            "secrets_manager_secret_month",
            "installations per deployment",
        ),
        Item(
            "CloudWatch Logs ingestion",
            logs_gb,
            "GB",
            "logs_ingested_gb",
            "POWERTOOLS_LOG_LEVEL (lines per no-op run), EMF lines, SyncRateMinutes",
        ),
        Item(
            "CloudWatch Logs storage",
            logs_gb * facts.log_retention_days / 30,
            "GB-month",
            "logs_stored_gb_month",
            "LogRetentionDays",
        ),
        Item(
            "CloudWatch metrics",
            m.metric_series / installations,
            "metric-months",
            "metric_month",
            "series the runs print, each billed for the hours it gets data (shared by every "
            "installation: no dimension names one); the Installations gauge's window",
        ),
    ]


def price(items: list[Item], prices: Mapping[str, float]) -> list[tuple[Item, float]]:
    """Each item with its dollars: quantity times its unit price."""
    return [(item, item.quantity * prices[item.price]) for item in items]


def summary(priced: list[tuple[Item, float]], installations: int) -> dict[str, Any]:
    """Dollars per installation-month, per 1,000 installations, and the three biggest items."""
    per_installation = sum(dollars for _, dollars in priced)
    biggest = sorted(priced, key=lambda pair: pair[1], reverse=True)[:3]
    return {
        "per_installation": per_installation,
        "per_1000": per_installation * 1000,
        "installations": installations,
        "biggest": biggest,
    }


def load_prices(region: str | None = None, path: Path = PRICES) -> tuple[dict[str, float], str]:
    """The price table of `region` (the file's default when None) and the date it was taken."""
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    chosen = region or str(document["default_region"])
    return {key: float(value) for key, value in document[chosen].items()}, str(document["taken"])


def template_facts(template: Mapping[str, Any]) -> Facts:
    """The figures of template.yaml the model needs (defaults of the parameters)."""
    globals_ = template["Globals"]["Function"]
    resources = template["Resources"]

    def memory(name: str) -> int:
        return int(resources[name]["Properties"].get("MemorySize", globals_["MemorySize"]))

    queue = resources["SyncWorkerFunction"]["Properties"]["Events"]["Queue"]["Properties"]
    return Facts(
        sync_rate_minutes=int(template["Parameters"]["SyncRateMinutes"]["Default"]),
        worker_memory_mb=memory("SyncWorkerFunction"),
        dispatcher_memory_mb=memory("SyncDispatcherFunction"),
        settings_memory_mb=memory("SettingsFunction"),
        worker_batch_size=int(queue["BatchSize"]),
        worker_max_concurrency=int(queue["ScalingConfig"]["MaximumConcurrency"]),
        log_retention_days=int(template["Parameters"]["LogRetentionDays"]["Default"]),
        secrets=sum(r["Type"] == "AWS::SecretsManager::Secret" for r in resources.values()),
        keys=sum(r["Type"] == "AWS::KMS::Key" for r in resources.values()),
    )


def metric_series_possible() -> int:
    """Every series the metric contract allows (each name x each combination of its bounded
    dimensions, all with `service`): what CloudWatch would bill if each got data every hour."""
    from pleo_connector.vocabulary import Action, AuthMethod, Kind, SyncOutcome

    installs = len(AuthMethod) * 3  # Outcome = installed | refused | failed
    records = len(Kind) * (len(Action) + 1)  # plus Action=failed
    single = ["Activations", "SyncRunDuration", "PleoRequests", "Pleo429s"]
    single += ["BudgetDynamoDBCalls", "InstallationsStopped"]
    return installs + len(SyncOutcome) + records + len(single) + dispatch_run_series()


def dispatch_run_series() -> int:
    """What the dispatcher's gauge can print per the contract: one series per status (a status
    with no installation gets no point)."""
    from pleo_connector.vocabulary import InstallationStatus

    return len(InstallationStatus)


def gauge_hours_share(sync_rate_minutes: int) -> float:
    """The share of hours the `Installations` gauge gets data: one run in each gauge window
    sends it, or every run when the schedule's period is a window or longer."""
    from pleo_connector.sync.dispatcher import GAUGE_WINDOW_S

    return 3600 / max(GAUGE_WINDOW_S, sync_rate_minutes * 60)


def printed_metrics(stdout: str) -> tuple[frozenset[Series], int]:
    """The series of the EMF lines in `stdout` (metric name and its dimensions, sorted), and the
    bytes of those lines."""
    series: set[Series] = set()
    size = 0
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if "_aws" not in entry:
            continue
        size += len(line.encode()) + 1
        for directive in entry["_aws"]["CloudWatchMetrics"]:
            for names in directive["Dimensions"]:
                dimensions = tuple(sorted((name, str(entry[name])) for name in names))
                series.update((metric["Name"], dimensions) for metric in directive["Metrics"])
    return frozenset(series), size


# ---------------------------------------------------------------------------------------------
# Measuring on the stand-ins
# ---------------------------------------------------------------------------------------------
class CallCounter:
    """Every botocore API call of this process, by service.operation, and the DynamoDB request
    units DynamoDB Local reports for each (ReturnConsumedCapacity is asked on every call)."""

    CAPACITY_OPERATIONS = frozenset(
        {
            "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
            "BatchWriteItem", "TransactWriteItems", "TransactGetItems",
        }
    )  # fmt: skip
    WRITES = frozenset(
        {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
    )

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.rru = 0.0
        self.wru = 0.0
        self._original: Any = None

    def install(self) -> None:
        import botocore.client

        original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009
        self._original = original
        counter = self

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            counter.calls[f"{service}.{operation}"] += 1
            if service == "dynamodb" and operation in counter.CAPACITY_OPERATIONS:
                params = {**params, "ReturnConsumedCapacity": "TOTAL"}
            answer = original(client, operation, params)
            if service == "dynamodb":
                counter.book(operation, answer.get("ConsumedCapacity"))
            return answer

        setattr(botocore.client.BaseClient, "_make_api_call", counted)  # noqa: B010

    def uninstall(self) -> None:
        import botocore.client

        setattr(botocore.client.BaseClient, "_make_api_call", self._original)  # noqa: B010

    def book(self, operation: str, consumed: Any) -> None:
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        units = sum(float(entry.get("CapacityUnits", 0.0)) for entry in entries)
        if not entries:
            units = 1.0  # no figure reported: the least a request costs
        if operation in self.WRITES:
            self.wru += units
        else:
            self.rru += units

    def reset(self) -> None:
        self.calls.clear()
        self.rru = self.wru = 0.0


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    from pleo_connector.aws import forget_clients
    from pleo_connector.config import clear_settings_cache

    saved = dict(os.environ)
    os.environ.update(env)
    forget_clients()
    clear_settings_cache()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        forget_clients()
        clear_settings_cache()


def load_function(directory: str) -> ModuleType:
    """A function's handler module, imported from its code directory under a name of its own."""
    path = ROOT / "functions" / directory / "app.py"
    spec = importlib.util.spec_from_file_location(f"bench_cost_{directory}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """What the app's logger writes (to stdout, as on Lambda), captured."""
    from pleo_connector.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def sqs_event(installation_id: str, queue_arn: str) -> dict[str, Any]:
    body = json.dumps({"installation_id": installation_id, "reason": "scheduled"})
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "bench",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "eu-west-1",
            }
        ]
    }


def cold_start_ms(env: Mapping[str, str]) -> tuple[float, int]:
    """A fresh interpreter: the worker's handler imported, boto3 imported and the clients a run
    uses built, and the secret reads that costs (none for the sync worker's API keys)."""
    script = (
        "import sys, time\n"
        f"sys.path[:0] = [{str(ROOT / 'functions' / 'sync_worker')!r}, {str(LAYER)!r}]\n"
        "t = time.perf_counter()\n"
        "import app\n"
        "from pleo_connector.aws import aws_client\n"
        "for service in ('dynamodb', 'kms', 'sqs'):\n"
        "    aws_client(service)\n"
        "print((time.perf_counter() - t) * 1000)\n"
    )
    samples = []
    for _ in range(5):
        result = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        samples.append(float(result.stdout.strip().splitlines()[-1]))
    samples.sort()
    return samples[len(samples) // 2], 0


def stored_bytes(table: Any, installation_id: str) -> int:
    """The installation's items as DynamoDB sizes them (names plus values, roughly), and 100
    bytes of overhead per item that its index and bookkeeping add."""
    total = 0
    for item in table.query(
        key_condition="pk = :pk", values={":pk": {"S": f"INST#{installation_id}"}}
    ):
        total += 100 + sum(len(name.encode()) + _value_size(value) for name, value in item.items())
    return total


def _value_size(value: Any) -> int:
    """Bytes of one attribute value, as DynamoDB counts them, near enough: strings and binary by
    their length, numbers by their digits, lists and maps by their parts."""
    if isinstance(value, dict):
        return sum(len(str(key).encode()) + _value_size(part) for key, part in value.items())
    if isinstance(value, list):
        return sum(_value_size(part) for part in value)
    if isinstance(value, bytes):
        return len(value)
    return len(str(value).encode())


ADAPTERS = ("json", "gnucash")


def measure(
    entities: int,
    dispatch_count: int,
    budget_per_min: int,
    adapter: str = "json",
    sync_rate_minutes: int = 60,
) -> tuple[Measured, dict[str, Any]]:
    """Runs the stand-ins and the real code; see the module's docstring."""
    import boto3

    from bench.bench_dispatcher import batch_write, installation_items
    from local.pleo_emulator.control_client import EmulatorControl, is_write
    from local.pleo_emulator.launcher import start_pleo_emulator
    from local.resources import create_all
    from local.services import aws_endpoint_env, free_port, start_dynamodb_local, start_moto_server
    from pleo_connector.store.dynamodb import DynamoTable
    from tests.integration.sync.engine_world import (
        install,
        install_gnucash,
        snapshot,
        sync_once,
        worker,
    )

    notes: dict[str, Any] = {}
    counter = CallCounter()
    with contextlib.ExitStack() as stack:
        stack.enter_context(captured_logs())  # the setup's lines are not the run's
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cost-")))
        dynamodb = start_dynamodb_local(free_port(), logs)
        stack.callback(dynamodb.stop)
        moto = start_moto_server(free_port(), logs)
        stack.callback(moto.stop)
        emulator = start_pleo_emulator(free_port(), logs)
        stack.callback(emulator.stop)
        control = EmulatorControl(emulator.url)
        stack.callback(control.close)
        control.reset()
        control.set_rate_limit(None)
        resources = create_all(dynamodb.url, moto.url, prefix="bench-cost")
        template_env = {
            **aws_endpoint_env(dynamodb.url, moto.url),
            "TABLE_NAME": resources.tables["Table"],
            "KMS_KEY_ID": resources.keys["CredentialsKey"],
            "SYNC_QUEUE_URL": resources.queue_urls["SyncQueue"],
            "PLEO_AUTH_URL": emulator.url,
            "PLEO_API_URL": emulator.url,
            "PLEO_ISSUER": emulator.url,
            "PLEO_CLIENT_ID": "bench-cost",
            "PLEO_CLIENT_SECRET_ID": resources.secrets["PleoClientSecret"],
            "SESSION_SECRET_ID": resources.secrets["SessionSigningKey"],
            "PUBLIC_BASE_URL": "http://127.0.0.1:3000",
            "PLEO_RATE_BUDGET_PER_MIN": str(budget_per_min),
            "ADAPTER": adapter,
            "ALLOW_LOCAL_SOURCES": "true",
            "POWERTOOLS_SERVICE_NAME": "pleo-connector",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "AWS_LAMBDA_FUNCTION_NAME": "pleo-connector-SyncWorkerFunction",
        }
        stack.enter_context(environment(template_env))
        client = boto3.session.Session().client("dynamodb")
        table = DynamoTable(template_env["TABLE_NAME"], client=client)

        # An installation of the typical size, synced once (fast: no latency, a big budget).
        company = str(control.seed_company(f"Bench {uuid.uuid4().hex[:6]} A/S")["id"])
        api_key = control.issue_api_key(company)
        if adapter == "gnucash":
            source, notes["entities"] = _gnucash_book(logs / "book.gnucash", entities)
        else:
            source = logs / "snapshot.json"
            tags = max(1, (entities - 2) * 4947 // 10_000 // 2)
            document = snapshot(
                tags=tags,
                tax_codes=max(1, entities // 100),
                vendors=max(1, entities * 2968 // 10_000),
                accounts=max(1, entities * 1980 // 10_000),
            )
            source.write_text(json.dumps(document), encoding="utf-8")
            notes["entities"] = sum(1 + len(group["tags"]) for group in document["tagGroups"])
            notes["entities"] += sum(
                len(document[kind]) for kind in ("taxCodes", "vendors", "accounts")
            )
        installed = install_gnucash if adapter == "gnucash" else install
        world = installed(dict(os.environ), table, company, api_key, source)
        notes["adapter"] = adapter
        fast = {**template_env, "PLEO_RATE_BUDGET_PER_MIN": "100000"}
        with environment(fast):
            deps, _ = worker(fast)
            first = sync_once(deps, world.installation_id, 600)
        notes["first_sync_outcome"] = str(first)

        # The no-op run, through the worker's handler, as Pleo answers over the internet.
        control.inject_fault("latency", latency_ms=PLEO_LATENCY_MS, rate=1.0)
        worker_module = load_function("sync_worker")
        event = sqs_event(world.installation_id, resources.queue_arns["SyncQueue"])
        _timed_invocation(worker_module, event)  # builds deps; a no-op already
        counter.install()
        stack.callback(counter.uninstall)
        control.clear_request_log()
        answer, noop_ms, log, emf = _timed_invocation(worker_module, event)
        if answer.get("batchItemFailures"):
            raise RuntimeError(f"the no-op run failed: {answer}")
        notes["noop_outcome"] = _outcome_of(log.getvalue())
        noop_calls, noop_rru, noop_wru = Counter(counter.calls), counter.rru, counter.wru
        noop_log_bytes = len(log.getvalue().encode())
        noop_series, noop_emf_bytes = printed_metrics(emf)
        pleo_counts = control.counters()
        notes["noop_pleo_requests"] = sum(pleo_counts.values())
        notes["noop_pleo_writes"] = sum(
            count for name, count in pleo_counts.items() if is_write(name)
        )

        # The same run once more, as it goes with a full-reconcile interval: the run above was
        # complete and clean, so this one finds the snapshot unchanged and skips Pleo.
        from pleo_connector.config import _cached

        with environment({"SYNC_FULL_RECONCILE_HOURS": "24"}):
            _cached.cache_clear()
            worker_module.deps.cache_clear()
            worker_module.deps()
            counter.reset()
            control.clear_request_log()
            answer, unchanged_ms, log, emf = _timed_invocation(worker_module, event)
            if answer.get("batchItemFailures") or _outcome_of(log.getvalue()) != "unchanged":
                raise RuntimeError(f"the run with an interval did not skip: {log.getvalue()}")
            unchanged_series, unchanged_emf_bytes = printed_metrics(emf)
            unchanged = RunFigures(
                ms=unchanged_ms,
                calls=Counter(counter.calls),
                rru=counter.rru,
                wru=counter.wru,
                log_bytes=len(log.getvalue().encode()),
                emf_bytes=unchanged_emf_bytes,
                pleo_requests=sum(control.counters().values()),
                series=unchanged_series,
            )
        _cached.cache_clear()
        worker_module.deps.cache_clear()
        control.clear_faults()
        stored = stored_bytes(table, world.installation_id)

        # The settings page, as GET /settings builds it for a signed-in person.
        settings_module = load_function("settings")
        function = settings_module.deps()
        settings_module._view(function, world.installation_id, "csrf")  # warm: templates, secret
        counter.reset()
        started = time.perf_counter()
        view = settings_module._view(function, world.installation_id, "csrf")
        settings_module.settings_page(view, site=function.web.site)
        settings_ms = (time.perf_counter() - started) * 1000
        settings_calls, settings_rru, settings_wru = (
            Counter(counter.calls),
            counter.rru,
            counter.wru,
        )

        # One dispatch of many installations: the dispatcher's share of each.
        from pleo_connector.composition.roots import build_dispatcher
        from pleo_connector.config import DispatcherFunctionSettings, load_settings
        from pleo_connector.sync.dispatcher import dispatch

        batch_write(client, template_env["TABLE_NAME"], installation_items(dispatch_count, 0))
        dispatcher = build_dispatcher(load_settings(DispatcherFunctionSettings, template_env))
        counter.reset()
        started = time.perf_counter()
        done = dispatch(dispatcher)
        dispatch_ms = (time.perf_counter() - started) * 1000
        sent = done.dispatched
        dispatch_calls = {
            service: sum(n for name, n in counter.calls.items() if name.startswith(service + "."))
            / sent
            for service in ("dynamodb", "sqs")
        }
        dispatch_rru = counter.rru / sent
        counter.uninstall()
        cold_ms, cold_secret_reads = cold_start_ms(template_env)

    measured = Measured(
        noop_ms=noop_ms,
        noop_calls=noop_calls,
        noop_rru=noop_rru,
        noop_wru=noop_wru,
        noop_log_bytes=noop_log_bytes,
        noop_emf_bytes=noop_emf_bytes,
        cold_ms=cold_ms,
        cold_secret_reads=cold_secret_reads,
        dispatch_ms_per_installation=dispatch_ms / sent,
        dispatch_calls_per_installation=dispatch_calls,
        dispatch_rru_per_installation=dispatch_rru,
        settings_ms=settings_ms,
        settings_calls=settings_calls,
        settings_rru=settings_rru,
        settings_wru=settings_wru,
        stored_bytes=stored,
        run_series=noop_series,
        gauge_series=dispatch_run_series(),
        gauge_hours_share=gauge_hours_share(sync_rate_minutes),
        metric_series_possible=metric_series_possible(),
    )
    notes["dispatched"] = sent
    notes["unchanged"] = unchanged
    return measured, notes


def _gnucash_book(path: Path, entities: int) -> tuple[Path, int]:
    """A GnuCash book of about `entities` records (the GnuCash bench's mix), and their count
    (the records plus its two dimensions and three tax tables)."""
    from local.gnucash_books import large_counts, write_large_book

    write_large_book(path, entities)
    return path, sum(large_counts(entities).values()) + 2 + 3


def _timed_invocation(
    worker_module: ModuleType, event: dict[str, Any]
) -> tuple[dict[str, Any], float, io.StringIO, str]:
    """One invocation of the worker's handler, as Lambda makes it: its answer, its time in ms,
    what it logged, and what else it printed (its EMF lines)."""
    from local.lambda_runtime import LambdaContext

    printed = io.StringIO()
    with captured_logs() as log, contextlib.redirect_stdout(printed):
        context = LambdaContext("SyncWorkerFunction", 1024, str(uuid.uuid4()), _deadline_ms(120))
        started = time.perf_counter()
        answer = worker_module.handler(event, context)
        elapsed_ms = (time.perf_counter() - started) * 1000
    return answer, elapsed_ms, log, printed.getvalue()


def _outcome_of(log: str) -> str:
    """The outcome the worker logged for its request ("sync request done")."""
    for line in log.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("message") == "sync request done":
                return str(record["outcome"])
    raise RuntimeError("the worker logged no outcome")


def _deadline_ms(seconds: int) -> int:
    return int((time.time() + seconds) * 1000)


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------
def report(
    measured: Measured,
    facts: Facts,
    installations: int,
    region: str,
    taken: str,
    notes: Mapping[str, Any],
    hours: float = 0.0,
) -> list[str]:
    prices, _ = load_prices(region)
    priced = price(model(measured, facts, installations), prices)
    total = summary(priced, installations)
    m = measured
    lines = [
        f"bench: cost.per_installation_month = {total['per_installation']:.5f} $",
        f"bench: cost.per_1000_installations_month = {total['per_1000']:.2f} $",
        f"bench: cost.noop_run_ms = {m.noop_ms:.1f} ms",
        f"bench: cost.noop_run_dynamodb_calls = {m.calls(m.noop_calls, 'dynamodb')} calls",
        f"bench: cost.noop_run_rru = {m.noop_rru:.1f} RRU",
        f"bench: cost.noop_run_wru = {m.noop_wru:.1f} WRU",
        f"bench: cost.noop_run_kms_calls = {m.calls(m.noop_calls, 'kms')} calls",
        f"bench: cost.noop_run_secrets_calls = {m.calls(m.noop_calls, 'secretsmanager')} calls",
        f"bench: cost.noop_run_log_bytes = {m.noop_log_bytes} bytes",
        f"bench: cost.noop_run_emf_bytes = {m.noop_emf_bytes} bytes",
        f"bench: cost.noop_run_pleo_requests = {notes['noop_pleo_requests']} requests",
        f"bench: cost.worker_cold_ms = {m.cold_ms:.1f} ms",
        f"bench: cost.settings_view_dynamodb_calls = {m.calls(m.settings_calls, 'dynamodb')} calls",
        f"bench: cost.dispatch_ms_per_installation = {m.dispatch_ms_per_installation:.2f} ms",
        f"bench: cost.stored_bytes_per_installation = {m.stored_bytes} bytes",
        f"bench: cost.metric_series_hourly = {len(m.run_series)} series",
        f"bench: cost.metric_series_gauge = {m.gauge_series} series, "
        f"{m.gauge_hours_share:.3f} of the hours",
        f"bench: cost.metric_months = {m.metric_series:.2f} metric-months",
        f"bench: cost.metric_series_possible = {m.metric_series_possible} series",
    ]
    lines += _biggest_lines("cost", total)
    lines += [
        "",
        f"Cost model, {region} list prices taken {taken} (bench/prices.toml: check them), "
        f"{installations} installations of {notes['entities']} entities "
        f"({notes.get('adapter', 'json')} source), a sync every "
        f"{facts.sync_rate_minutes} min ({facts.runs_per_month:.0f} runs a month), no-op runs",
        f"  no-op run: {m.noop_ms:.0f} ms on a {facts.worker_memory_mb} MB worker, Pleo "
        f"{PLEO_LATENCY_MS} ms late, budget {notes['budget_per_min']}/min, "
        f"{notes['noop_pleo_requests']} Pleo requests "
        f"({notes['noop_pleo_writes']} writes), outcome {notes['noop_outcome']}; AWS calls: "
        + ", ".join(f"{name} x{count}" for name, count in sorted(m.noop_calls.items())),
        "  settings view: "
        + (", ".join(f"{n} x{c}" for n, c in sorted(m.settings_calls.items())) or "no AWS call"),
        f"  dispatcher, per installation: {m.dispatch_ms_per_installation:.2f} ms, "
        + ", ".join(f"{s} {c:.3f} calls" for s, c in m.dispatch_calls_per_installation.items())
        + f" (one dispatch of {notes['dispatched']})",
        "",
        *_bill_lines(priced, total, knobs=True),
        f"  Metrics: the no-op run printed {len(m.run_series)} series ("
        + ", ".join(sorted({name for name, _ in m.run_series}))
        + f"), each fed every hour, and the Installations gauge's {m.gauge_series} (one a "
        f"status) get data {m.gauge_hours_share:.1%} of the hours; were all "
        f"{m.metric_series_possible} series of the contract to get data every hour, metrics "
        f"would cost ${m.metric_series_possible * prices['metric_month']:.2f} a month for the "
        "deployment.",
    ]
    unchanged = notes.get("unchanged")
    if isinstance(unchanged, RunFigures) and hours > 0:
        lines += ["", *report_interval(measured, unchanged, facts, installations, prices, hours)]
    return lines


def variable_and_fixed(
    run: Measured, facts: Facts, prices: Mapping[str, float]
) -> tuple[float, float]:
    """Dollars per installation-month that each installation brings (its own runs, reads, writes,
    decrypts) and dollars per deployment-month that the installations share (keys, secrets,
    metrics, pollers, cold starts). The model is `variable + fixed / installations`, so two
    sizes of the deployment give both exactly."""

    def per_installation(installations: int) -> float:
        priced = price(model(run, facts, installations), prices)
        return float(summary(priced, installations)["per_installation"])

    many = 1_000_000
    variable = (many * per_installation(many) - per_installation(1)) / (many - 1)
    return variable, per_installation(1) - variable


def installations_for_target(variable: float, fixed: float) -> int | None:
    """The fewest installations at which the per-installation cost meets the target; None when
    each installation alone costs more than the target."""
    if variable >= TARGET_PER_INSTALLATION:
        return None
    return max(1, math.ceil(fixed / (TARGET_PER_INSTALLATION - variable)))


def report_interval(
    measured: Measured,
    unchanged: RunFigures,
    facts: Facts,
    installations: int,
    prices: Mapping[str, float],
    hours: float,
) -> list[str]:
    """The same deployment with `FullReconcileHours` at `hours`: one full run an interval, the
    others skipping the unchanged source (the run measured after the no-op one)."""
    share = full_share(facts.sync_rate_minutes, hours)
    priced = price(
        model(with_unchanged_runs(measured, unchanged, share), facts, installations), prices
    )
    total = summary(priced, installations)
    name = f"cost.reconcile_{hours:g}h"
    u = unchanged
    lines = [
        f"bench: {name}.per_installation_month = {total['per_installation']:.5f} $",
        f"bench: {name}.per_1000_installations_month = {total['per_1000']:.2f} $",
        f"bench: cost.unchanged_run_ms = {u.ms:.1f} ms",
        f"bench: cost.unchanged_run_dynamodb_calls = {measured.calls(u.calls, 'dynamodb'):g} calls",
        f"bench: cost.unchanged_run_rru = {u.rru:.1f} RRU",
        f"bench: cost.unchanged_run_wru = {u.wru:.1f} WRU",
        f"bench: cost.unchanged_run_kms_calls = {measured.calls(u.calls, 'kms'):g} calls",
        f"bench: cost.unchanged_run_pleo_requests = {u.pleo_requests} requests",
        f"bench: cost.unchanged_run_log_bytes = {u.log_bytes:g} bytes",
    ]
    lines += _biggest_lines(name, total)
    variable, fixed = variable_and_fixed(
        with_unchanged_runs(measured, unchanged, share), facts, prices
    )
    never_variable, never_fixed = variable_and_fixed(
        with_unchanged_runs(measured, unchanged, 0.0), facts, prices
    )
    never = never_variable + never_fixed / installations
    needed = installations_for_target(variable, fixed)
    lines += [
        f"bench: {name}.variable_per_installation_month = {variable:.5f} $",
        f"bench: {name}.fixed_per_deployment_month = {fixed:.2f} $",
        f"bench: {name}.installations_for_target = {needed if needed else 'none'} installations",
        f"bench: cost.never_full.per_installation_month = {never:.5f} $",
    ]
    reach = (
        f"the target is met from {needed:,} installations on"
        if needed
        else "no size of deployment meets the target: one installation alone costs more"
    )
    lines += [
        "",
        f"With FullReconcileHours={hours:g}: each installation brings ${variable:.5f} a month and "
        f"the deployment's shared costs are ${fixed:.2f} a month, so {reach}. Were no run to "
        f"read Pleo in full (no interval goes lower), an installation would cost ${never:.5f} "
        f"at {installations:,} installations (${never_variable:.5f} its own).",
        "",
        f"With FullReconcileHours={hours:g}: {share:.1%} of the runs read Pleo in full, the "
        f"others skip the unchanged source ({u.ms:.0f} ms, {u.pleo_requests} Pleo requests; "
        "AWS calls: " + ", ".join(f"{n} x{c:g}" for n, c in sorted(u.calls.items())) + ")",
        *_bill_lines(priced, total, knobs=False),
    ]
    return lines


def _biggest_lines(name: str, total: Mapping[str, Any]) -> list[str]:
    return [
        f"bench: {name}.biggest_{rank} = {dollars:.5f} $ ({item.name})"
        for rank, (item, dollars) in enumerate(total["biggest"], start=1)
    ]


def _bill_lines(
    priced: list[tuple[Item, float]], total: Mapping[str, Any], *, knobs: bool
) -> list[str]:
    """The items, dearest first, then the total against the target (with each item's knob, or
    without it where the table above already said it)."""
    header = f"  {'item':46} {'per installation-month':>24} {'$':>10}"
    lines = [header + ("  knob" if knobs else "")]
    for item, dollars in sorted(priced, key=lambda pair: pair[1], reverse=True):
        quantity = f"{item.quantity:.4g} {item.unit}"
        knob = f"  {item.knob}" if knobs else ""
        lines.append(f"  {item.name:46} {quantity:>24} {dollars:10.6f}{knob}")
    verdict = "met" if total["per_installation"] <= TARGET_PER_INSTALLATION else "NOT met"
    return [
        *lines,
        f"  {'total':46} {'':>24} {total['per_installation']:10.6f}  "
        f"target <= {TARGET_PER_INSTALLATION}: {verdict}",
        f"  per 1,000 installations: ${total['per_1000']:.2f} a month",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000, help="size of the installation")
    parser.add_argument("--installations", type=int, default=1000, help="in the deployment")
    parser.add_argument("--dispatch", type=int, default=200, help="installations of one dispatch")
    parser.add_argument("--region", default=None, help="a table of bench/prices.toml")
    parser.add_argument(
        "--budget-per-min", type=int, default=None, help="Pleo requests a minute (template's)"
    )
    parser.add_argument(
        "--adapter",
        choices=ADAPTERS,
        default="json",
        help="the installation's source: a JSON snapshot (its location a secret) or a GnuCash book",
    )
    parser.add_argument(
        "--full-reconcile-hours",
        type=float,
        default=24.0,
        help="also price this FullReconcileHours (0: the template's default only)",
    )
    args = parser.parse_args(argv if argv is not None else [])
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    # The logger reads these when the layer is first imported: the template's values.
    os.environ["POWERTOOLS_SERVICE_NAME"] = "pleo-connector"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"

    from local.resources import load_template

    template = load_template()
    facts = template_facts(template)
    budget = args.budget_per_min or int(
        template["Parameters"]["PleoRateBudgetPerMinute"]["Default"]
    )
    prices, taken = load_prices(args.region)
    region = args.region or str(tomllib.loads(PRICES.read_text())["default_region"])
    measured, notes = measure(
        args.entities, args.dispatch, budget, args.adapter, facts.sync_rate_minutes
    )
    notes["budget_per_min"] = budget
    if notes["noop_pleo_writes"]:
        print(f"the no-op run wrote to Pleo: {notes}", file=sys.stderr)
        return 1
    lines = report(
        measured, facts, args.installations, region, taken, notes, args.full_reconcile_hours
    )
    print("\n".join(lines))
    return 0 if prices else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
