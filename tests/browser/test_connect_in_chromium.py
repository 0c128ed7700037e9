"""A person's path through the pages in a real Chromium: the OAuth install via the emulator's
consent page, then the settings page (connection form, tag groups, save, progress, ACTIVATED).

Screenshots go to test-output/browser/<test name>/ (gitignored), one per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.flows import ERP_SETTINGS, SecretLedger, WorldStore, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.emulator import EmulatorControl
    from tests.support.world_fixtures import RunningWorld

pytestmark = pytest.mark.browser

ACTIVATE = "POST /v1/installations/me:activate"


def test_a_person_connects_configures_and_sees_the_app_activated(
    chromium: Any,
    local_world: RunningWorld,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
    secret_ledger: SecretLedger,
    screenshots: Path,
) -> None:
    pleo.set_auto_approve(False)
    context = chromium.new_context(viewport={"width": 1000, "height": 1400})
    page = context.new_page()
    api = local_world.api_url

    def remember(request: Any) -> None:
        for name, values in parse_qs(urlsplit(request.url).query).items():
            if name in ("state", "code"):
                secret_ledger.add(f"OAuth {name} (browser)", values[0])

    page.on("request", remember)

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        if page.url.startswith(api):
            secret_ledger.record_page(f"browser page {urlsplit(page.url).path}", page.content())

    # Pleo sends the person to the Initiation URI; the app sends them on to Pleo's consent page.
    page.goto(f"{api}/oauth/start")
    page.wait_for_selector("select#company_id")
    assert page.url.startswith(f"{pleo.base_url}/oauth/authorize")
    page.select_option("select#company_id", company)
    shot("01-pleo-consent")
    page.click("button[name=decision][value=approve]")

    # Back in the app: AUTHORIZED, on the settings page.
    page.wait_for_url(f"{api}/settings")
    assert "Connect the accounting system" in page.inner_text(
        "section[aria-labelledby=status-title]"
    )
    shot("02-settings-authorized")
    record = world_store.installation_of(company)
    assert record is not None
    for value in world_store.plaintext_credentials(record.installation_id):
        secret_ledger.add("stored token", value)

    # The connection form, rendered from the adapter's settings model, and the tag groups.
    page.fill("#field-source_url", ERP_SETTINGS["source_url"])
    page.fill("#field-api_token", ERP_SETTINGS["api_token"])
    secret_ledger.add("accounting system token", ERP_SETTINGS["api_token"])
    page.select_option("#field-environment", "sandbox")
    page.fill("#field-company_code", "ACME")
    for code in ("DEPT", "PROJ", "COST"):
        page.check(f"input[name=sync_tag_groups][value={code}]")
    shot("03-settings-filled")
    # Hold the activation back until the progress has been seen.
    pleo.inject_fault("error", status=503, operation=ACTIVATE)
    page.click("button[type=submit]:has-text('Save and sync')")

    page.wait_for_url(f"{api}/settings")
    wait_for(lambda: pleo.faults()[0]["applied"], "the worker's first activation attempt")
    page.reload()
    assert page.is_visible("progress")
    assert page.is_disabled("button.danger")  # no disconnect while syncing
    shot("04-settings-syncing")

    pleo.clear_faults()
    # The page refreshes itself while the sync runs; no reload from the test from here on.
    page.wait_for_selector("p.status.good", timeout=90_000)
    assert "Active" in page.inner_text("p.status.good")
    assert page.is_checked("input[name=sync_tag_groups][value=PROJ]")
    assert not page.is_checked("input[name=sync_tag_groups][value=REGION]")
    assert page.input_value("#field-api_token") == ""  # a stored secret is never sent back
    shot("05-settings-activated")

    record = world_store.installation_of(company)
    assert record is not None
    assert record.status == "ACTIVATED"
    assert record.sync_choices["tag_groups"] == ["DEPT", "PROJ", "COST"]
    assert [p.name for p in sorted(screenshots.glob("*.png"))] == [
        "01-pleo-consent.png",
        "02-settings-authorized.png",
        "03-settings-filled.png",
        "04-settings-syncing.png",
        "05-settings-activated.png",
    ]
    context.close()
