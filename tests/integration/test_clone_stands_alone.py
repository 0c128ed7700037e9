"""A clone of the repository, with nothing beside it, has everything the tests and the emulator
read: Pleo's contract loads from inside the clone, the emulator starts there and validates
requests, and nothing in the clone points at a folder outside it.

It clones the committed HEAD, so it checks what a fresh checkout gets, not the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from local.services import free_port, wait_for_http
from tests.support.emulator import EmulatorControl

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# Spelled with escapes so that this file does not match its own search.
OUTSIDE_REFERENCES = r"\.\./shared|DESIGN\.md|pleo-api\.md"

LOAD_THE_CONTRACT = """
import json
from local.pleo_emulator.contract import DOCUMENTS, shared_contract

contract = shared_contract()
contract.warm_up()  # every document compiles into validators
operations = {}
for operation in contract.operations():
    operations.setdefault(operation.document, []).append(operation.name)
print(json.dumps({"directory": str(contract.directory), "documents": list(DOCUMENTS),
                  "operations": operations}))
"""


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed HEAD, cloned alone into an empty folder."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if _git("rev-parse", "--is-inside-work-tree", cwd=ROOT).stdout.strip() != "true":
        pytest.skip("the tests do not run from a git checkout")
    top = Path(_git("rev-parse", "--show-toplevel", cwd=ROOT).stdout.strip())
    parent = tmp_path_factory.mktemp("lone")
    target = parent / "clone"
    cloned = _git("clone", "--quiet", str(top), str(target), cwd=parent)
    assert cloned.returncode == 0, cloned.stderr
    assert sorted(p.name for p in parent.iterdir()) == ["clone"]  # nothing beside it
    return target


def _clone_env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PLEO_OPENAPI_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(clone)
    return env


def test_the_contract_loads_from_inside_the_clone(clone: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LOAD_THE_CONTRACT],
        cwd=clone,
        env=_clone_env(clone),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert Path(loaded["directory"]) == clone / "contract" / "pleo-openapi"
    assert sorted(loaded["operations"]) == sorted(loaded["documents"])
    for document, operations in loaded["operations"].items():
        assert operations, f"{document} has no operation"


def test_nothing_in_the_clone_points_outside_it(clone: Path) -> None:
    found = _git("grep", "-n", "-I", "-E", OUTSIDE_REFERENCES, cwd=clone)

    assert found.returncode == 1, found.stdout or found.stderr  # 1: no match, and no error


@pytest.fixture
def emulator_in_clone(clone: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "emulator.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.pleo_emulator", "--port", str(port)],
        cwd=clone,
        env=_clone_env(clone),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(url + "/_emulator/health", process=process)
        except RuntimeError:
            pytest.fail((tmp_path / "emulator.log").read_text())
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_emulator_started_in_the_clone_validates_requests(emulator_in_clone: str) -> None:
    control = EmulatorControl(emulator_in_clone)
    try:
        key = control.issue_api_key()
    finally:
        control.close()

    response = httpx.post(
        emulator_in_clone + "/v1/vendors",
        json={"name": "Paper Co"},  # no companyId, no defaultCurrency: the document requires both
        auth=httpx.BasicAuth(key, ""),
        timeout=10,
    )

    assert response.status_code == 400, response.text
    assert "companyId" in response.json()["message"]
