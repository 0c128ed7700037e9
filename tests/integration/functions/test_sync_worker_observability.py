"""What one invocation of the sync worker prints, read from the real stdout of its handler run in
a process of its own (DynamoDB Local, moto's KMS and SQS, the Pleo emulator, JSON snapshots): the
EMF metrics of the contract with the values the run had, and log lines that all carry the
installation and the run they belong to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from local.services import LOCAL_REGION, ROOT, Service
from pleo_connector.store.dynamodb import DynamoTable
from tests.integration.sync.engine_world import EngineWorld, install, snapshot, worker_env
from tests.support.observed_output import Printed, read_printed

if TYPE_CHECKING:
    from pathlib import Path

    from local.resources import LocalResources
    from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.integration

SERVICE = "pleo-connector-test"
NAMESPACE = "PleoConnectorTest"
# The emulator's data, by the Kind dimension the metrics use.
KIND_OF_ROWS = {
    "tag_groups": "tag_group",
    "tags": "tag",
    "tax_codes": "tax_code",
    "vendors": "vendor",
    "accounts": "account",
}


@pytest.fixture
def installed(
    aws_local_env: dict[str, str],
    dynamodb_local: Service,
    local_resources: LocalResources,
    emulator: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[EngineWorld, str]]:
    """Two API-key installations of two companies, each with a snapshot of its own, and their
    API keys."""
    env = worker_env(
        aws_local_env,
        table_name=local_resources.tables["Table"],
        kms_key_id=local_resources.keys["CredentialsKey"],
        queue_url=local_resources.queue_urls["SyncQueue"],
        emulator_url=emulator.url,
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = boto3.session.Session(region_name=LOCAL_REGION).client(
        "dynamodb", endpoint_url=dynamodb_local.url
    )
    table = DynamoTable(local_resources.tables["Table"], client=client)
    made = []
    for index, size in enumerate((2, 3)):
        company_id = str(emulator.control.seed_company()["id"])
        api_key = emulator.control.issue_api_key(company_id)
        world = install(env, table, company_id, api_key, tmp_path / f"snapshot-{index}.json")
        world.write_source(snapshot(tags=size, tax_codes=size, vendors=size, accounts=size))
        made.append((world, api_key))
    return made


@pytest.fixture
def worlds(installed: list[tuple[EngineWorld, str]]) -> list[EngineWorld]:
    return [world for world, _ in installed]


def sqs_event(installation_ids: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"receipt-{n}",
                "body": json.dumps({"installation_id": installation_id, "reason": "scheduled"}),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:SyncQueue",
                "awsRegion": LOCAL_REGION,
            }
            for n, installation_id in enumerate(installation_ids)
        ]
    }


def invoke_worker(env: dict[str, str], event: dict[str, Any]) -> tuple[Printed, dict[str, Any]]:
    """One invocation of functions/sync_worker in a new process: what it printed on stdout, and
    what it answered (with the modules it had imported)."""
    completed = subprocess.run(
        [sys.executable, "-m", "tests.support.run_handler", "sync_worker"],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            **env,
            "PYTHONPATH": f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}",
            "POWERTOOLS_SERVICE_NAME": SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "DEBUG",  # every line the run can print
        },
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    answer = json.loads(completed.stderr.strip().splitlines()[-1])
    return read_printed(completed.stdout), answer


def created_in_pleo(emulator: RunningEmulator, worlds: list[EngineWorld]) -> Counter[str]:
    """Records the emulator holds for the companies, per Kind: each was created by the runs."""
    held: Counter[str] = Counter()
    for world in worlds:
        for rows, records in emulator.control.data(world.company_id).items():
            if rows in KIND_OF_ROWS:
                held[KIND_OF_ROWS[rows]] += len(records)
    return held


def test_one_sync_invocation_prints_the_contract_metrics_with_the_runs_values(
    worlds: list[EngineWorld], emulator: RunningEmulator
) -> None:
    ids = [world.installation_id for world in worlds]

    printed, answer = invoke_worker(worlds[0].env, sqs_event(ids))

    assert answer["answer"] == {"batchItemFailures": []}
    metrics = printed.metrics()
    service = (("service", SERVICE),)
    assert printed.namespaces() == {NAMESPACE}
    assert metrics[("Syncs", (("Outcome", "synced"), *service))] == [2]
    # Every record the emulator holds was created by these runs, and counted as such.
    held = created_in_pleo(emulator, worlds)
    assert sum(held.values()) > 0
    counted = {
        dict(dims)["Kind"]: values
        for (name, dims), values in metrics.items()
        if name == "SyncRecords" and dict(dims)["Action"] == "create"
    }
    assert {kind: sum(values) for kind, values in counted.items()} == dict(held)
    assert not [
        key for key in metrics if key[0] == "SyncRecords" and dict(key[1])["Action"] != "create"
    ]
    # The requests and 429s are the runs' own counts, as their records keep them.
    runs = [run for world in worlds for run in world.run_records()]
    assert len(runs) == 2
    assert metrics[("PleoRequests", service)] == [sum(int(run["requests"]) for run in runs)]
    assert metrics[("PleoRequests", service)][0] > 0
    # No run met a 429, and a count of 0 is left unsent (CloudWatch bills a series by the hour).
    assert not [key for key in metrics if key[0] == "Pleo429s"]
    durations = metrics[("SyncRunDuration", service)]
    assert len(durations) == 2
    assert all(value >= 0 for value in durations)
    # The worker draws from the shared budget in DynamoDB: at least one reservation each run.
    assert metrics[("BudgetDynamoDBCalls", service)][0] >= 1
    assert printed.units()["SyncRunDuration"] == "Milliseconds"
    assert {unit for name, unit in printed.units().items() if name != "SyncRunDuration"} == {
        "Count"
    }
    # Nothing else, and no installation id in any metric line.
    assert {name for name, _ in metrics} == {
        "Syncs",
        "SyncRecords",
        "PleoRequests",
        "SyncRunDuration",
        "BudgetDynamoDBCalls",
    }
    emf_text = json.dumps(printed.emf)
    assert not [installation_id for installation_id in ids if installation_id in emf_text]
    # Printed once per invocation: one line per set of dimensions, none twice.
    dimension_sets = [
        tuple(directive["Dimensions"][0] + [line[d] for d in directive["Dimensions"][0]])
        for line in printed.emf
        for directive in line["_aws"]["CloudWatchMetrics"]
    ]
    assert len(dimension_sets) == len(set(dimension_sets))


def test_every_log_line_of_a_run_names_its_installation_and_its_run(
    installed: list[tuple[EngineWorld, str]],
) -> None:
    worlds = [world for world, _ in installed]
    ids = [world.installation_id for world in worlds]

    printed, _ = invoke_worker(worlds[0].env, sqs_event(ids))

    assert printed.logs, "the run printed no log line"
    unkeyed = [
        line for line in printed.logs if "installation_id" not in line or "run_id" not in line
    ]
    assert unkeyed == []
    # The batch's records keep apart: one run id per installation, the first record's keys gone
    # from the second's lines.
    runs: dict[str, set[str]] = {line["installation_id"]: set() for line in printed.logs}
    for line in printed.logs:
        runs[line["installation_id"]].add(line["run_id"])
    assert set(runs) == set(ids)
    assert all(len(run_ids) == 1 for run_ids in runs.values())
    assert len({next(iter(run_ids)) for run_ids in runs.values()}) == 2
    order = [line["installation_id"] for line in printed.logs]
    assert order == sorted(order, key=ids.index), "the records' lines interleave"
    # Per-request lines are there (DEBUG) and keyed too.
    assert any(line["message"] == "Pleo answered" for line in printed.logs)
    assert all(line["service"] == SERVICE for line in printed.logs)
    # No credential in any line, even at DEBUG.
    everything = json.dumps(printed.logs)
    assert not [api_key for _, api_key in installed if api_key in everything]


def test_with_tracing_on_the_runs_calls_to_pleo_and_dynamodb_are_subsegments(
    worlds: list[EngineWorld], emulator: RunningEmulator
) -> None:
    env = {
        **worlds[0].env,
        "TRACING_ENABLED": "true",
        "XRAY_CAPTURE": "1",  # tests.support.run_handler keeps what would go to the daemon
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "sync_worker"),
        "_X_AMZN_TRACE_ID": "Root=1-674e1f00-00000000000000000000abcd;Parent=53995c3f42cd8ad8;"
        "Sampled=1",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }

    _, report = invoke_worker(env, sqs_event([worlds[0].installation_id]))

    traced = report["traced"]
    assert [doc["name"] for doc in traced if doc["name"] == "## handler"] == ["## handler"]
    pleo_calls = [
        doc
        for doc in traced
        if doc.get("namespace") == "remote"
        and str(doc.get("http", {}).get("request", {}).get("url", "")).startswith(emulator.url)
    ]
    assert pleo_calls, [doc["name"] for doc in traced]
    dynamodb_calls = [
        doc["aws"]["operation"]
        for doc in traced
        if doc.get("namespace") == "aws" and doc["name"] == "dynamodb"
    ]
    assert "UpdateItem" in dynamodb_calls  # the lease, the budget
    # No credential in the trace: the emulator's API key never appears.
    assert "Authorization" not in json.dumps(traced)
