"""What the local world needs to know about each function of template.yaml, as plain data.

The facts come from SAM CLI's own template providers (local/sam_template.py, SAM CLI's virtualenv).
Code running in the app's virtualenv (tests) gets the same facts by asking that module in a
subprocess, so there is one reading of the template, never a second hand-written table.
Standard library only: both virtualenvs import this module.
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any

from local.function_spec import DEFAULT_TEMPLATE, FunctionSpec
from local.services import ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from local.resources import LocalResources

SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"


def translations(resources: LocalResources | None) -> dict[str, Any]:
    """What `!Ref` and `!GetAtt ....Arn` of each created resource mean locally, in the form that SAM
    CLI's intrinsic resolver takes (where `sam local` would otherwise leave the logical ID)."""
    if resources is None:
        return {}
    values: dict[str, Any] = {
        logical: {"Ref": physical} for logical, physical in resources.physical_ids().items()
    }
    for logical, arn in resources.queue_arns.items():
        values[logical]["Arn"] = arn
    for logical, arn in resources.secrets.items():
        values[logical]["Arn"] = arn
    return values


def load_function_specs(
    template: Path = DEFAULT_TEMPLATE,
    resources: LocalResources | None = None,
    base_dir: Path | None = None,
) -> dict[str, FunctionSpec]:
    """Every function of `template`, keyed by logical ID, with `!Ref`s to the template's table,
    queues, key and secrets resolved to the `resources` created locally."""
    try:
        from local import sam_template
    except ImportError:  # the app's virtualenv has no SAM CLI: ask SAM CLI's virtualenv
        return _load_with_sam_python(template, translations(resources), base_dir)
    return sam_template.function_specs(template, translations(resources), base_dir)


def _load_with_sam_python(
    template: Path, physical_ids: dict[str, Any], base_dir: Path | None
) -> dict[str, FunctionSpec]:
    argv = [
        str(SAM_PYTHON),
        "-m",
        "local.sam_template",
        "--template",
        str(template),
        "--translations",
        json.dumps(physical_ids),
    ]
    if base_dir is not None:
        argv += ["--base-dir", str(base_dir)]
    completed = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    if completed.returncode != 0:
        raise RuntimeError(f"reading {template} with SAM CLI failed:\n{completed.stderr}")
    return {
        name: FunctionSpec.from_dict(data) for name, data in json.loads(completed.stdout).items()
    }
