"""Flows 1, 3 and 6 end to end: the OAuth install through the local API against the emulator,
the settings page and the activation by the worker, "sync now", and disconnect.

The session's world runs with REQUIRES_CONFIGURATION=true (the template's default), so an install
lands on AUTHORIZED and the settings page; test_connect_flows_activated.py covers the other value
with a world of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.flows import ERP_SETTINGS, Browser, WorldStore, wait_for
from tests.support.emulator import EmulatorControl, consent_form_fields

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.world_fixtures import RunningWorld

pytestmark = pytest.mark.e2e

ACTIVATE = "POST /v1/installations/me:activate"


def installed(browser: Browser, store: WorldStore, company: str) -> str:
    """Install with OAuth; returns the installation id (its tokens go to the ledger)."""
    answer = browser.install_oauth()
    assert answer.status_code == 303, answer.text
    record = store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)
    return record.installation_id


def pleo_installation(pleo: EmulatorControl, company: str) -> list[dict[str, Any]]:
    return [i for i in pleo.installations() if i["company_id"] == company]


def configure(browser: Browser, tag_groups: tuple[str, ...] = ("DEPT", "PROJ")) -> httpx.Response:
    browser.ledger.add("accounting system token", ERP_SETTINGS["api_token"])
    return browser.submit(
        "/settings", **ERP_SETTINGS, sync_tag_groups=list(tag_groups), sync_tax_codes="on"
    )


def test_an_install_that_needs_configuration_lands_authorized_on_the_settings_page(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    answer = browser.install_oauth()

    assert answer.status_code == 303
    assert answer.headers["location"] == "/settings"
    set_cookies = answer.headers.get_list("set-cookie")
    assert any(c.startswith("pleo_session=") and "HttpOnly" in c for c in set_cookies)
    assert any(c.startswith("pleo_oauth_binding=;") and "Max-Age=0" in c for c in set_cookies)
    record = world_store.installation_of(company)
    assert record is not None
    assert (record.status, record.auth_method) == ("AUTHORIZED", "oauth")
    browser.remember_credentials(record.installation_id)
    stored = world_store.credentials.get(record.installation_id)
    assert stored is not None
    assert stored.access_token is not None
    plaintext = world_store.plaintext_credentials(record.installation_id)
    assert all(value.encode() not in stored.access_token for value in plaintext)
    assert pleo.counters().get("POST /oauth/token") == 1
    assert [i["status"] for i in pleo_installation(pleo, company)] == ["AUTHORIZED"]
    assert "Connected to Pleo" in browser.settings_status()


def test_saving_the_settings_shows_progress_until_the_worker_activates(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    installation_id = installed(browser, world_store, company)
    # Metadata another part of the app (or Pleo) keeps must survive: a PUT replaces it all.
    access_token = world_store.plaintext_credentials(installation_id)[0]
    kept = httpx.put(
        f"{pleo.base_url}/v1/installations/me",
        headers={"Authorization": f"Bearer {access_token}"},
        json={"status": "AUTHORIZED", "metadata": {"billing": {"plan": "gold"}}},
    )
    assert kept.status_code == 200, kept.text
    # The first activation attempts fail, so the page is seen while the sync is pending.
    pleo.inject_fault("error", status=503, operation=ACTIVATE)

    saved = configure(browser)

    assert saved.status_code == 303
    assert saved.headers["location"] == "/settings"
    wait_for(lambda: pleo.faults()[0]["applied"], "the worker's first activation attempt")
    pending = browser.get("/settings")
    assert "Syncing with the accounting system" in pending.text
    assert "<progress" in pending.text
    assert '<meta http-equiv="refresh"' in pending.text
    record = world_store.installations.get(installation_id)
    assert record is not None
    assert record.status == "PENDING_INTEGRATION"
    assert record.sync_choices["tag_groups"] == ["DEPT", "PROJ"]
    assert record.sync_choices["tax_codes"] is True
    connection = record.config["connection"]
    assert connection["values"]["source_url"] == ERP_SETTINGS["source_url"]
    assert "api_token" not in connection["values"]
    assert ERP_SETTINGS["api_token"] not in str(record.config)
    (in_pleo,) = pleo_installation(pleo, company)
    metadata = in_pleo["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["billing"] == {"plan": "gold"}
    assert metadata["pleoConnector"]["syncChoices"]["tag_groups"] == ["DEPT", "PROJ"]

    pleo.clear_faults()
    wait_for(lambda: "Active" in browser.settings_status(), "the settings page to show Active")

    record = world_store.installations.get(installation_id)
    assert record is not None
    assert record.status == "ACTIVATED"
    assert [i["status"] for i in pleo_installation(pleo, company)] == ["ACTIVATED"]
    assert pleo.counters()[ACTIVATE] >= 2  # the failed attempt(s), then the one that worked


def test_installing_again_for_the_same_company_updates_the_one_installation(
    new_browser: Callable[[], Browser], pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    first = new_browser()
    installation_id = installed(first, world_store, company)
    assert configure(first).status_code == 303
    wait_for(lambda: "Active" in first.settings_status(), "activation")

    second = new_browser()
    again = second.install_oauth()

    assert again.status_code == 303
    record = world_store.installation_of(company)
    assert record is not None
    second.remember_credentials(record.installation_id)
    assert record.installation_id == installation_id
    assert len(pleo_installation(pleo, company)) == 1
    company_pointers = [
        item
        for item in world_store.all_items()
        if item.get("company_id", {}).get("S") == company and item["sk"]["S"] == "META"
    ]
    assert len(company_pointers) == 1
    assert record.sync_choices["tag_groups"] == ["DEPT", "PROJ"]  # the settings are kept
    assert pleo.counters()["POST /oauth/token"] == 2


def test_pleo_refusing_the_authorization_is_shown_as_a_clear_page(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    pleo.set_auto_approve(False)
    authorize_url = browser.start_oauth()
    with httpx.Client(timeout=30) as pleo_user:
        consent = pleo_user.get(authorize_url)
        assert consent.status_code == 200
        denied = pleo_user.post(
            authorize_url.split("?")[0],
            data={**consent_form_fields(consent.text), "decision": "deny"},
            headers={"Origin": pleo.base_url},
        )
    callback_url = denied.headers["location"]
    assert "error=access_denied" in callback_url

    page = browser.callback(callback_url)

    assert page.status_code == 400
    assert "The connection to Pleo was not made" in page.text
    assert "access_denied" in page.text
    assert 'href="/oauth/start"' in page.text
    assert world_store.installation_of(company) is None
    assert pleo.counters().get("POST /oauth/token", 0) == 0


def test_sync_now_queues_a_sync_that_the_worker_runs(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    installed(browser, world_store, company)
    refused = browser.submit("/settings/sync")
    assert refused.status_code == 409
    assert "Save the settings first" in refused.text
    assert configure(browser).status_code == 303
    wait_for(lambda: "Active" in browser.settings_status(), "activation")
    pleo.clear_request_log()

    answer = browser.submit("/settings/sync")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/settings"
    wait_for(lambda: pleo.counters().get("GET /v1/installations/me"), "the worker to reach Pleo")
    (call,) = pleo.request_log("GET /v1/installations/me")
    assert call["auth"] == "bearer"


def test_more_than_five_tag_groups_are_refused_and_nothing_changes(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    installation_id = installed(browser, world_store, company)

    answer = configure(browser, ("DEPT", "PROJ", "COST", "REGION", "CLIENT", "PRODUCT"))

    assert answer.status_code == 400
    assert "Choose at most 5 tag groups" in answer.text
    record = world_store.installations.get(installation_id)
    assert record is not None
    assert (record.status, record.sync_choices) == ("AUTHORIZED", {})
    assert pleo.counters().get("PUT /v1/installations/me", 0) == 0
    unknown = configure(browser, ("DEPT", "NOT-OFFERED"))
    assert unknown.status_code == 400
    assert "Choose tag groups from the list" in unknown.text


def test_disconnect_is_refused_while_syncing_then_removes_everything(
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
    local_world: RunningWorld,
) -> None:
    installation_id = installed(browser, world_store, company)
    pleo.inject_fault("error", status=503, operation=ACTIVATE)
    assert configure(browser).status_code == 303
    wait_for(lambda: pleo.faults()[0]["applied"], "the worker's first activation attempt")

    refused = browser.submit("/settings/disconnect")

    assert refused.status_code == 409
    assert "A sync is running" in refused.text
    assert pleo_installation(pleo, company)
    assert world_store.installations.get(installation_id) is not None

    pleo.clear_faults()
    wait_for(lambda: "Active" in browser.settings_status(), "activation")
    answer = browser.submit("/settings/disconnect")

    assert answer.status_code == 200
    assert "Max-Age=0" in answer.headers["set-cookie"]
    assert pleo.counters()["DELETE /v1/installations/me"] == 1
    assert pleo_installation(pleo, company) == []
    assert all(grant["revoked"] for grant in pleo.grants() if grant["company_id"] == company)
    assert world_store.items_of(installation_id) == []
    assert world_store.installation_of(company) is None
    assert browser.get("/settings").status_code == 401
