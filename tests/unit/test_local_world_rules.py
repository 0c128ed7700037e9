"""The pure rules of the local world: partial batch responses, schedule rates, the environment."""

from __future__ import annotations

import pytest

from local.function_spec import FunctionSpec
from local.invoker import lambda_environment
from local.scheduler import Schedule, scheduled_event
from local.sqs_poller import _failed_ids

pytestmark = pytest.mark.unit

IDS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("payload", "failed"),
    [
        (None, []),
        ({}, []),
        ({"batchItemFailures": []}, []),
        ({"batchItemFailures": None}, []),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, ["b"]),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),  # unknown id: all fail
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"wrongKey": "a"}]}, None),
        ({"batchItemFailures": "a"}, None),
        ("not an object", None),
    ],
)
def test_partial_batch_responses_are_read_as_lambda_reads_them(
    payload: object, failed: list[str] | None
) -> None:
    assert _failed_ids(payload, IDS) == failed


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(60 minutes)", 3600),
        ("rate(1 minute)", 60),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("cron(0 * * * ? *)", None),
    ],
)
def test_schedule_rates(expression: str, seconds: int | None) -> None:
    assert Schedule("F", "FSchedule", expression).rate_seconds == seconds


def test_the_scheduled_event_names_the_schedule() -> None:
    event = scheduled_event(Schedule("F", "FSchedule", "rate(5 minutes)"))

    assert event["source"] == "aws.scheduler"
    assert event["resources"] == [
        "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/FSchedule"
    ]


def _spec() -> FunctionSpec:
    return FunctionSpec(
        name="SettingsFunction",
        handler="app.handler",
        code_dir="/code",
        layer_dirs=(),
        runtime="python3.13",
        timeout_s=15,
        memory_mb=512,
        environment={"PUBLIC_BASE_URL": "https://HttpApi.example", "TABLE_NAME": "t"},
    )


def test_overrides_apply_only_to_declared_variables_like_sam_local_env_vars() -> None:
    overrides = {
        "Parameters": {"PUBLIC_BASE_URL": "${LocalApiUrl}", "UNDECLARED": "x"},
        "SettingsFunction": {"TABLE_NAME": "local-table"},
        "OtherFunction": {"TABLE_NAME": "not-mine"},
    }

    environment = lambda_environment(
        _spec(), overrides, {"LocalApiUrl": "http://127.0.0.1:3000"}, {"AWS_ENDPOINT_URL": "e"}
    )

    assert environment["PUBLIC_BASE_URL"] == "http://127.0.0.1:3000"
    assert environment["TABLE_NAME"] == "local-table"
    assert "UNDECLARED" not in environment
    assert environment["AWS_ENDPOINT_URL"] == "e"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "SettingsFunction"
    assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert environment["AWS_SHARED_CREDENTIALS_FILE"] == "/dev/null"
