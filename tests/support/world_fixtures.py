"""A whole local world on free ports, for tests that go through the local API (e2e and browser).

Registered as a plugin by tests/conftest.py, so the e2e and browser tiers share one session world.

The world runs as `local.world up` does for a person (SAM CLI's virtualenv, its own process group,
its own state directory), so these tests exercise exactly what `make up` serves.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from local.resources import LocalResources
from local.services import PORTS, free_port
from local.world import (
    LOCAL_SECRET_VALUES,
    WorldConfig,
    group_alive,
    read_activity,
    spawn_world,
    stop_spawned,
    wait_until_ready,
)
from tests.e2e.flows import Browser, SecretLedger, WorldStore, find_leaks, wait_for
from tests.support.emulator import EmulatorControl

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

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


@contextlib.contextmanager
def running_world(state_dir: Path, *, adapter: str | None = None) -> Iterator[RunningWorld]:
    """A local world in `state_dir` as `make up` starts it (with `ADAPTER=adapter` when given),
    stopped afterwards with every process it started."""
    config = WorldConfig(
        ports={name: free_port() for name, *_ in PORTS},
        state_dir=state_dir,
        sqs_visibility_timeout_s=TEST_VISIBILITY_TIMEOUT_S,
        adapter=adapter,
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


@pytest.fixture(scope="session")
def local_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorld]:
    with running_world(tmp_path_factory.mktemp("local-world")) as world:
        yield world


def _recorded_groups(state_dir: Path) -> list[int]:
    try:
        state = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return []
    return [int(pgid) for pgid in state.get("process_groups", {}).values()]


# ---------------------------------------------------------------------------------------------
# The connect flows: a clean emulator and a fresh company per test, browsers, and the leak check
# of security bar item 17 over the whole e2e session.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def world_store(local_world: RunningWorld) -> WorldStore:
    return WorldStore(local_world.dynamodb_url, local_world.moto_url, local_world.resources)


@pytest.fixture(scope="session")
def secret_ledger(local_world: RunningWorld, world_store: WorldStore) -> Iterator[SecretLedger]:
    """Collects the secrets the tests see and the pages they get; at the end of the session, the
    world's logs (handlers, world, emulator, stand-ins) and every page must contain none of them."""
    ledger = SecretLedger(log_dirs=[local_world.state_dir])
    ledger.add("OAuth client secret", LOCAL_SECRET_VALUES["PleoClientSecret"])
    ledger.add("session signing secret", world_store.session_secret())
    yield ledger
    for value in world_store.every_credential():
        ledger.add("stored token or key", value)
    leaks = find_leaks(ledger.texts(), ledger.secrets)
    assert ledger.pages, "the leak check saw no page"
    if leaks:
        pytest.fail("secrets leaked into logs or pages:\n" + "\n".join(sorted(set(leaks))))


@pytest.fixture
def pleo(local_world: RunningWorld, world_store: WorldStore) -> Iterator[EmulatorControl]:
    """The world's emulator, reset (its client keeps the redirect URI of the world's API port).
    Sync messages a previous test left are drained first, so no test sees another's calls."""
    assert local_world.emulator_url is not None, "the local world runs without the emulator"
    wait_for(lambda: world_store.queued_messages() == 0, "the sync queue to drain", 60)
    control = EmulatorControl(local_world.emulator_url)
    control.reset()
    yield control
    control.close()


@pytest.fixture
def company(pleo: EmulatorControl) -> str:
    """A fresh company, the one auto-approve consents for (switched on)."""
    company_id = str(pleo.seed_company(f"Company {uuid.uuid4().hex[:8]} A/S")["id"])
    pleo.set_auto_approve(True, company_id=company_id)
    return company_id


@pytest.fixture
def new_browser(
    local_world: RunningWorld,
    pleo: EmulatorControl,
    world_store: WorldStore,
    secret_ledger: SecretLedger,
) -> Iterator[Callable[[], Browser]]:
    """Makes browsers (each with its own cookies) that record what they see in the ledger."""
    browsers: list[Browser] = []

    def make() -> Browser:
        browser = Browser(local_world.api_url, pleo, world_store, secret_ledger)
        browsers.append(browser)
        return browser

    yield make
    for browser in browsers:
        browser.close()


@pytest.fixture
def browser(new_browser: Callable[[], Browser]) -> Browser:
    return new_browser()
