"""The demo's dry-run step (`local/demo.py`, step 2) against the settings page's dry-run contract:
`POST /settings/preview` with the form's fields and `preview=form`, `GET /settings/progress`
polled until the preview is ready (or failed), then the page's `<section id="dry-run">` printed.
A fake browser answers as the contract says, so the step is checked without a world."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from local import demo
from local.demo import DemoContext, DemoFailure, HttpAnswer, dry_run_lines, summary_table
from local.world import Target, WorldConfig

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.unit

API = "http://127.0.0.1:3999"

DRY_RUN_SECTION = """
<section id="dry-run" aria-labelledby="dry-run-title">
<h2 id="dry-run-title">Dry run: what the first sync would do</h2>
<ul class="plan-counts">
<li>2 tag groups to create</li>
<li>14 accounts to create</li>
</ul>
<h3>Accounts to create</h3>
<ul class="plan-records">
<li>Husleje (3010)</li><li>El og varme (3020)</li><li>Kontorartikler (3100)</li>
<li>Rejser (3200)</li>
</ul>
<ul class="plan-refused">
<li>Meget lang kontonavn (4330): the name is longer than Pleo takes</li>
</ul>
</section>
"""


def _settings_page(dry_run: str = "") -> str:
    return (
        '<section aria-labelledby="status-title" data-status="AUTHORIZED"></section>'
        '<form><input type="hidden" name="csrf_token" value="token-1">'
        '<input type="hidden" name="installation_id" value="inst-1"></form>' + dry_run
    )


class FakeBrowser:
    """Answers the settings page's dry-run routes as the contract says."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self.posted: list[dict[str, Any]] = []
        self.polls = 0

    def request(
        self,
        method: str,
        url: str,
        form: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpAnswer:
        path = url.removeprefix(API)
        if (method, path) == ("POST", "/settings/preview"):
            self.posted.append(dict(form or {}))
            return HttpAnswer(303, {"Location": "/settings"}, "")
        if (method, path) == ("GET", "/settings/progress"):
            state = self.states[min(self.polls, len(self.states) - 1)]
            self.polls += 1
            body = {"status": "AUTHORIZED", "preview": state, "sync": {"state": "idle"}}
            return HttpAnswer(200, {}, json.dumps(body))
        if (method, path) == ("GET", "/settings"):
            seen = self.states[: self.polls]
            ready = bool(seen) and seen[-1]["state"] == "ready"
            return HttpAnswer(200, {}, _settings_page(DRY_RUN_SECTION if ready else ""))
        return HttpAnswer(404, {}, "")


class FakeEmulator:
    def __init__(self, counters: dict[str, int] | None = None) -> None:
        self._counters = counters or {"GET /v1/vendors": 1, "POST /v1/chart-of-accounts:search": 1}

    def clear_request_log(self) -> None:
        pass

    def counters(self) -> dict[str, int]:
        return dict(self._counters)


def _context(tmp_path: Path, browser: FakeBrowser, out: Any) -> DemoContext:
    state = {"urls": {"api": API}, "book": str(tmp_path / "demo.gnucash")}
    target = Target("http://dynamodb", "http://moto", None, None)  # type: ignore[arg-type]
    context = DemoContext(WorldConfig(ports={}, state_dir=tmp_path), state, 0, target, out=out)
    context.memory["browser"] = browser
    return context


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "PREVIEW_POLL_S", 0.0)


