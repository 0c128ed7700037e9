"""Security bar items 12-16 of issue 5, and 19 (the Referer check): the pages, forms, sessions
and stored credentials."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from pleo_connector.web.security import progress_script_hash
from pleo_connector.web.session import SessionCodec, signing_secrets
from tests.e2e.flows import ERP_SETTINGS, Browser, WorldStore, hidden_fields, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from tests.support.emulator import EmulatorControl
    from tests.support.world_fixtures import RunningWorld

pytestmark = pytest.mark.e2e

POST_ROUTES = ("/settings", "/settings/sync", "/settings/disconnect", "/install/api-key")


def api_key_installed(browser: Browser, pleo: EmulatorControl, company: str) -> None:
    """Install with an API key and wait for its first sync, so Pleo is quiet afterwards."""
    syncs_before = len(
        [c for c in pleo.request_log("GET /v1/installations/me") if c["status"] == 200]
    )
    answer = browser.install_api_key(pleo.issue_api_key(company))
    assert answer.status_code == 303, answer.text
    wait_for(
        lambda: (
            len([c for c in pleo.request_log("GET /v1/installations/me") if c["status"] == 200])
            > syncs_before
        ),
        "the first sync",
    )


def installation_id_of(store: WorldStore, company: str) -> str:
    record = store.installation_of(company)
    assert record is not None
    return record.installation_id


# --- 12. the security headers on every page ------------------------------------------------------


def directives(policy: str) -> dict[str, list[str]]:
    named = (directive.split() for directive in policy.split(";") if directive.strip())
    return {name: sources for name, *sources in named}


def assert_security_headers(response: httpx.Response, api_url: str) -> None:
    where = f"{response.request.method} {response.url.path} -> {response.status_code}"
    headers = response.headers
    assert "no-store" in headers.get("cache-control", ""), where
    assert headers.get("referrer-policy") == "no-referrer", where
    assert headers.get("x-content-type-options") == "nosniff", where
    policy = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, where
    assert "default-src 'none'" in policy, where
    # The one script any page may run is the settings page's progress check, by its hash.
    assert directives(policy)["script-src"] == [progress_script_hash()], where
    assert directives(policy)["connect-src"] == ["'self'"], where
    # No third-party resources: the only other origin named is Pleo's, as a form target.
    for directive in policy.split(";"):
        name, *sources = directive.split()
        if name != "form-action":
            assert all(not s.startswith("http") for s in sources), where


def test_12_every_page_carries_the_security_headers(
    new_browser: Callable[[], Browser],
    pleo: EmulatorControl,
    company: str,
    local_world: RunningWorld,
) -> None:
    seen: list[httpx.Response] = []
    browser = new_browser()
    browser.http.event_hooks["response"].append(seen.append)

    browser.get("/settings")  # 401
    browser.get("/install/api-key")  # the form
    browser.install_api_key("pleo_key_" + "z" * 30)  # 400, the form again
    browser.get("/oauth/callback?state=nope&code=nope")  # 400
    browser.get("/oauth/callback?error=access_denied&state=" + "s" * 43)  # 400
    browser.start_oauth()  # 302 to Pleo
    browser.install_oauth()  # 303 to /settings
    browser.get("/settings")  # the settings page
    browser.get("/settings?installation_id=not-this-one")  # 403
    browser.submit("/settings", **ERP_SETTINGS)  # 303
    browser.post("/settings", data={"csrf_token": "wrong"})  # 403
    browser.submit("/settings/sync")  # 303 or 409
    wait_for(lambda: "Active" in browser.settings_status(), "activation")
    browser.submit("/settings/disconnect")  # the disconnected page
    other = new_browser()
    other.install_oauth()  # the done page's redirect, in a fresh browser
    browser.get("/nothing-here")  # the local API's own 404 for unknown routes
    browser.get("/health")

    assert {r.status_code for r in seen} >= {200, 302, 303, 400, 401, 403, 404}
    for response in seen:
        assert_security_headers(response, local_world.api_url)
    app_pages = [r for r in seen if r.url.path not in ("/nothing-here", "/health")]
    for response in app_pages:
        if response.status_code in (200, 400, 401, 403, 409):
            assert response.headers["content-type"].startswith("text/html")
    if (record := browser.store.installation_of(company)) is not None:
        other.remember_credentials(record.installation_id)


# --- 13. CSRF on every POST; a tampered or expired session -------------------------------------


@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize(
    "attack",
    ["no token", "wrong token", "cross-site fetch", "foreign origin"],
)
def test_13_a_forged_post_gets_a_403_and_changes_nothing(
    route: str,
    attack: str,
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    api_key_installed(browser, pleo, company)
    installation_id = installation_id_of(world_store, company)
    fields = browser.page_form("/settings")
    headers = {"Origin": browser.api_url, "Sec-Fetch-Site": "same-origin"}
    if attack == "no token":
        fields.pop("csrf_token")
    elif attack == "wrong token":
        fields["csrf_token"] = fields["csrf_token"][::-1]
    elif attack == "cross-site fetch":
        headers["Sec-Fetch-Site"] = "cross-site"
    else:
        headers["Origin"] = "https://evil.example"
    data = {**fields, **ERP_SETTINGS, "api_key": pleo.issue_api_key(company)}
    browser.ledger.add("API key", data["api_key"])
    pleo.clear_request_log()

    answer = browser.post(route, data=data, headers=headers)

    assert answer.status_code == 403
    assert "did not come from this app" in answer.text
    record = world_store.installations.get(installation_id)
    assert record is not None
    assert (record.status, record.config) == ("ACTIVATED", {})
    assert pleo.counters() == {}  # nothing reached Pleo: no PUT, no DELETE, no key check


def test_13_a_tampered_session_gets_a_401_with_a_way_back(
    browser: Browser, pleo: EmulatorControl, company: str
) -> None:
    api_key_installed(browser, pleo, company)
    session = next(c for c in browser.http.cookies.jar if c.name == "pleo_session")
    assert session.value is not None
    version, kid, payload, mac = session.value.split(".")
    tampered = ".".join(
        [version, kid, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), mac]
    )
    browser.http.cookies.set("pleo_session", tampered, domain=session.domain, path="/")

    answer = browser.get("/settings")

    assert answer.status_code == 401
    assert 'href="/oauth/start"' in answer.text
    assert 'href="/install/api-key"' in answer.text
    assert "pleo_session=;" in answer.headers["set-cookie"]


def test_13_an_expired_session_gets_a_401_with_a_way_back(
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
    local_world: RunningWorld,
) -> None:
    api_key_installed(browser, pleo, company)
    installation_id = installation_id_of(world_store, company)
    three_hours_ago = time.time() - 3 * 3600
    codec = SessionCodec(
        signing_secrets(world_store.session_secret()),
        public_base_url=local_world.api_url,
        clock=lambda: three_hours_ago,
    )
    expired = codec.encode(codec.issue(installation_id))
    browser.ledger.add("session cookie", expired)
    session = next(c for c in browser.http.cookies.jar if c.name == "pleo_session")
    browser.http.cookies.set("pleo_session", expired, domain=session.domain, path="/")

    answer = browser.get("/settings")

    assert answer.status_code == 401
    assert "expired" in answer.text
    assert 'href="/oauth/start"' in answer.text


def _two_installations(
    new_browser: Callable[[], Browser],
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> tuple[Browser, Browser, str, str]:
    """Two companies installed with API keys from two browsers: both browsers, both ids."""
    owner_a, owner_b = new_browser(), new_browser()
    api_key_installed(owner_a, pleo, company)
    company_b = str(pleo.seed_company("Company B A/S")["id"])
    api_key_installed(owner_b, pleo, company_b)
    return (
        owner_a,
        owner_b,
        installation_id_of(world_store, company),
        installation_id_of(world_store, company_b),
    )


# --- 14. a session for installation A used on installation B -------------------------------------


def test_14_a_session_for_one_installation_cannot_act_on_another(
    new_browser: Callable[[], Browser],
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    owner_a, _owner_b, installation_a, installation_b = _two_installations(
        new_browser, pleo, company, world_store
    )

    shown = owner_a.get(f"/settings?installation_id={installation_b}")
    disconnect = owner_a.submit("/settings/disconnect", installation_id=installation_b)
    save = owner_a.submit("/settings", installation_id=installation_b, **ERP_SETTINGS)

    assert shown.status_code == 403
    assert "belongs to another installation" in shown.text
    assert installation_b not in shown.text
    assert (disconnect.status_code, save.status_code) == (403, 403)
    assert pleo.counters().get("DELETE /v1/installations/me", 0) == 0
    for installation_id in (installation_a, installation_b):
        record = world_store.installations.get(installation_id)
        assert record is not None
        assert record.config == {}
    own = owner_a.get(f"/settings?installation_id={installation_a}")
    assert own.status_code == 200
    assert hidden_fields(own.text)["installation_id"] == installation_a


# --- 16. a ciphertext copied to another installation's row ---------------------------------------


def test_16_a_credential_copied_to_another_row_fails_as_an_auth_problem(
    new_browser: Callable[[], Browser],
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    owner_a, owner_b, installation_a, installation_b = _two_installations(
        new_browser, pleo, company, world_store
    )
    world_store.copy_credential(installation_a, installation_b)
    pleo.clear_request_log()

    saved = owner_b.submit("/settings", **ERP_SETTINGS)
    disconnect = owner_b.submit("/settings/disconnect")
    synced = owner_b.submit("/settings/sync")

    assert saved.status_code == 401
    assert "could not be used" in saved.text
    assert disconnect.status_code == 401
    assert synced.status_code == 303
    wait_for(
        lambda: (r := world_store.installations.get(installation_b)) and r.local_error,
        "the worker to mark installation B",
    )
    record_b = world_store.installations.get(installation_b)
    assert record_b is not None
    assert record_b.local_error == "AUTH_ERROR"
    assert not record_b.schedulable
    assert "connect again" in owner_b.settings_status()
    assert pleo.counters() == {}  # B's Pleo was never called with A's key
    record_a = world_store.installations.get(installation_a)
    assert record_a is not None
    assert record_a.local_error is None
    assert owner_a.submit("/settings/sync").status_code == 303


# --- 19. with neither Origin nor Sec-Fetch-Site, the Referer must be the app's -----------------


def test_19_a_foreign_referer_without_origin_or_fetch_metadata_gets_a_403(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    api_key_installed(browser, pleo, company)
    installation_id = installation_id_of(world_store, company)
    data = {**browser.page_form("/settings"), **ERP_SETTINGS}
    pleo.clear_request_log()

    forged = browser.post("/settings", data=data, headers={"Referer": "https://evil.example/x"})
    changed_by_forgery = world_store.installations.get(installation_id)
    calls_after_forgery = pleo.counters()
    own_page = browser.post("/settings", data=data, headers={"Referer": f"{browser.api_url}/x"})
    # The first save starts the first sync; let it finish before saving again.
    wait_for(lambda: "Active" in browser.settings_status(), "activation")
    no_referer = browser.post("/settings", data=data)

    assert forged.status_code == 403
    assert "did not come from this app" in forged.text
    assert changed_by_forgery is not None
    assert changed_by_forgery.config == {}
    assert calls_after_forgery == {}  # nothing reached Pleo
    assert own_page.status_code == 303  # a same-origin Referer passes on the token
    assert no_referer.status_code == 303  # no Referer at all: the token decides alone
