"""Without Pleo's documents the emulator refuses to start, and says which one it misses: it never
serves requests it cannot validate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local.pleo_emulator.contract import DOCUMENTS, openapi_dir
from local.pleo_emulator.launcher import start_pleo_emulator
from local.services import ROOT, free_port, port_in_use

pytestmark = pytest.mark.integration


@pytest.fixture
def contract_without_vendors(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the contract with one document left out: (the folder, the missing file)."""
    folder = tmp_path / "contract"
    folder.mkdir()
    for name in DOCUMENTS:
        if not name.startswith("vendors-"):
            shutil.copy(openapi_dir() / name, folder / name)
    missing = folder / next(name for name in DOCUMENTS if name.startswith("vendors-"))
    return folder, missing


def test_the_emulator_exits_and_names_the_missing_document(
    contract_without_vendors: tuple[Path, Path],
) -> None:
    folder, missing = contract_without_vendors
    port = free_port()

    result = subprocess.run(
        [sys.executable, "-m", "local.pleo_emulator", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PLEO_OPENAPI_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert not port_in_use(port)


def test_the_launcher_surfaces_why_the_emulator_did_not_start(
    contract_without_vendors: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, missing = contract_without_vendors
    monkeypatch.setenv("PLEO_OPENAPI_DIR", str(folder))

    with pytest.raises(RuntimeError) as raised:
        start_pleo_emulator(free_port(), tmp_path / "logs", python=Path(sys.executable))

    assert "exited with code 2" in str(raised.value)
    assert str(missing) in str(raised.value)
