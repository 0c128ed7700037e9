"""`local.world up` / `status` / `down`: a second start says so, and stopping leaves nothing."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from typing import TYPE_CHECKING

import pytest

from local.functions import SAM_PYTHON
from local.services import PORTS, ROOT, free_port
from local.world import (
    WorldConfig,
    group_alive,
    read_state,
    spawn_world,
    stop_spawned,
    wait_until_ready,
    world_argv,
)

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


def test_up_by_default_reads_a_fresh_demo_book_and_says_what_to_open(tmp_path: Path) -> None:
    """`make up` with no ADAPTER: the GnuCash adapter, the demo book written into the state
    directory, and the URLs and the book's path printed for a person."""
    config = WorldConfig(ports={name: free_port() for name, *_ in PORTS}, state_dir=tmp_path)
    stale = config.demo_book
    stale.parent.mkdir(parents=True)
    stale.write_text("a book the last demo changed\n", encoding="utf-8")
    argv = [arg for arg in world_argv(config) if not arg.startswith("--adapter")]
    env = {k: v for k, v in os.environ.items() if k != "ADAPTER"}
    log_path = tmp_path / "world.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**env, "SAM_CLI_TELEMETRY": "0", "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    try:
        state = wait_until_ready(config, process)
    finally:
        stop_spawned(process, config)
    printed = log_path.read_text(encoding="utf-8")

    assert state["adapter"] == "gnucash"
    assert state["book"] == str(config.demo_book)
    # Rewritten: the demo book, not the stale file.
    with contextlib.closing(sqlite3.connect(config.demo_book)) as book:
        vendors = book.execute("SELECT id, name FROM vendors ORDER BY id").fetchall()
    assert ("V003", "TDC Erhverv") in vendors
    assert f"  {config.demo_book}\n" in printed
    assert f"{config.url('api')}/oauth/start" in printed
    assert f"{config.url('api')}/install/api-key" in printed
    assert "adapter            gnucash" in printed
