"""The dry run in a real Chromium, against a world that reads GnuCash books (`ADAPTER=gnucash`):
install through Pleo's consent, the settings with the demo book, the dry run (reads only), save,
the first sync's counts (the ones the dry run foretold), and "Sync now", which changes nothing.
The page moves on by its progress check alone: the test never reloads it.

Screenshots go to test-output/browser/<test name>/ (gitignored), one per step.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from local.gnucash_books import write_demo_book
from tests.e2e.flows import SecretLedger, WorldStore
from tests.support.emulator import EmulatorControl
from tests.support.world_fixtures import running_world

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.world_fixtures import RunningWorld

pytestmark = pytest.mark.browser

SETTLE_MS = 120_000
COUNT_LINE = re.compile(r"^(\d+) (tag groups?|tags?|tax codes?|vendors?|accounts?) to create$")


@pytest.fixture(scope="module")
def gnucash_world(
    tmp_path_factory: pytest.TempPathFactory, secret_ledger: SecretLedger
) -> Iterator[RunningWorld]:
    state_dir = tmp_path_factory.mktemp("gnucash-world")
    secret_ledger.log_dirs.append(state_dir)  # its logs are checked for leaks as well
    with running_world(state_dir, adapter="gnucash") as world:
        yield world


def _lines(page: Any, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def test_the_dry_run_foretells_the_first_sync_and_sync_now_then_changes_nothing(
    chromium: Any,
    gnucash_world: RunningWorld,
    secret_ledger: SecretLedger,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    assert gnucash_world.emulator_url is not None
    pleo = EmulatorControl(gnucash_world.emulator_url)
    pleo.reset()
    pleo.set_auto_approve(False)
    company = str(pleo.seed_company(f"Demo {uuid.uuid4().hex[:8]} ApS")["id"])
    store = WorldStore(gnucash_world.dynamodb_url, gnucash_world.moto_url, gnucash_world.resources)
    book = write_demo_book(tmp_path / "demo.gnucash")
    context = chromium.new_context(viewport={"width": 1000, "height": 1600})
    page = context.new_page()
    api = gnucash_world.api_url

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        if page.url.startswith(api):
            secret_ledger.record_page(f"browser page {urlsplit(page.url).path}", page.content())

    # 1. Install: Pleo's consent, then back on the settings page, AUTHORIZED.
    page.goto(f"{api}/oauth/start")
    page.wait_for_selector("select#company_id")
    page.select_option("select#company_id", company)
    page.click("button[name=decision][value=approve]")
    page.wait_for_url(f"{api}/settings")
    shot("01-installed")
    record = store.installation_of(company)
    assert record is not None
    for value in store.plaintext_credentials(record.installation_id):
        secret_ledger.add("stored token", value)

    # 2. The settings with the demo book, both of its tag groups chosen.
    page.fill("#field-book", str(book))
    for code in ("JOBS", "CUSTOMERS"):
        page.check(f"input[name=sync_tag_groups][value={code}]")
    shot("02-settings-with-the-demo-book")

    # 3. The dry run of the settings as entered: planned with reads only, shown when ready.
    pleo.clear_request_log()
    page.click("button[name=preview][value=form]")
    page.wait_for_selector("ul.plan-counts", timeout=SETTLE_MS)
    shot("03-dry-run")
    foretold = _lines(page, "ul.plan-counts li")
    assert foretold, "the dry run planned nothing for the demo book"
    assert all(COUNT_LINE.match(line) for line in foretold), foretold
    assert pleo.counters(), "the dry run read Pleo"
    assert pleo.writes() == {}
    tried = store.installation_of(company)
    assert tried is not None
    assert tried.status == "AUTHORIZED"
    assert "connection" not in tried.config  # tried, not saved

    # 4. Save. The page shows the saved settings (none yet), so the book is entered again.
    page.fill("#field-book", str(book))
    for code in ("JOBS", "CUSTOMERS"):
        page.check(f"input[name=sync_tag_groups][value={code}]")
    page.click("button[type=submit]:has-text('Save and sync')")

    # 5. The first sync's counts: exactly what the dry run said it would create.
    page.wait_for_selector("p.status.good", timeout=SETTLE_MS)
    shot("04-first-sync")
    synced = _lines(page, "section[aria-labelledby=last-run-title] li")
    assert [line.replace(" created", " to create") for line in synced] == foretold
    installation = next(i for i in pleo.installations() if i["company_id"] == company)
    assert installation["status"] == "ACTIVATED"

    # 6. "Sync now": the page follows the run by itself and says nothing needed to change.
    pleo.clear_request_log()
    page.click("button:has-text('Sync now')")
    page.wait_for_function(
        "() => document.body.innerText.includes('Nothing needed to change.')"
        " && !document.querySelector('[data-progress-url]')",
        timeout=SETTLE_MS,
    )
    shot("05-sync-now-no-changes")
    assert pleo.writes() == {}
    assert [p.name for p in sorted(screenshots.glob("*.png"))] == [
        "01-installed.png",
        "02-settings-with-the-demo-book.png",
        "03-dry-run.png",
        "04-first-sync.png",
        "05-sync-now-no-changes.png",
    ]
    context.close()
    pleo.close()
