"""Asking for a dry run from the settings page, and the progress check's answer."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from pleo_connector.adapters.placeholder import PlaceholderConnectionSettings
from pleo_connector.adapters.registry import load_adapter
from pleo_connector.composition.roots import SecretCache, SettingsFunction, WebParts
from pleo_connector.connect.errors import NothingToPreviewError, PreviewAlreadyQueuedError
from pleo_connector.connect.settings import progress, request_preview
from pleo_connector.installation_config import SyncChoices, open_connection, seal_connection
from pleo_connector.store.previews import PREVIEW_LOST_AFTER_S, PlanSummary
from pleo_connector.sync_queue import QueueError
from pleo_connector.vocabulary import InstallationStatus, PreviewState, SyncReason
from pleo_connector.web.csrf import csrf_token
from tests.support.handlers import FakeLambdaContext, load_handler_module
from tests.unit.connect.fakes import (
    INSTALLATION,
    FakeCipher,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleoClients,
    FakePreviews,
    FakeQueue,
    FakeRuns,
    installation,
    record,
    settings_deps,
    web_settings,
)

pytestmark = pytest.mark.unit

SETTINGS = PlaceholderConnectionSettings(
    source_url="https://erp.example/export",
    api_token=SecretStr("erp-token-in-the-form"),
)
NOW = 1_800_000_000.0


class Page:
    def __init__(self, status: InstallationStatus = InstallationStatus.AUTHORIZED) -> None:
        saved = seal_connection(FakeCipher(), INSTALLATION, "placeholder", SETTINGS)
        self.record = replace(record(status), config={"connection": saved})
        self.installations = FakeInstallations(self.record)
        self.queue = FakeQueue()
        self.runs = FakeRuns()
        self.now = NOW
        self.previews = FakePreviews(clock=lambda: self.now)
        pleo = FakePleoClients(FakeInstallationsApi(installation(status)))
        self.deps = replace(
            settings_deps(self.installations, pleo, self.queue, self.runs, self.previews),
            clock=lambda: self.now,
        )


def test_a_dry_run_of_the_saved_settings_queues_one_preview_request() -> None:
    page = Page()

    asked = request_preview(page.deps, INSTALLATION)

    (sent,) = page.queue.sent
    assert sent.reason is SyncReason.PREVIEW
    assert sent.preview_id == asked.preview_id
    assert asked.connection is None  # the worker reads the saved ones
    assert progress(page.deps, INSTALLATION).preview is PreviewState.QUEUED


def test_a_dry_run_of_the_form_keeps_its_settings_sealed_and_saves_nothing() -> None:
    page = Page()
    choices = SyncChoices(vendors=False)

    asked = request_preview(page.deps, INSTALLATION, SETTINGS, choices)

    assert asked.connection is not None
    assert "erp-token-in-the-form" not in str(asked.connection)
    opened = open_connection(
        FakeCipher(), INSTALLATION, asked.connection, PlaceholderConnectionSettings
    )
    assert opened == SETTINGS
    assert asked.sync_choices == choices.model_dump(mode="json")
    assert page.installations.get(INSTALLATION) == page.record  # nothing saved


def post_preview(app: Any, web: WebParts, form: dict[str, str]) -> dict[str, Any]:
    """`POST /settings/preview` through the settings function's resolver, from its own page."""
    session = web.sessions.issue(INSTALLATION)
    body = urlencode({"csrf_token": csrf_token(session), **form})
    event = {
        "version": "2.0",
        "routeKey": "POST /settings/preview",
        "rawPath": "/settings/preview",
        "rawQueryString": "",
        "cookies": [f"{web.sessions.cookie_name}={web.sessions.encode(session)}"],
        "headers": {
            "host": "app.example",
            "content-type": "application/x-www-form-urlencoded",
            "origin": "https://app.example",
            "sec-fetch-site": "same-origin",
        },
        "requestContext": {
            "http": {"method": "POST", "path": "/settings/preview", "sourceIp": "1.2.3.4"},
            "requestId": "r1",
            "routeKey": "POST /settings/preview",
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }
    answer: dict[str, Any] = app.app.resolve(event, FakeLambdaContext())
    return answer


def test_a_dry_run_of_a_form_with_a_relative_book_path_is_a_400_and_queues_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = load_handler_module("settings")
    page = Page()
    page.installations.create_or_update(replace(page.record, config={}))
    deps = replace(page.deps, adapter=load_adapter("gnucash"))
    web = WebParts(web_settings(), secrets=SecretCache(lambda _: "session-key-" + "k" * 32))
    monkeypatch.setattr(app, "deps", lambda: SettingsFunction(web, deps))

    answer = post_preview(app, web, {"preview": "form", "book": "books/demo.gnucash"})

    assert answer["statusCode"] == 400
    assert (
        "The source is not an address: use an https:// URL, s3://bucket/key, or an absolute path"
        in html.unescape(answer["body"])
    )
    assert 'value="books/demo.gnucash"' in answer["body"]  # the form comes back as typed
    assert page.queue.sent == []
    assert page.previews.items == {}
    assert progress(page.deps, INSTALLATION).preview is PreviewState.NONE


def test_a_second_request_while_one_is_planned_is_refused_until_it_ends_or_is_lost() -> None:
    page = Page()
    first = request_preview(page.deps, INSTALLATION)

    with pytest.raises(PreviewAlreadyQueuedError) as refused:
        request_preview(page.deps, INSTALLATION)
    assert refused.value.http_status == 409
    assert len(page.queue.sent) == 1

    page.now += PREVIEW_LOST_AFTER_S + 1  # its message never made it
    assert progress(page.deps, INSTALLATION).preview is PreviewState.LOST
    request_preview(page.deps, INSTALLATION)
    page.previews.finish(INSTALLATION, page.queue.sent[-1].preview_id or "", PlanSummary())
    request_preview(page.deps, INSTALLATION)  # after a finished one, at once
    assert len(page.queue.sent) == 3
    assert first.preview_id not in {r.preview_id for r in page.queue.sent[1:]}


def test_the_saved_settings_cannot_be_tried_before_there_are_any() -> None:
    page = Page()
    page.installations.create_or_update(replace(page.record, config={}))

    with pytest.raises(NothingToPreviewError):
        request_preview(page.deps, INSTALLATION)
    assert page.queue.sent == []
    request_preview(page.deps, INSTALLATION, SETTINGS, SyncChoices())  # the form's may be
    assert len(page.queue.sent) == 1


def test_a_request_whose_message_was_not_sent_is_failed_at_once() -> None:
    page = Page()
    page.queue.error = QueueError("not sent")

    with pytest.raises(QueueError):
        request_preview(page.deps, INSTALLATION)

    assert progress(page.deps, INSTALLATION).preview is PreviewState.FAILED
    page.queue.error = None
    request_preview(page.deps, INSTALLATION)  # and may be asked for again
    assert len(page.queue.sent) == 1


def test_progress_says_what_runs_and_a_failed_dry_runs_reason() -> None:
    page = Page(InstallationStatus.ACTIVATED)
    assert progress(page.deps, INSTALLATION).as_json() == {
        "status": "ACTIVATED",
        "preview": {"state": "none", "message": None},
        "sync": {"state": "idle"},
    }

    asked = request_preview(page.deps, INSTALLATION)
    page.previews.fail(INSTALLATION, asked.preview_id, "The book was not found.")
    page.runs.held_by_other = True
    answer = progress(page.deps, INSTALLATION)
    assert answer.as_json() == {
        "status": "ACTIVATED",
        "preview": {"state": "failed", "message": "The book was not found."},
        "sync": {"state": "running"},
    }
    assert answer.key == "ACTIVATED|failed|running"
    assert answer.unfinished

    page.runs.held_by_other = False
    pressed = datetime.fromtimestamp(NOW - 60, UTC)
    page.installations.create_or_update(replace(page.record, sync_requested_at=pressed))
    assert progress(page.deps, INSTALLATION).sync == "queued"


def test_the_first_sync_shows_as_running_unless_syncing_is_paused() -> None:
    page = Page(InstallationStatus.PENDING_INTEGRATION)
    assert progress(page.deps, INSTALLATION).sync == "running"

    page.installations.create_or_update(replace(page.record, paused=True))
    answer = progress(page.deps, INSTALLATION)
    assert answer.sync == "idle"
    assert not answer.unfinished
