"""`local.world up` / `status` / `down`: a second start says so, and stopping leaves nothing."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from local.functions import SAM_PYTHON
from local.services import PORTS, ROOT, free_port
from local.world import WorldConfig, group_alive, read_state, spawn_world, wait_until_ready

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def world_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SAM_PYTHON), "-m", "local.world", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        check=False,
    )


def test_up_status_second_up_and_down(tmp_path: Path) -> None:
    config = WorldConfig(ports={name: free_port() for name, *_ in PORTS}, state_dir=tmp_path)
    port_flags = [f"--{name}-port={port}" for name, port in config.ports.items()]
    with (tmp_path / "world.log").open("w", encoding="utf-8") as log:
        process = spawn_world(config, log)
    try:
        state = wait_until_ready(config, process)
        groups = list(state["process_groups"].values())

        status = world_cli("status", f"--state-dir={tmp_path}", *port_flags)
        second = world_cli("up", f"--state-dir={tmp_path}", *port_flags)
        down = world_cli("down", f"--state-dir={tmp_path}")
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert status.returncode == 0, status.stdout + status.stderr
    assert "local API /health" in status.stdout
    assert second.returncode != 0
    assert "already running" in second.stderr
    assert down.returncode == 0
    assert read_state(tmp_path) is None
    assert [pgid for pgid in [process.pid, *groups] if group_alive(pgid)] == []


def test_down_without_a_world_says_so(tmp_path: Path) -> None:
    down = world_cli("down", f"--state-dir={tmp_path}")

    assert down.returncode == 0
    assert "No local world is running" in down.stdout
