"""The worker's settings reach its run: how many source failures in a row pause an installation,
and how long before Lambda's timeout a run stops at a checkpoint."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pleo_connector.composition.roots import build_worker
from pleo_connector.config import WorkerFunctionSettings, load_settings
from pleo_connector.store.sync_runs import SyncRunRepository
from pleo_connector.sync.engine import LEASE_GRACE_S, PleoSyncSteps

pytestmark = pytest.mark.unit

ENVIRONMENT = {
    "TABLE_NAME": "pleo-connector-Table",
    "KMS_KEY_ID": "alias/credentials",
    "PLEO_AUTH_URL": "https://auth.pleo.example",
    "PLEO_API_URL": "https://external.pleo.example",
    "PLEO_CLIENT_ID": "client",
    "PLEO_CLIENT_SECRET_ID": "secret-id",
    "SYNC_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/sync",
}


def test_by_default_five_failures_pause_and_a_run_stops_twenty_seconds_early() -> None:
    settings = load_settings(WorkerFunctionSettings, ENVIRONMENT)

    assert (settings.sync_max_source_failures, settings.sync_deadline_margin_s) == (5, 20.0)
    assert settings.sync_lease_grace_s == LEASE_GRACE_S
    assert build_worker(settings).full_reconcile_s == 0  # every scheduled run reads Pleo


def test_the_worker_is_built_with_its_settings_and_the_real_steps() -> None:
    settings = load_settings(
        WorkerFunctionSettings,
        {
            **ENVIRONMENT,
            "SYNC_MAX_SOURCE_FAILURES": "3",
            "SYNC_DEADLINE_MARGIN_S": "12.5",
            "SYNC_LEASE_GRACE_S": "2",
            "SYNC_FULL_RECONCILE_HOURS": "24",
        },
    )

    deps = build_worker(settings)

    assert (deps.max_source_failures, deps.deadline_margin_s) == (3, 12.5)
    assert deps.lease_grace_s == 2.0
    assert deps.full_reconcile_s == 24 * 3600
    assert isinstance(deps.steps, PleoSyncSteps)
    assert isinstance(deps.runs, SyncRunRepository)


@pytest.mark.parametrize("value", ["0", "-1", "five"])
def test_a_failure_limit_below_one_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="SYNC_MAX_SOURCE_FAILURES"):
        load_settings(WorkerFunctionSettings, {**ENVIRONMENT, "SYNC_MAX_SOURCE_FAILURES": value})


@pytest.mark.parametrize("value", ["-1", "721", "daily"])
def test_a_full_reconcile_interval_outside_0_to_720_hours_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="SYNC_FULL_RECONCILE_HOURS"):
        load_settings(WorkerFunctionSettings, {**ENVIRONMENT, "SYNC_FULL_RECONCILE_HOURS": value})
