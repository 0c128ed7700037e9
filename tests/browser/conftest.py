"""The page tests run against the same local world as the e2e tests (its fixtures, imported
here so this folder can run on its own), with a real Chromium driving the pages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from local.services import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-output" / "browser"


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium (`local/bootstrap.sh chromium`) driven by Playwright. Module-scoped:
    Playwright's sync API runs an event loop in the main thread while it is open, which tests
    that run their own loop (most of the suite) must not find there."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `local/bootstrap.sh chromium` (or `make deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    """test-output/browser/<test name>/ (gitignored), emptied before the test."""
    folder: Path = SCREENSHOTS / str(request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder
