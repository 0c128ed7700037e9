"""The sync end to end through the local API, with the JSON snapshot adapter (`ADAPTER=json`, as
`make up ADAPTER=json` starts it): an API-key install, settings saved with a snapshot, the first
sync makes Pleo equal the snapshot, a second one writes nothing, and after a change in the
snapshot a sync writes exactly that change.

The session's world runs the template's default adapter, read once per function process, so this
module starts a world of its own with the adapter set.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from local.pleo_emulator.control_client import is_write
from tests.e2e.flows import Browser, SecretLedger, WorldStore, wait_for
from tests.support.emulator import EmulatorControl
from tests.support.snapshots import generated, pleo_view, snapshot_view
from tests.support.world_fixtures import RunningWorld, running_world

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

GROUPS = ("DEPT", "PROJ")
SYNC_S = 120.0


@pytest.fixture(scope="module")
def json_world(
    tmp_path_factory: pytest.TempPathFactory, secret_ledger: SecretLedger
) -> Iterator[RunningWorld]:
    state_dir = tmp_path_factory.mktemp("json-world")
    secret_ledger.log_dirs.append(state_dir)  # its logs are checked for leaks as well
    with running_world(state_dir, adapter="json") as world:
        yield world


@pytest.fixture
def setup(
    json_world: RunningWorld, secret_ledger: SecretLedger
) -> Iterator[tuple[Browser, EmulatorControl, WorldStore, str]]:
    assert json_world.emulator_url is not None
    pleo = EmulatorControl(json_world.emulator_url)
    pleo.reset()
    store = WorldStore(json_world.dynamodb_url, json_world.moto_url, json_world.resources)
    company = str(pleo.seed_company(f"Company {uuid.uuid4().hex[:8]} A/S")["id"])
    browser = Browser(json_world.api_url, pleo, store, secret_ledger)
    yield browser, pleo, store, company
    browser.close()
    pleo.close()


def _write(path: Path, document: dict[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document), encoding="utf-8")
    partial.replace(path)  # a sync never sees half a file


def _settled(browser: Browser, store: WorldStore) -> bool:
    """No sync queued or running, and the installation ACTIVATED, as the settings page says."""
    if store.queued_messages() != 0:
        return False
    page = browser.get("/settings").text
    return 'data-status="ACTIVATED"' in page and 'id="disconnect-guard"' not in page


def _install_and_settle(
    browser: Browser, pleo: EmulatorControl, store: WorldStore, company: str
) -> None:
    """An API-key install, then its first sync (no accounting system to read yet) ended."""
    assert browser.install_api_key(pleo.issue_api_key(company)).status_code == 303
    record = store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)
    wait_for(lambda: _settled(browser, store), "the install's first sync", SYNC_S)


def _sync_now(browser: Browser, store: WorldStore, pleo: EmulatorControl) -> dict[str, int]:
    """Press "Sync now", wait for its run to end; the Pleo requests it made, by operation."""
    pleo.clear_request_log()
    assert browser.submit("/settings/sync").status_code == 303
    wait_for(
        lambda: (
            pleo.counters().get("POST /v1/chart-of-accounts:search", 0) >= 1
            and _settled(browser, store)
        ),
        "the sync now run",
        SYNC_S,
    )
    return pleo.counters()


def _writes(counters: dict[str, int]) -> dict[str, int]:
    return {operation: count for operation, count in counters.items() if is_write(operation)}


def test_a_snapshot_is_synced_then_kept_and_only_its_change_is_written(
    setup: tuple[Browser, EmulatorControl, WorldStore, str], tmp_path: Path
) -> None:
    browser, pleo, store, company = setup
    # 1. The API-key install; its first sync has no accounting system to read yet.
    _install_and_settle(browser, pleo, store, company)
    assert 'name="source"' in browser.get("/settings").text  # the JSON adapter's form

    # 2. Settings saved with a snapshot; its tag groups are then offered and chosen.
    snapshot = generated({"DEPT": 3, "PROJ": 2, "COST": 1}, tax_codes=2, vendors=3, accounts=4)
    source = tmp_path / "snapshot.json"
    _write(source, snapshot)
    kinds: dict[str, Any] = {"sync_tax_codes": "on", "sync_vendors": "on", "sync_accounts": "on"}
    assert browser.submit("/settings", source=str(source), **kinds).status_code == 303
    wait_for(lambda: _settled(browser, store), "the sync after the first save", SYNC_S)
    page = browser.get("/settings").text
    for code in ("DEPT", "PROJ", "COST"):
        assert f'name="sync_tag_groups" value="{code}"' in page
    saved = browser.submit("/settings", source=str(source), sync_tag_groups=list(GROUPS), **kinds)
    assert saved.status_code == 303, saved.text

    # 3. The first sync with the groups: Pleo equals the chosen part of the snapshot.
    wait_for(lambda: _settled(browser, store), "the first sync with tag groups", SYNC_S)
    assert pleo_view(pleo.data(company)) == snapshot_view(snapshot, GROUPS)
    (installation,) = [i for i in pleo.installations() if i["company_id"] == company]
    assert installation["status"] == "ACTIVATED"
    assert "Last sync" in browser.get("/settings").text

    # 4. A second sync writes nothing: its requests are reads only.
    counters = _sync_now(browser, store, pleo)
    assert _writes(counters) == {}, counters
    assert pleo_view(pleo.data(company)) == snapshot_view(snapshot, GROUPS)

    # 5. A change in the snapshot: a vendor renamed, an account archived, a tag added.
    snapshot["vendors"][1]["name"] = "Vendor 1, renamed"
    snapshot["accounts"][2]["archived"] = True
    snapshot["tagGroups"][0]["tags"].append(
        {"code": "DEPT-NEW", "name": "A new department", "archived": False}
    )
    _write(source, snapshot)

    # 6. The next sync writes exactly that change, between the status Pleo shows meanwhile.
    counters = _sync_now(browser, store, pleo)
    assert _writes(counters) == {
        "PUT /v1/installations/me": 2,  # PENDING_INTEGRATION, then ACTIVATED again
        "PUT /v1/vendors/{id}": 1,  # the rename
        "PUT /v1/chart-of-accounts/{accountId}": 1,  # the archive
        "POST /v0/tag-groups/{groupId}/tags": 1,  # the new tag
    }, counters
    assert pleo_view(pleo.data(company)) == snapshot_view(snapshot, GROUPS)
    assert _writes(_sync_now(browser, store, pleo)) == {}


def _preview_state(browser: Browser) -> str:
    answer = browser.get("/settings/progress")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    state: str = answer.json()["preview"]["state"]
    return state


def test_a_dry_run_of_the_form_shows_the_plan_and_writes_nothing_to_pleo(
    setup: tuple[Browser, EmulatorControl, WorldStore, str], tmp_path: Path
) -> None:
    browser, pleo, store, company = setup
    _install_and_settle(browser, pleo, store, company)
    assert _preview_state(browser) == "none"
    before = pleo.data(company)

    # The settings as entered, tried without saving: the worker plans them with reads only.
    snapshot = generated({"DEPT": 2}, tax_codes=2, vendors=3, accounts=4)
    source = tmp_path / "snapshot.json"
    _write(source, snapshot)
    pleo.clear_request_log()
    kinds: dict[str, Any] = {"sync_tax_codes": "on", "sync_vendors": "on", "sync_accounts": "on"}
    asked = browser.submit("/settings/preview", preview="form", source=str(source), **kinds)
    assert asked.status_code == 303, asked.text
    wait_for(lambda: _preview_state(browser) == "ready", "the dry run", SYNC_S)

    counters = pleo.counters()
    assert counters, "the dry run read Pleo"
    assert _writes(counters) == {}, counters
    assert pleo.data(company) == before
    page = browser.get("/settings").text
    plan = page.split('<section id="dry-run"', 1)[1].split("</section>", 1)[0]
    for line in ("2 tax codes to create", "3 vendors to create", "4 accounts to create"):
        assert f"<li>{line}</li>" in plan, plan
    saved = store.installation_of(company)
    assert saved is not None
    assert "connection" not in saved.config  # tried, not saved

    # A second press while nothing is planned is taken; the saved settings need saving first.
    assert browser.submit("/settings/preview", preview="saved").status_code == 400
    assert browser.submit("/settings/preview", preview="elsewhere").status_code == 400
