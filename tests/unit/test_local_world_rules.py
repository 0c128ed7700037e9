"""The pure rules of the local world: partial batch responses, schedule rates, the environment."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

import pytest

from local.function_spec import FunctionSpec
from local.invoker import lambda_environment
from local.scheduler import Schedule, scheduled_event
from local.services import PORTS
from local.sqs_poller import _failed_ids
from local.world import (
    DEFAULT_LOCAL_ADAPTER,
    WorldConfig,
    build_parser,
    common_arguments,
    config_from,
    world_argv,
    world_overrides,
)

if TYPE_CHECKING:
    from pathlib import Path

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


def _worker_spec() -> FunctionSpec:
    """A function that reads `ADAPTER`, with the template's default."""
    return FunctionSpec(
        name="WorkerFunction",
        handler="app.handler",
        code_dir="/code",
        layer_dirs=(),
        runtime="python3.13",
        timeout_s=900,
        memory_mb=1024,
        environment={"ADAPTER": "placeholder", "ALLOW_LOCAL_SOURCES": "false"},
    )


def _world_config(
    tmp_path: Path, overrides: dict[str, dict[str, str]], argv: list[str]
) -> WorldConfig:
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps(overrides), encoding="utf-8")
    parser = argparse.ArgumentParser(parents=[common_arguments()])
    return config_from(parser.parse_args([f"--env-vars={env_vars}", *argv]))


def test_the_world_passes_the_environments_adapter_to_the_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTER", "json")
    config = _world_config(tmp_path, {"Parameters": {"ALLOW_LOCAL_SOURCES": "true"}}, [])

    environment = lambda_environment(_worker_spec(), world_overrides(config))

    assert config.adapter == "json"
    assert environment["ADAPTER"] == "json"
    assert environment["ALLOW_LOCAL_SOURCES"] == "true"  # the file's other overrides still hold


def test_the_environments_adapter_wins_over_the_env_vars_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTER", "json")
    config = _world_config(tmp_path, {"Parameters": {"ADAPTER": "placeholder"}}, [])

    assert lambda_environment(_worker_spec(), world_overrides(config))["ADAPTER"] == "json"


def test_without_an_adapter_in_the_environment_the_world_reads_gnucash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make up` with nothing set: the GnuCash adapter (the demo book is written for it)."""
    monkeypatch.delenv("ADAPTER", raising=False)
    config = _world_config(tmp_path, {"Parameters": {}}, [])

    assert config.adapter == DEFAULT_LOCAL_ADAPTER == "gnucash"
    assert lambda_environment(_worker_spec(), world_overrides(config))["ADAPTER"] == "gnucash"


def test_an_empty_adapter_keeps_the_templates_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTER", "")
    config = _world_config(tmp_path, {"Parameters": {}}, [])

    assert config.adapter is None
    assert lambda_environment(_worker_spec(), world_overrides(config))["ADAPTER"] == "placeholder"


def test_a_spawned_world_without_an_adapter_keeps_the_templates_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests' worlds (`WorldConfig(adapter=None)`) must not get the CLI's default."""
    monkeypatch.delenv("ADAPTER", raising=False)
    config = WorldConfig(ports={name: port for name, port, *_ in PORTS}, state_dir=tmp_path)

    argv = world_argv(config)

    assert "--adapter=" in argv
    assert config_from(build_parser().parse_args(argv[3:])).adapter is None


def test_the_adapter_flag_reaches_a_spawned_world(tmp_path: Path) -> None:
    """`spawn_world` (tests, the demo) hands its config's adapter to the child's `up`."""
    config = _world_config(tmp_path, {}, ["--adapter=json"])

    argv = world_argv(config)

    assert "--adapter=json" in argv
    assert config_from(build_parser().parse_args(argv[3:])).adapter == "json"
