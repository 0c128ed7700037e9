"""Flow 2 end to end: the API-key install, a bad key, and replacing the key from the settings."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import ERP_SETTINGS, Browser, WorldStore, wait_for

if TYPE_CHECKING:
    from tests.support.emulator import EmulatorControl

pytestmark = pytest.mark.e2e


def test_a_good_key_installs_activated_and_the_first_sync_runs(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    api_key = pleo.issue_api_key(company)

    answer = browser.install_api_key(api_key)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/settings"
    record = world_store.installation_of(company)
    assert record is not None
    assert (record.status, record.auth_method) == ("ACTIVATED", "api_key")
    assert world_store.plaintext_credentials(record.installation_id) == [api_key]
    stored = world_store.credentials.get(record.installation_id)
    assert stored is not None
    assert stored.api_key is not None
    assert api_key.encode() not in stored.api_key
    counters = pleo.counters()
    assert counters["GET /v1/introspect"] == 1
    assert counters["POST /v1/installations/me"] == 1
    (in_pleo,) = [i for i in pleo.installations() if i["company_id"] == company]
    assert in_pleo["status"] == "ACTIVATED"
    assert in_pleo["metadata"] == {"pleoConnector": {"connectedBy": "api_key"}}
    # The first sync: the worker reaches Pleo with the key (the install itself made one GET).
    wait_for(
        lambda: pleo.counters().get("GET /v1/installations/me", 0) >= 2, "the first sync to run"
    )
    assert all(call["auth"] == "basic" for call in pleo.request_log("GET /v1/installations/me"))
    assert "Active" in browser.settings_status()
    assert 'href="/install/api-key"' in browser.get("/settings").text
    # Saving the settings later adds to the app's metadata, never drops what is there.
    browser.ledger.add("accounting system token", ERP_SETTINGS["api_token"])
    assert browser.submit("/settings", **ERP_SETTINGS, sync_tag_groups="DEPT").status_code == 303
    (in_pleo,) = [i for i in pleo.installations() if i["company_id"] == company]
    ours = in_pleo["metadata"]["pleoConnector"]
    assert ours["connectedBy"] == "api_key"
    assert ours["syncChoices"]["tag_groups"] == ["DEPT"]


@pytest.mark.parametrize(
    "bad_key",
    [
        pytest.param("pleo_key_" + "x" * 40, id="unknown to Pleo"),
        pytest.param("short", id="too short"),
        pytest.param("pleo_key_\u00e6\u00f8\u00e5" + "k" * 20, id="non-ASCII"),
        pytest.param("pleo_key_abc\r\nSet-Cookie: x=1", id="CR/LF"),
        pytest.param("k" * 100_000, id="100 KB"),
    ],
)
def test_a_bad_key_gets_a_clear_error_is_not_echoed_and_nothing_is_stored(
    bad_key: str,
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    items_before = len(world_store.all_items())

    answer = browser.install_api_key(bad_key)

    assert answer.status_code == 400
    assert bad_key not in answer.text
    assert bad_key.strip()[:24] not in answer.text
    assert "x=1" not in answer.headers.get("set-cookie", "")
    assert 'role="alert"' in answer.text  # a clear message, not a stack trace
    assert pleo.installations() == []
    assert world_store.installation_of(company) is None
    assert len(world_store.all_items()) == items_before


def test_a_revoked_key_is_refused_with_a_clear_message(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    api_key = pleo.issue_api_key(company)
    pleo.revoke_api_key(api_key)

    answer = browser.install_api_key(api_key)

    assert answer.status_code == 400
    assert "Pleo did not accept this API key" in answer.text
    assert api_key not in answer.text
    assert world_store.installation_of(company) is None
    assert pleo.counters().get("POST /v1/installations/me", 0) == 0


def test_the_key_can_be_replaced_from_the_settings_page(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    old_key = pleo.issue_api_key(company)
    assert browser.install_api_key(old_key).status_code == 303
    record = world_store.installation_of(company)
    assert record is not None
    form = browser.get("/install/api-key")
    assert "Replace the Pleo API key" in form.text
    new_key = pleo.issue_api_key(company)

    answer = browser.install_api_key(new_key)

    assert answer.status_code == 303
    replaced = world_store.installation_of(company)
    assert replaced is not None
    assert replaced.installation_id == record.installation_id
    assert world_store.plaintext_credentials(record.installation_id) == [new_key]
    assert len([i for i in pleo.installations() if i["company_id"] == company]) == 1
    # The old key is gone from the app: revoking it in Pleo changes nothing for the app.
    pleo.revoke_api_key(old_key)
    pleo.clear_request_log()
    assert browser.submit("/settings/sync").status_code == 303
    wait_for(lambda: pleo.counters().get("GET /v1/installations/me"), "the sync with the new key")
    assert [call["status"] for call in pleo.request_log("GET /v1/installations/me")] == [200]


def test_a_replacement_key_of_another_company_is_refused(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    own_key = pleo.issue_api_key(company)
    assert browser.install_api_key(own_key).status_code == 303
    other_company = str(pleo.seed_company(f"Other {secrets.token_hex(4)} A/S")["id"])
    foreign_key = pleo.issue_api_key(other_company)

    answer = browser.install_api_key(foreign_key)

    assert answer.status_code == 403
    assert "another Pleo company" in answer.text
    assert foreign_key not in answer.text
    record = world_store.installation_of(company)
    assert record is not None
    assert world_store.plaintext_credentials(record.installation_id) == [own_key]
    assert world_store.installation_of(other_company) is None
