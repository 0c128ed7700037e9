"""The settings page's dry-run section: each state in words, the plan's counts (a number first),
the first records of each kind and action by name and code, what would be refused and why, all
escaped; and the buttons that ask for it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pleo_connector.adapters.placeholder import PlaceholderConnectionSettings
from pleo_connector.store.previews import PlannedRecord, PlanSummary, Preview
from pleo_connector.store.sync_runs import RunProblem
from pleo_connector.vocabulary import Action, InstallationStatus, Kind, PreviewState
from pleo_connector.web.forms import form_fields
from pleo_connector.web.pages import PlanView, SettingsView, describe_plan, settings_page
from tests.unit.web.htmlparse import Page, parse

pytestmark = pytest.mark.unit

XSS = "<script>alert(1)</script>"
SUMMARY = PlanSummary(
    counts={
        (Kind.TAX_CODE, Action.CREATE): 1,
        (Kind.ACCOUNT, Action.CREATE): 7,
        (Kind.ACCOUNT, Action.ARCHIVE): 1,
    },
    samples={
        (Kind.TAX_CODE, Action.CREATE): (PlannedRecord("Moms 25%", "MOMS25"),),
        (Kind.ACCOUNT, Action.CREATE): tuple(PlannedRecord(f"Konto {n}", str(n)) for n in range(5)),
        (Kind.ACCOUNT, Action.ARCHIVE): (PlannedRecord(XSS, "9999"),),
    },
    refused=(RunProblem(Kind.TAX_CODE, "FAST", f"an amount, not a percentage {XSS}"),),
    refused_total=3,
    notes=(RunProblem(Kind.VENDOR, "V-1", "the name was cleaned"),),
)


def ready(summary: PlanSummary = SUMMARY) -> Preview:
    return Preview(
        installation_id="inst-1",
        preview_id="p1",
        state=PreviewState.READY,
        requested_at=1_800_000_000.0,
        updated_at=1_800_000_004.0,
        summary=summary,
    )


def page_with(plan: PlanView, **changes: Any) -> tuple[str, Page]:
    view = SettingsView(
        csrf_token="csrf",
        status=InstallationStatus.AUTHORIZED,
        connection_fields=form_fields(PlaceholderConnectionSettings, None),
        preview=plan,
        **changes,
    )
    body = settings_page(dataclasses.replace(view)).body
    assert isinstance(body, str)
    return body, parse(body)


def section(body: str) -> str:
    return body.split('<section id="dry-run"', 1)[1].split("</section>", 1)[0]


def items(body: str, list_class: str) -> list[str]:
    found = []
    for part in section(body).split(f'<ul class="{list_class}">')[1:]:
        listed = part.split("</ul>", 1)[0]
        found += [item.split("</li>", 1)[0] for item in listed.split("<li>")[1:]]
    return found


def test_a_ready_plan_lists_counts_then_records_then_what_would_be_refused() -> None:
    body, _ = page_with(describe_plan(PreviewState.READY, ready()))

    assert "Dry run: what the next sync would change" in body
    assert "Planned 2027-01-15 08:00 UTC, with reads only" in section(body)
    assert items(body, "plan-counts") == [
        "1 tax code to create",
        "7 accounts to create",
        "1 account to archive",
    ]
    records = items(body, "plan-records")
    assert records[:2] == ["Moms 25% (MOMS25)", "Konto 0 (0)"]
    assert "<h3>Accounts to create</h3>" in section(body)
    assert "And 2 more." in section(body)  # 7 to create, 5 named
    assert items(body, "plan-refused") == [
        "Tax code FAST: an amount, not a percentage &lt;script&gt;alert(1)&lt;/script&gt;"
    ]
    assert "And 2 more." in section(body).split('class="plan-refused"', 1)[1]
    assert items(body, "plan-notes") == ["Vendor V-1: the name was cleaned"]
    assert XSS not in body


def test_a_plan_without_changes_says_nothing_would_change() -> None:
    body, _ = page_with(describe_plan(PreviewState.READY, ready(PlanSummary())))

    assert "Nothing would change" in section(body)
    assert items(body, "plan-counts") == []


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (PreviewState.NONE, "See what the next sync would change"),
        (PreviewState.QUEUED, "Planning the dry run"),
        (PreviewState.RUNNING, "Planning the dry run"),
        (PreviewState.LOST, "The dry run did not finish"),
    ],
)
def test_each_state_is_said_in_words(state: PreviewState, words: str) -> None:
    body, _ = page_with(describe_plan(state, None), can_preview_saved=True)

    assert words in section(body)
    saved = body.split('action="/settings/preview"', 1)[1].split("</form>", 1)[0]
    unfinished = state in (PreviewState.QUEUED, PreviewState.RUNNING)
    assert ("disabled" in saved) == unfinished


def test_a_failed_dry_run_says_why_escaped() -> None:
    failed = dataclasses.replace(ready(), state=PreviewState.FAILED, summary=None, message=XSS)
    body, _ = page_with(describe_plan(PreviewState.FAILED, failed))

    assert "The dry run could not plan: &lt;script&gt;" in section(body)
    assert XSS not in body


def test_the_settings_form_can_try_its_values_and_the_saved_ones_need_saved_settings() -> None:
    body, _ = page_with(PlanView())

    form = body.split('action="/settings"', 1)[1].split("</form>", 1)[0]
    assert 'formaction="/settings/preview" name="preview" value="form"' in form
    saved = body.split('action="/settings/preview"', 1)[1].split("</form>", 1)[0]
    assert 'name="preview" value="saved"' in saved
    assert 'name="csrf_token"' in saved
    assert "disabled" in saved  # nothing saved yet
