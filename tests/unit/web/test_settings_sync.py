"""What the settings page says about syncing: the last run in plain words, a source that cannot be
read and how to fix it, and "sync now" while a sync is queued or running."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr

from pleo_connector.adapters.placeholder import PlaceholderConnectionSettings
from pleo_connector.store.sync_runs import RunProblem, SyncRun
from pleo_connector.vocabulary import Action, InstallationStatus, Kind, SyncOutcome, SyncReason
from pleo_connector.web.forms import form_fields
from pleo_connector.web.pages import (
    LastRunView,
    SettingsView,
    describe_run,
    settings_page,
)
from tests.unit.web.htmlparse import Page, parse

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response

pytestmark = pytest.mark.unit

XSS = "<script>alert(1)</script>"
STARTED = datetime(2026, 3, 1, 9, 30, 5, tzinfo=UTC)


def run_of(**changes: Any) -> SyncRun:
    run = SyncRun(
        installation_id="inst",
        started_at=STARTED,
        finished_at=STARTED + timedelta(seconds=12.4),
        reason=SyncReason.SCHEDULED,
        outcome=SyncOutcome.SYNCED,
    )
    return dataclasses.replace(run, **changes)


def view_of(status: str = "ACTIVATED", **changes: Any) -> SettingsView:
    saved = PlaceholderConnectionSettings(
        source_url="https://erp.example/export", api_token=SecretStr("stored-erp-token-123")
    )
    view = SettingsView(
        csrf_token="csrf",
        status=InstallationStatus(status),
        connection_fields=form_fields(PlaceholderConnectionSettings, saved),
    )
    return dataclasses.replace(view, **changes)


def page_of(view: SettingsView) -> tuple[str, Page]:
    response: Response[str] = settings_page(view)
    assert isinstance(response.body, str)
    return response.body, parse(response.body)


def button(page: Page, label_class: str | None) -> dict[str, str | None]:
    (found,) = [b for b in page.find_all("button") if b.attrs.get("class") == label_class]
    return found.attrs


def sync_button(body: str) -> bool:
    """Whether "Sync now" is disabled."""
    form = body.split('action="/settings/sync"', 1)[1].split("</form>", 1)[0]
    return "disabled" in form


# --- the last run, in words ----------------------------------------------------------------------


def test_counts_are_told_per_kind_and_action_in_the_order_a_run_applies_them() -> None:
    described = describe_run(
        run_of(
            applied={
                (Kind.VENDOR, Action.UPDATE): 1,
                (Kind.TAG, Action.CREATE): 120,
                (Kind.TAG_GROUP, Action.CREATE): 2,
                (Kind.ACCOUNT, Action.ARCHIVE): 3,
                (Kind.TAX_CODE, Action.UNARCHIVE): 1,
                (Kind.VENDOR, Action.ADOPT): 4,
            },
            failed={Kind.ACCOUNT: 1},
        )
    )

    assert described.counts == (
        "2 tag groups created",
        "120 tags created",
        "1 tax code unarchived",
        "1 vendor updated",
        "4 vendors found in Pleo already and kept in sync from now on",
        "3 accounts archived",
        "1 account could not be synced",
    )
    assert described.when == "2026-03-01 09:30 UTC (took 12 s)"
    assert described.outcome == "Completed."
    assert not described.good  # a record failed


def test_a_run_that_changed_nothing_says_so() -> None:
    described = describe_run(run_of(finished_at=STARTED))

    assert described == LastRunView(
        when="2026-03-01 09:30 UTC (took under a second)",
        outcome="Completed.",
        good=True,
        counts=("Nothing needed to change.",),
    )


def test_problems_name_the_record_and_say_how_many_more_there_were() -> None:
    described = describe_run(
        run_of(
            problems=(RunProblem(Kind.TAX_CODE, "S25", "The rate must be between 0 and 1."),),
            problems_total=51,
            failed={Kind.TAX_CODE: 51},
        )
    )

    assert described.problems == ("Tax code S25: The rate must be between 0 and 1.",)
    assert described.more_problems == 50


def test_a_source_failure_shows_its_reason_and_a_crash_shows_no_error_name() -> None:
    failed_source = describe_run(
        run_of(outcome=SyncOutcome.SOURCE_FAILED, message="The source answered 404.")
    )
    crashed = describe_run(run_of(outcome=SyncOutcome.FAILED, message="InternalServerError"))

    assert failed_source.reason == "The source answered 404."
    assert "could not be read" in failed_source.outcome
    assert crashed.reason is None
    assert crashed.outcome == "Interrupted by a temporary problem. It is tried again by itself."


def test_the_last_run_section_shows_the_run_with_every_value_escaped() -> None:
    view = view_of(
        last_run=describe_run(
            run_of(
                applied={(Kind.TAG, Action.CREATE): 3},
                problems=(RunProblem(Kind.VENDOR, XSS, XSS),),
                problems_total=4,
                failed={Kind.VENDOR: 4},
            )
        )
    )

    body, page = page_of(view)

    assert XSS not in body
    assert "&lt;script&gt;" in body
    assert "Last sync" in page.text
    assert "2026-03-01 09:30 UTC (took 12 s): Completed." in page.text
    assert "3 tags created" in page.text
    assert "4 vendors could not be synced" in page.text
    assert "These records could not be synced:" in page.text
    assert "And 3 more." in page.text


def test_before_any_run_the_page_says_none_has_run() -> None:
    _, page = page_of(view_of())

    assert "No sync has run yet." in page.text


# --- a source that cannot be read ----------------------------------------------------------------


def test_inactive_after_source_failures_says_what_is_wrong_and_how_to_fix_it() -> None:
    view = view_of(
        "INACTIVE",
        status_message="Syncing is paused after repeated failures of the accounting system.",
        source_problem="The source answered 404 Not Found.",
        source_failures=5,
    )

    _, page = page_of(view)

    assert "The app is inactive and does not sync." in page.text
    assert "What is wrong: The source answered 404 Not Found." in page.text
    assert "How to fix it: check the connection to the accounting system below" in page.text
    assert "when it succeeds the app is active again" in page.text


def test_failures_short_of_the_limit_warn_and_count() -> None:
    _, one = page_of(view_of(source_problem="unreachable", source_failures=1))
    _, three = page_of(view_of(source_problem="unreachable", source_failures=3))
    _, none = page_of(view_of())

    assert "The last sync could not read the accounting system: unreachable" in one.text
    assert "The last 3 syncs could not read the accounting system: unreachable" in three.text
    assert "could not read the accounting system" not in none.text


def test_a_source_problem_is_escaped() -> None:
    body, _ = page_of(view_of("INACTIVE", source_problem=XSS, source_failures=5))

    assert XSS not in body


# --- sync now, queued or running -----------------------------------------------------------------


def test_a_pressed_sync_disables_sync_now_says_so_and_refreshes() -> None:
    body, page = page_of(view_of(sync_queued=True, progress_key="ACTIVATED|none|queued"))

    assert sync_button(body)
    assert "A sync is queued or running; its result shows here when it is done." in page.text
    assert page.find_all("script")
    assert "disabled" not in button(page, "danger")  # queued is not running: disconnect allowed


def test_a_running_sync_disables_disconnect_and_a_press_queues_one_more() -> None:
    body, page = page_of(view_of(sync_running=True, progress_key="ACTIVATED|none|running"))

    assert not sync_button(body)
    assert "disabled" in button(page, "danger")
    assert "A sync is running" in page.text
    assert page.find_all("script")


def test_an_idle_installation_may_sync_now() -> None:
    body, page = page_of(view_of())

    assert not sync_button(body)
    assert not page.find_all("meta", **{"http-equiv": "refresh"})
