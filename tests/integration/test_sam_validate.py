"""`sam validate --lint` accepts template.yaml, offline, with the pinned SAM CLI.

Integration tier because it runs SAM CLI in its own virtualenv (a subprocess); it needs no network.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv-sam" / "bin" / "sam"


@pytest.mark.parametrize("config_env", ["default", "dev", "staging", "prod"])
def test_sam_validate_lint_passes(config_env: str) -> None:
    if not SAM.exists():
        pytest.fail("SAM CLI missing: run `make sam`")
    environment = {**os.environ, "SAM_CLI_TELEMETRY": "0"}

    result = subprocess.run(
        [str(SAM), "validate", "--lint", "--template", "template.yaml", "--config-env", config_env],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr
