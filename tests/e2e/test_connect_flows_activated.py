"""Flow 1 with REQUIRES_CONFIGURATION=false: the install ends ACTIVATED on a done page, with the
first sync queued and run by the worker.

The session's world is configured the other way (the template's default), and the setting is read
once per function process, so this module starts a second world of its own: the same
`local.world up`, with an env-vars file (the `sam local --env-vars` format) that flips the one
setting. It costs one more world start, and tests the handlers exactly as they are deployed.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from local.invoker import DEFAULT_OVERRIDES
from local.resources import LocalResources
from local.services import PORTS, free_port
from local.world import WorldConfig, spawn_world, stop_spawned, wait_until_ready
from tests.e2e.flows import Browser, SecretLedger, WorldStore, wait_for
from tests.support.emulator import DEFAULT_CLIENT_ID, EmulatorControl
from tests.support.world_fixtures import TEST_VISIBILITY_TIMEOUT_S, RunningWorld

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def activating_world(
    tmp_path_factory: pytest.TempPathFactory, secret_ledger: SecretLedger
) -> Iterator[RunningWorld]:
    state_dir = tmp_path_factory.mktemp("activating-world")
    overrides = json.loads(DEFAULT_OVERRIDES.read_text(encoding="utf-8"))
    overrides["Parameters"]["REQUIRES_CONFIGURATION"] = "false"
    env_vars = state_dir / "env.json"
    env_vars.write_text(json.dumps(overrides), encoding="utf-8")
    config = WorldConfig(
        ports={name: free_port() for name, *_ in PORTS},
        state_dir=state_dir,
        env_vars=env_vars,
        sqs_visibility_timeout_s=TEST_VISIBILITY_TIMEOUT_S,
    )
    with (state_dir / "world.log").open("w", encoding="utf-8") as log:
        process = spawn_world(config, log)
    secret_ledger.log_dirs.append(state_dir)  # its logs are checked for leaks as well
    try:
        try:
            state = wait_until_ready(config, process)
        except (RuntimeError, TimeoutError) as error:
            tail = Path(state_dir / "world.log").read_text(encoding="utf-8")[-4000:]
            pytest.fail(f"the second local world did not start: {error}\n{tail}")
        urls = state["urls"]
        yield RunningWorld(
            api_url=urls["api"],
            emulator_url=urls["pleo-emulator"],
            dynamodb_url=urls["dynamodb-local"],
            moto_url=urls["moto"],
            resources=LocalResources(**state["resources"]),
            state_dir=state_dir,
            pid=process.pid,
        )
    finally:
        stop_spawned(process, config)


@pytest.fixture
def setup(
    activating_world: RunningWorld, secret_ledger: SecretLedger
) -> Iterator[tuple[Browser, EmulatorControl, WorldStore, str]]:
    assert activating_world.emulator_url is not None
    pleo = EmulatorControl(activating_world.emulator_url)
    pleo.reset()
    store = WorldStore(
        activating_world.dynamodb_url, activating_world.moto_url, activating_world.resources
    )
    company = str(pleo.seed_company(f"Company {uuid.uuid4().hex[:8]} A/S")["id"])
    pleo.set_auto_approve(True, company_id=company)
    browser = Browser(activating_world.api_url, pleo, store, secret_ledger)
    yield browser, pleo, store, company
    browser.close()
    pleo.close()


def register(pleo: EmulatorControl, browser: Browser, *, pleo_requires_configuration: bool) -> None:
    pleo.register_client(
        DEFAULT_CLIENT_ID,
        redirect_uris=[f"{browser.api_url}/oauth/callback"],
        requires_configuration=pleo_requires_configuration,
    )


def test_an_install_that_needs_no_configuration_is_activated_and_synced(
    setup: tuple[Browser, EmulatorControl, WorldStore, str],
) -> None:
    browser, pleo, store, company = setup
    register(pleo, browser, pleo_requires_configuration=False)

    answer = browser.install_oauth()

    assert answer.status_code == 200
    assert "Connected to Pleo" in answer.text
    assert "The first sync is queued" in answer.text
    assert any(c.startswith("pleo_session=") for c in answer.headers.get_list("set-cookie"))
    record = store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)
    assert record.status == "ACTIVATED"
    # The queued first sync: the worker reaches Pleo with the installation's token.
    wait_for(lambda: pleo.counters().get("GET /v1/installations/me", 0) >= 2, "the first sync")
    assert pleo.counters().get("POST /v1/installations/me:activate", 0) == 0
    assert "Active" in browser.settings_status()


def test_when_pleo_still_says_authorized_the_first_sync_activates_it(
    setup: tuple[Browser, EmulatorControl, WorldStore, str],
) -> None:
    browser, pleo, store, company = setup
    register(pleo, browser, pleo_requires_configuration=True)

    answer = browser.install_oauth()

    assert answer.status_code == 200
    record = store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)
    wait_for(
        lambda: pleo.counters().get("POST /v1/installations/me:activate"), "the worker to activate"
    )
    (in_pleo,) = [i for i in pleo.installations() if i["company_id"] == company]
    assert in_pleo["status"] == "ACTIVATED"
    activated = wait_for(
        lambda: (r := store.installation_of(company)) is not None and r.status == "ACTIVATED",
        "the local record to say ACTIVATED",
    )
    assert activated
