"""A whole local world on free ports, for tests that go through the local API.

The world runs as `local.world up` does for a person (SAM CLI's virtualenv, its own process group,
its own state directory), so these tests exercise exactly what `make up` serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.resources import LocalResources
from local.services import free_port
from local.world import (
    PORTS,
    WorldConfig,
    group_alive,
    read_activity,
    spawn_world,
    stop_spawned,
    wait_until_ready,
)

# Failed sync messages come back after this many seconds, not the template's 720.
TEST_VISIBILITY_TIMEOUT_S = 2


@dataclass
class RunningWorld:
    """Base URLs of a running local world and the resources created on its stand-ins."""

    api_url: str
    emulator_url: str | None
    dynamodb_url: str
    moto_url: str
    resources: LocalResources
    state_dir: Path
    pid: int

    def activity(self) -> list[dict[str, Any]]:
        """What the local API and the event sources invoked so far."""
        return read_activity(self.state_dir / "activity.jsonl")


@pytest.fixture(scope="session")
def local_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorld]:
    state_dir = tmp_path_factory.mktemp("local-world")
    config = WorldConfig(
        ports={name: free_port() for name, *_ in PORTS},
        state_dir=state_dir,
        sqs_visibility_timeout_s=TEST_VISIBILITY_TIMEOUT_S,
    )
    with (state_dir / "world.log").open("w", encoding="utf-8") as log:
        process = spawn_world(config, log)
    try:
        try:
            state = wait_until_ready(config, process)
        except (RuntimeError, TimeoutError) as error:
            log_text = (state_dir / "world.log").read_text(encoding="utf-8")[-4000:]
            pytest.fail(f"the local world did not start: {error}\n{log_text}")
        urls = state["urls"]
        yield RunningWorld(
            api_url=urls["api"],
            emulator_url=urls.get("pleo-emulator"),
            dynamodb_url=urls["dynamodb-local"],
            moto_url=urls["moto"],
            resources=LocalResources(**state["resources"]),
            state_dir=state_dir,
            pid=process.pid,
        )
    finally:
        groups = json.loads(json.dumps(_recorded_groups(state_dir)))
        stop_spawned(process, config)
        left = [pgid for pgid in [process.pid, *groups] if group_alive(pgid)]
        assert not left, f"processes left behind by the local world: {left}"


def _recorded_groups(state_dir: Path) -> list[int]:
    try:
        state = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return []
    return [int(pgid) for pgid in state.get("process_groups", {}).values()]
