"""The settings function builds its page from the installation and its runs: the last run, the
source problem (only while the source is failing), the pause message, "sync now" state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from pleo_connector.composition.roots import SettingsFunction, WebParts
from pleo_connector.store.sync_runs import SyncRun
from pleo_connector.vocabulary import InstallationStatus, LocalError, SyncOutcome, SyncReason
from tests.support.handlers import load_handler_module
from tests.unit.connect.fakes import (
    INSTALLATION,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleoClients,
    FakeRuns,
    installation,
    record,
    settings_deps,
    web_settings,
)

if TYPE_CHECKING:
    from pleo_connector.web.pages import SettingsView

pytestmark = pytest.mark.unit

STARTED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def app() -> Any:
    return load_handler_module("settings")


def view(app: Any, local: Any, runs: FakeRuns | None = None) -> SettingsView:
    deps = settings_deps(
        FakeInstallations(local),
        FakePleoClients(FakeInstallationsApi(installation(local.status))),
        runs=runs,
    )
    function = SettingsFunction(WebParts(web_settings()), deps)
    built: SettingsView = app._view(function, INSTALLATION, "csrf")
    return built


def test_an_installation_paused_by_source_failures_shows_why(app: Any) -> None:
    paused = replace(
        record(InstallationStatus.INACTIVE),
        local_error=LocalError.SOURCE_FAILING,
        failure_count=5,
        failure_reason="The source answered 404 Not Found.",
    )
    runs = FakeRuns()
    runs.record(
        SyncRun(
            installation_id=INSTALLATION,
            started_at=STARTED,
            finished_at=STARTED + timedelta(seconds=3),
            reason=SyncReason.SCHEDULED,
            outcome=SyncOutcome.DEACTIVATED,
            message="The source answered 404 Not Found.",
        )
    )

    shown = view(app, paused, runs)

    assert shown.source_problem == "The source answered 404 Not Found."
    assert shown.source_failures == 5
    assert shown.status_message == app.SOURCE_PAUSED_MESSAGE
    assert shown.last_run is not None
    assert shown.last_run.reason == "The source answered 404 Not Found."
    assert not shown.can_sync


def test_without_a_source_failure_there_is_no_source_problem(app: Any) -> None:
    inactive_in_pleo = replace(record(InstallationStatus.INACTIVE), failure_reason="stale")

    shown = view(app, inactive_in_pleo)

    assert shown.source_problem is None
    assert shown.status_message == app.STATUS_MESSAGES[InstallationStatus.INACTIVE]
    assert shown.last_run is None


def test_a_running_sync_and_a_queued_press_reach_the_page(app: Any) -> None:
    pressed = replace(record(InstallationStatus.ACTIVATED), sync_requested_at=datetime.now(UTC))

    shown = view(app, pressed, FakeRuns(held_by_other=True))

    assert (shown.sync_running, shown.sync_queued) == (True, True)


def test_a_paused_installation_says_so_and_offers_no_sync(app: Any) -> None:
    from pleo_connector.web.pages import settings_page

    paused = replace(record(InstallationStatus.ACTIVATED), paused=True)

    shown = view(app, paused)
    page = str(settings_page(shown).body)

    assert shown.paused
    assert not shown.can_sync
    assert "Syncing is paused by the app's provider" in page
    assert "kept in sync on a schedule" not in page  # not "Active" while paused


def test_an_installation_not_paused_says_nothing_of_a_pause(app: Any) -> None:
    from pleo_connector.web.pages import settings_page

    page = str(settings_page(view(app, record(InstallationStatus.ACTIVATED))).body)

    assert "paused" not in page
    assert "kept in sync on a schedule" in page
