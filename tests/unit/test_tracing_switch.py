"""Tracing is off unless TRACING_ENABLED (from the stack's EnableTracing) says so: then every
handler runs under Powertools' Tracer, built on the first invocation (the init imports nothing of
the X-Ray SDK either way); otherwise nothing of the SDK is ever imported. Each case runs in a
process of its own, as a cold start does (patching is process-wide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from pleo_connector.config import ObservabilitySettings, load_settings
from tests.support import calling_handler
from tests.support.handlers import FUNCTIONS

pytestmark = pytest.mark.unit

ROOT = FUNCTIONS.parent
HANDLERS = sorted(path.parent.name for path in FUNCTIONS.glob("*/app.py"))
TRACE_HEADER = "Root=1-674e1f00-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
IMPORT_EVERY_HANDLER = f"""
import json, sys
from tests.support.handlers import load_handler_module
for name in {HANDLERS!r}:
    load_handler_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def child_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TRACING_", "AWS_XRAY", "_X_AMZN", "LAMBDA_TASK_ROOT"))
    }
    env["PYTHONPATH"] = f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}"
    env["POWERTOOLS_SERVICE_NAME"] = "pleo-connector-test"
    return {**env, **extra}


def imported_by_every_handler(**extra: str) -> set[str]:
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_HANDLER],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(**extra),
        timeout=120,
        check=True,
    )
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def invoke(function_dir: str, event: dict[str, Any], **extra: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.support.run_handler", function_dir],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(**extra),
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report: dict[str, Any] = json.loads(completed.stderr.strip().splitlines()[-1])
    return report


def xray_modules(modules: set[str]) -> set[str]:
    return {name for name in modules if name.split(".")[0] in {"aws_xray_sdk", "wrapt"}}


@pytest.mark.parametrize("setting", [None, "false", "true"])
def test_no_handler_imports_the_xray_sdk_at_init(setting: str | None) -> None:
    extra = {} if setting is None else {"TRACING_ENABLED": setting}

    modules = imported_by_every_handler(LAMBDA_TASK_ROOT=str(FUNCTIONS / "health"), **extra)

    assert {f"handler_{name}" for name in HANDLERS} <= modules
    assert xray_modules(modules) == set()


def test_with_tracing_on_the_init_imports_nothing_more_than_with_it_off() -> None:
    """Botocore's clients above all: the handlers defer them to the first request, and so does
    tracing."""
    on = imported_by_every_handler(TRACING_ENABLED="true", LAMBDA_TASK_ROOT=str(ROOT))
    off = imported_by_every_handler(LAMBDA_TASK_ROOT=str(ROOT))

    assert on - off == set()
    assert "botocore.client" not in on  # (Powertools imports the bare package, which is light)


TRACED = {
    "TRACING_ENABLED": "true",
    "XRAY_CAPTURE": "1",  # tests.support.run_handler keeps what would go to the daemon
    "_X_AMZN_TRACE_ID": TRACE_HEADER,
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
}


def test_with_tracing_on_an_invocation_runs_under_the_tracer() -> None:
    event = json.loads((ROOT / "events" / "health.json").read_text(encoding="utf-8"))

    report = invoke("health", event, LAMBDA_TASK_ROOT=str(FUNCTIONS / "health"), **TRACED)

    assert report["answer"]["statusCode"] == 200
    assert xray_modules(set(report["init_modules"])) == set()
    assert report["patched"] == ["botocore", "httpx"]  # the two libraries the app calls out with
    handler_segments = [doc for doc in report["traced"] if doc["name"] == "## handler"]
    assert len(handler_segments) == 1
    assert handler_segments[0]["trace_id"] == "1-674e1f00-0123456789abcdef01234567"
    assert handler_segments[0]["annotations"]["ColdStart"] is True
    # The response (a page may hold a CSRF token) stays out of the trace.
    assert "metadata" not in handler_segments[0] or "handler response" not in json.dumps(
        handler_segments[0]["metadata"]
    )


def test_with_tracing_on_the_first_invocations_calls_are_subsegments_of_its_handler() -> None:
    """The Tracer is built on the first event, yet that event's calls are traced: the AWS call
    (by a client made at init) and the HTTP call, each inside the handler's subsegment."""
    report = invoke("tests.support.calling_handler", {}, LAMBDA_TASK_ROOT=str(ROOT), **TRACED)

    assert report["answer"] == {"tables": ["installations"], "status": 200}
    assert xray_modules(set(report["init_modules"])) == set()
    traced = {doc["id"]: doc for doc in report["traced"]}
    (handler,) = [doc for doc in traced.values() if doc["name"] == "## handler"]
    aws = [doc for doc in traced.values() if doc.get("namespace") == "aws"]
    remote = [doc for doc in traced.values() if doc.get("namespace") == "remote"]
    assert [(doc["name"], doc["aws"]["operation"]) for doc in aws] == [("dynamodb", "ListTables")]
    assert [doc["http"]["request"]["url"] for doc in remote] == [calling_handler.URL]
    assert [doc["parent_id"] for doc in [*aws, *remote]] == [handler["id"]] * 2


def test_without_tracing_calls_import_nothing_of_the_sdk() -> None:
    report = invoke("tests.support.calling_handler", {}, LAMBDA_TASK_ROOT=str(ROOT))

    assert report["answer"] == {"tables": ["installations"], "status": 200}
    assert xray_modules(set(report["modules"])) == set()


def test_without_tracing_the_same_invocation_sends_nothing() -> None:
    event = json.loads((ROOT / "events" / "health.json").read_text(encoding="utf-8"))

    report = invoke(
        "health",
        event,
        LAMBDA_TASK_ROOT=str(FUNCTIONS / "health"),
        _X_AMZN_TRACE_ID=TRACE_HEADER,
    )

    assert report["answer"]["statusCode"] == 200
    assert xray_modules(set(report["modules"])) == set()


@pytest.mark.parametrize(("value", "enabled"), [("true", True), ("false", False), ("", None)])
def test_the_setting_is_parsed_once_from_the_environment(value: str, enabled: bool | None) -> None:
    environ = {"TRACING_ENABLED": value} if value else {}

    settings = load_settings(ObservabilitySettings, environ)

    assert settings.tracing_enabled is (enabled or False)
