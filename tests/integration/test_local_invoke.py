"""`local.world invoke FUNCTION -e events/FILE.json`: the local `sam local invoke`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from local.functions import SAM_PYTHON
from local.services import ROOT

pytestmark = pytest.mark.integration


def test_health_function_with_its_sample_event(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            str(SAM_PYTHON),
            "-m",
            "local.world",
            "invoke",
            "HealthFunction",
            "-e",
            "events/health.json",
            f"--state-dir={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"status": "ok"}
    assert "REPORT RequestId" in completed.stderr


def test_every_function_has_a_sample_event() -> None:
    from local.resources import load_template, resources_of_type

    functions = resources_of_type(load_template(), "AWS::Serverless::Function")
    missing = [
        name
        for name, resource in functions.items()
        if not (ROOT / "events" / f"{Path(resource['Properties']['CodeUri']).name}.json").exists()
    ]

    assert missing == []