def test_the_dry_run_is_asked_with_the_form_polled_and_printed(
    tmp_path: Path, quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = FakeBrowser(
        [
            {"state": "queued", "message": None},
            {"state": "running", "message": None},
            {"state": "ready", "message": None},
        ]
    )
    monkeypatch.setattr(demo, "_emulator", lambda context: FakeEmulator())
    context = _context(tmp_path, browser, io.StringIO())

    lines = demo.step_dry_run(context)

    (posted,) = browser.posted
    assert posted["csrf_token"] == "token-1"
    assert posted["installation_id"] == "inst-1"
    assert posted["preview"] == "form"
    assert posted["book"] == str(tmp_path / "demo.gnucash")
    assert posted["sync_tag_groups"] == ["JOBS", "CUSTOMERS"]
    assert {posted[k] for k in ("sync_tax_codes", "sync_vendors", "sync_accounts")} == {"on"}
    assert browser.polls == 3
    text = "\n".join(lines)
    assert "Dry run: what the first sync would do" in text
    assert "2 tag groups to create" in text
    assert "14 accounts to create" in text
    assert "Accounts to create: Husleje (3010), El og varme (3020), Kontorartikler (3100), ..." in (
        text
    )
    assert "refused: Meget lang kontonavn (4330)" in text
    assert "0 writes" in text


@pytest.mark.parametrize("state", ["failed", "lost"])
def test_a_dry_run_that_fails_is_a_failure_with_its_message_and_the_story_goes_on(
    tmp_path: Path, quick: None, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    browser = FakeBrowser(
        [{"state": "running"}, {"state": state, "message": "The book is locked."}]
    )
    monkeypatch.setattr(demo, "_emulator", lambda context: FakeEmulator())
    context = _context(tmp_path, browser, io.StringIO())

    with pytest.raises(DemoFailure, match=f"{state}: The book is locked") as raised:
        demo.step_dry_run(context)

    assert raised.value.story_goes_on


def test_a_dry_run_that_writes_to_pleo_is_a_failure(
    tmp_path: Path, quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = FakeBrowser([{"state": "ready"}])
    monkeypatch.setattr(demo, "_emulator", lambda context: FakeEmulator({"POST /v1/vendors": 1}))
    context = _context(tmp_path, browser, io.StringIO())

    with pytest.raises(DemoFailure, match="wrote to Pleo"):
        demo.step_dry_run(context)


def test_without_the_preview_route_the_step_says_so(
    tmp_path: Path, quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoPreview(FakeBrowser):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> HttpAnswer:
            if url.endswith("/settings/preview"):
                return HttpAnswer(404, {}, "")
            return super().request(method, url, *args, **kwargs)

    monkeypatch.setattr(demo, "_emulator", lambda context: FakeEmulator())
    context = _context(tmp_path, NoPreview([]), io.StringIO())

    with pytest.raises(DemoFailure, match="answered 404: this build has no dry run"):
        demo.step_dry_run(context)


def test_a_page_without_a_dry_run_section_has_no_lines() -> None:
    assert dry_run_lines(_settings_page()) == []


def test_the_summary_table_has_a_row_per_step_and_the_total() -> None:
    outcomes = [
        demo.StepOutcome("1. Connect", "AUTHORIZED", 1.25),
        demo.StepOutcome("2. A second sync", "0 writes", 0.5),
    ]

    lines = summary_table(outcomes, 12.0)

    assert lines[0].split() == ["step", "result", "time"]
    assert lines[1].split() == ["1.", "Connect", "AUTHORIZED", "1.2s"]
    assert lines[2].split() == ["2.", "A", "second", "sync", "0", "writes", "0.5s"]
    assert lines[3].split() == ["total", "12.0s"]


def test_progress_off_a_terminal_is_a_line_every_ten_seconds(tmp_path: Path) -> None:
    with (tmp_path / "out.txt").open("w", encoding="utf-8") as out:
        progress = demo.Progress(out, "the first sync")
        for elapsed in (0.5, 3.0, 9.9, 10.2, 11.0, 20.5):
            progress.show(elapsed)
        progress.done()
    assert (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines() == [
        "   ... still waiting for the first sync (10 s)",
        "   ... still waiting for the first sync (20 s)",
    ]


def test_writes_leave_out_reads_searches_and_oauth() -> None:
    counters = {
        "GET /v1/vendors": 3,
        "POST /v1/chart-of-accounts:search": 1,
        "POST /oauth/token": 1,
        "PUT /v1/vendors/{id}": 1,
        "PUT /v1/installations/me": 2,
    }

    writes = demo._writes(FakeEmulator(counters))  # type: ignore[arg-type]

    assert writes == Counter({"PUT /v1/vendors/{id}": 1, "PUT /v1/installations/me": 2})
    assert demo._data_writes(writes) == Counter({"PUT /v1/vendors/{id}": 1})
