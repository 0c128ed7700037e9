"""`make demo`: the connector's whole story in about three minutes, told by its output alone.

It starts a local world of its own with the GnuCash adapter and the demo book (Nordlys Design
ApS, `local/gnucash_books.py`), then, as a customer and their accounting system would:

 1. connects through OAuth, approving on the emulator's consent page;
 2. fills the book into the settings page and asks for a dry run: what the first sync would do;
 3. saves the settings;
 4. waits for the first sync: counts per kind, Pleo's writes (the emulator's request log), and
    the installation going AUTHORIZED -> PENDING_INTEGRATION -> ACTIVATED in Pleo;
 5. syncs again ("Sync now"): 0 writes;
 6. changes the book: a vendor renamed, an account hidden, a job added;
 7. fires the schedule: the sync writes exactly those three changes;
 8. locks the book (GnuCash has it open): the failure shows on the page; unlocked, it recovers;
 9. connects a second company with an API key;
10. disconnects both: nothing is left, in Pleo or in the table.

Each step prints a title and a few indented lines; waits show their progress; a summary table
(step, result, time) ends it. The story is `DEMO_STEPS`, a list of (title, step) pairs; a step
gets a `DemoContext` (the running world and helpers), returns the lines to print and may set
`context.result` for the table, or raises `DemoFailure`.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import signal
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

from local import gnucash_books
from local.pleo_emulator.control_client import EmulatorControl, consent_form_fields, is_write
from local.resources import LocalResources
from local.services import LOCAL_REGION
from local.world import (
    Target,
    WorldConfig,
    common_arguments,
    config_from,
    group_alive,
    pid_alive,
    read_activity,
    read_state,
    spawn_world,
    stop_spawned,
    wait_until_ready,
)

# A failed sync message comes back after this many seconds in the demo, not the template's 720.
DEMO_VISIBILITY_TIMEOUT_S = 5
# The demo's story is the GnuCash one.
DEMO_ADAPTER = "gnucash"
SYNC_TIMEOUT_S = 120.0
POLL_S = 0.5
# The dry run is polled as the settings page would: once a second.
PREVIEW_POLL_S = 1.0
COMPANY_NAME = "Nordlys Design ApS"
SYNCED_GROUPS = ("JOBS", "CUSTOMERS")


class DemoFailure(Exception):
    """A step did not see what it should have. `story_goes_on`: no later step needs what this
    one does, so the story carries on (the demo still fails)."""

    def __init__(self, message: str, *, story_goes_on: bool = False) -> None:
        super().__init__(message)
        self.story_goes_on = story_goes_on


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: str

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Steps look at each redirect themselves."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _answer(opener: urllib.request.OpenerDirector, request: urllib.request.Request) -> HttpAnswer:
    """Send `request`; an error status is an answer too, not an exception."""
    try:
        with opener.open(request, timeout=60) as response:
            return HttpAnswer(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, dict(error.headers), error.read().decode())


class Progress:
    """A wait shown as it goes: on a terminal one line rewritten in place ("waiting for the
    first sync ... 3 s"), elsewhere (a log, a pipe) a line every 10 s."""

    EVERY_S = 10

    def __init__(self, out: TextIO, what: str) -> None:
        self.out = out
        self.what = what
        self.live = out.isatty()
        self.shown = 0

    def show(self, elapsed: float) -> None:
        seconds = int(elapsed)
        if self.live and seconds != self.shown:
            self.out.write(f"\r   waiting for {self.what} ... {seconds} s\033[K")
        elif not self.live and seconds // self.EVERY_S > self.shown // self.EVERY_S:
            self.out.write(f"   ... still waiting for {self.what} ({seconds} s)\n")
        else:
            return
        self.shown = seconds
        self.out.flush()

    def done(self) -> None:
        if self.live and self.shown:
            self.out.write("\r\033[K")
            self.out.flush()


@dataclass
class DemoContext:
    """What a step can use: the running world and small helpers."""

    config: WorldConfig
    state: dict[str, Any]
    world_pid: int
    target: Target
    out: TextIO = sys.stdout
    memory: dict[str, Any] = field(default_factory=dict)  # what steps hand to later steps
    result: str | None = None  # the step's result in a few words, for the summary table

    @property
    def api_url(self) -> str:
        return str(self.state["urls"]["api"])

    @property
    def emulator_url(self) -> str | None:
        url = self.state["urls"].get("pleo-emulator")
        return str(url) if url else None

    @property
    def resources(self) -> LocalResources:
        return self.target.resources

    @property
    def book(self) -> Path:
        """The demo book the world wrote (`ADAPTER=gnucash`)."""
        if not self.state.get("book"):
            raise DemoFailure("the local world wrote no GnuCash book: is ADAPTER gnucash?")
        return Path(self.state["book"])

    def aws_client(self, service: str) -> Any:
        import boto3

        endpoint = self.target.dynamodb_url if service == "dynamodb" else self.target.moto_url
        session: Any = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the stand-ins accept anything
            region_name=LOCAL_REGION,
        )
        return session.client(service, endpoint_url=endpoint)

    def wait_until[T](
        self,
        what: str,
        probe: Callable[[], T | None],
        timeout: float = SYNC_TIMEOUT_S,
        interval: float = POLL_S,
    ) -> T:
        """Poll `probe` every `interval` until it returns something truthy, showing progress."""
        started = time.monotonic()
        progress = Progress(self.out, what)
        try:
            while True:
                value = probe()
                if value:
                    return value
                elapsed = time.monotonic() - started
                if elapsed > timeout:
                    raise DemoFailure(f"gave up waiting for {what} after {timeout:.0f} s")
                progress.show(elapsed)
                time.sleep(interval)
        finally:
            progress.done()

    def wait_for_activity(
        self, matches: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The first entry of the world's activity log that `matches`."""

        def probe() -> dict[str, Any] | None:
            return next((e for e in read_activity(self.config.activity_file) if matches(e)), None)

        return self.wait_until(what, probe, timeout, interval=0.2)


DemoStep = Callable[[DemoContext], list[str]]


def _short_body(body: str) -> str:
    """A page's title, or the first characters of any other body, on one line."""
    title = re.search(r"<title>(.*?)</title>", body, re.S | re.I)
    if title:
        return f"page: {' '.join(title.group(1).split())[:60]}"
    return " ".join(body.split())[:60]


# ---------------------------------------------------------------------------------------------
# A browser, and what the app's pages say
# ---------------------------------------------------------------------------------------------


class Browser:
    """A cookie-keeping client that follows no redirect by itself, so each hop can be shown."""

    def __init__(self) -> None:
        import http.cookiejar

        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect
        )

    def request(
        self,
        method: str,
        url: str,
        form: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpAnswer:
        data = urlencode(form, doseq=True).encode() if form is not None else None
        sent = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
        request = urllib.request.Request(  # noqa: S310 - loopback only
            url, data=data, method=method, headers={**sent, **(headers or {})}
        )
        return _answer(self._opener, request)


def _emulator(context: DemoContext) -> EmulatorControl:
    """The emulator's control API."""
    if context.emulator_url is None:
        raise DemoFailure("the Pleo emulator is not running")
    return EmulatorControl(context.emulator_url, timeout=30)


def _location(answer: HttpAnswer) -> str:
    location = answer.header("location")
    if answer.status not in (302, 303) or not location:
        raise DemoFailure(f"expected a redirect, got {answer.status}: {_page_problem(answer.body)}")
    return location


def _page_problem(body: str) -> str:
    """What a page that refused a form says is wrong (its alerts), else its title."""
    alerts = re.findall(
        r'<(?:div|p|span)[^>]*(?:role="alert"|class="field-error")[^>]*>(.*?)</', body
    )
    said = "; ".join(text for text in (_text(a) for a in alerts) if text)
    return said[:300] if said else _short_body(body)


def _hidden(page: str, name: str) -> str | None:
    found = re.search(rf'name="{name}" value="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _csrf_token(page: str) -> str:
    token = _hidden(page, "csrf_token")
    if token is None:
        raise DemoFailure("the page has no CSRF token")
    return token


def _form_fields(page: str) -> dict[str, str]:
    """The hidden fields every form of a page sends: the CSRF token and the installation."""
    fields = {"csrf_token": _csrf_token(page)}
    installation = _hidden(page, "installation_id")
    if installation:
        fields["installation_id"] = installation
    return fields


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _items(fragment: str) -> list[str]:
    return [_text(item) for item in re.findall(r"<li[^>]*>(.*?)</li>", fragment, re.S)]


def _section(page: str, opening: str) -> str:
    """The inside of the first `<section ...>` whose attributes match `opening` (a regex)."""
    found = re.search(rf"<section[^>]*{opening}[^>]*>(.*?)</section>", page, re.S)
    return found.group(1) if found else ""


def _status_on_page(page: str) -> str:
    """The installation status the settings page shows (its `data-status` attribute)."""
    found = re.search(r'data-status="([A-Z_]+)"', page)
    return found.group(1) if found else "unknown"


def _source_problem(page: str) -> str | None:
    """What the status section says about an accounting system that could not be read."""
    status = _section(page, r'aria-labelledby="status-title"')
    for alert in re.findall(r'<div class="status bad" role="alert">(.*?)</div>', status, re.S):
        text = _text(alert)
        if "could not read" in text or "What is wrong" in text:
            return text
    return None


@dataclass(frozen=True)
class LastRun:
    headline: str  # "2026-12-03 07:40 UTC (took 2 s): Synced."
    lines: list[str]  # the counts, then the records that could not be synced


def _last_run(page: str) -> LastRun | None:
    section = _section(page, r'aria-labelledby="last-run-title"')
    headline = re.search(r'<p class="status[^"]*">(.*?)</p>', section, re.S)
    if headline is None:
        return None
    return LastRun(_text(headline.group(1)), _items(section))


def _syncing(page: str) -> bool:
    """The page says a sync is pending, queued or running."""
    return (
        _status_on_page(page) == "PENDING_INTEGRATION"
        or 'id="disconnect-guard"' in page
        or "A sync is queued or running" in page
    )


def dry_run_lines(page: str) -> list[str]:
    """The settings page's dry run (`<section id="dry-run">`) as lines: its heading, the counts
    ("12 accounts to create"), the first records of each kind and action, what was refused."""
    section = _section(page, r'\bid="dry-run"')
    if not section:
        return []
    heading = re.search(r"<h2[^>]*>(.*?)</h2>", section, re.S)
    lines = [_text(heading.group(1)) if heading else "Dry run"]
    lists = re.finditer(r'<ul[^>]*class="([^"]*)"[^>]*>(.*?)</ul>', section, re.S)
    before = 0
    for found in lists:
        classes = found.group(1).split()
        items = _items(found.group(2))
        titles = re.findall(r"<h3[^>]*>(.*?)</h3>", section[before : found.start()], re.S)
        label = _text(titles[-1]) if titles else ""
        before = found.end()
        if "plan-counts" in classes:
            lines += [f"  {item}" for item in items]
        elif "plan-records" in classes and items:
            shown = ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")
            lines.append(f"  {label.rstrip(':') + ': ' if label else 'e.g. '}{shown}")
        elif "plan-refused" in classes and items:
            lines += [f"  refused: {item}" for item in items[:3]]
    return lines


# ---------------------------------------------------------------------------------------------
# Pleo's side: the installation's statuses, the writes, the data
# ---------------------------------------------------------------------------------------------


class StatusWatch:
    """Polls the emulator's installations in a thread and keeps, per company, every status its
    installation went through (Pleo keeps no history of them)."""

    def __init__(self, emulator: EmulatorControl, interval: float = 0.2) -> None:
        self.emulator = emulator
        self.interval = interval
        self._seen: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="status-watch")

    def start(self) -> StatusWatch:
        self.poll()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def poll(self) -> None:
        try:
            installations = self.emulator.installations()
        except (OSError, RuntimeError):
            return  # the emulator is stopping: nothing more to see
        for installation in installations:
            path = self._seen.setdefault(str(installation["company_id"]), [])
            if not path or path[-1] != installation["status"]:
                path.append(str(installation["status"]))

    def path(self, company_id: str) -> list[str]:
        self.poll()
        return list(self._seen.get(company_id, []))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()


def _writes(emulator: EmulatorControl) -> Counter[str]:
    """Pleo's writes since the request log was cleared, by operation (reads and searches left
    out)."""
    return Counter(
        {
            operation: count
            for operation, count in emulator.counters().items()
            if is_write(operation) and "/oauth/" not in operation
        }
    )


def _reads(emulator: EmulatorControl) -> int:
    return sum(emulator.counters().values()) - sum(_writes(emulator).values())


STATUS_WRITES = ("PUT /v1/installations/me", "POST /v1/installations/me:activate")


def _data_writes(writes: Counter[str]) -> Counter[str]:
    return Counter({op: n for op, n in writes.items() if op not in STATUS_WRITES})


def _writes_line(writes: Counter[str]) -> str:
    if not writes:
        return "0 writes"
    total = sum(writes.values())
    parts = ", ".join(f"{op} x{n}" for op, n in sorted(writes.items()))
    return f"{total} write{'s' if total != 1 else ''}: {parts}"


def _pleo_holds(emulator: EmulatorControl, company_id: str) -> str:
    data = emulator.data(company_id)
    return (
        f"{len(data['tag_groups'])} tag groups with {len(data['tags'])} tags, "
        f"{len(data['tax_codes'])} tax codes, {len(data['vendors'])} vendors, "
        f"{len(data['accounts'])} accounts"
    )


# ---------------------------------------------------------------------------------------------
# Syncs, as the settings page runs them
# ---------------------------------------------------------------------------------------------


def _settings(context: DemoContext, browser: Browser) -> str:
    page = browser.request("GET", f"{context.api_url}/settings")
    if page.status != 200:
        raise DemoFailure(f"GET /settings answered {page.status}: {_short_body(page.body)}")
    return page.body


def _sqs_batch_since(context: DemoContext, since: float) -> bool:
    return any(
        e.get("source") == "sqs" and e.get("at", 0) >= since
        for e in read_activity(context.config.activity_file)
    )


def _wait_for_sync(context: DemoContext, browser: Browser, since: float, what: str) -> str:
    """Wait until a batch reached the worker after `since` and the page no longer shows a sync
    pending, queued or running; returns the page."""

    def settled() -> str | None:
        if not _sqs_batch_since(context, since):
            return None
        page = _settings(context, browser)
        return None if _syncing(page) else page

    return context.wait_until(what, settled)


def _sync_now(context: DemoContext, browser: Browser, what: str) -> str:
    """Press "Sync now" and wait for its run; returns the page after it."""
    page = _settings(context, browser)
    asked_at = time.time()
    pressed = browser.request("POST", f"{context.api_url}/settings/sync", _form_fields(page))
    _location(pressed)
    return _wait_for_sync(context, browser, asked_at, what)


def _run_lines(page: str) -> list[str]:
    last = _last_run(page)
    if last is None:
        return ["the settings page shows no last sync"]
    return [f"last sync: {last.headline}", *(f"  {line}" for line in last.lines)]


# ---------------------------------------------------------------------------------------------
# The story
# ---------------------------------------------------------------------------------------------


def step_oauth_install(context: DemoContext) -> list[str]:
    emulator = _emulator(context)
    emulator.update_settings(auto_approve=False)  # the consent page, as a person sees it
    company = emulator.seed_company(COMPANY_NAME)
    context.memory["company_id"] = company["id"]
    context.memory["watch"] = StatusWatch(emulator).start()
    browser = Browser()
    context.memory["browser"] = browser
    start = browser.request("GET", f"{context.api_url}/oauth/start")
    authorize = _location(start)
    lines = [f"GET /oauth/start -> {start.status} to {authorize.split('?')[0]} (PKCE S256, state)"]
    consent = browser.request("GET", authorize)
    if consent.status != 200:
        raise DemoFailure(f"the emulator's consent page answered {consent.status}")
    approved = browser.request(
        "POST",
        authorize.split("?")[0],
        {**consent_form_fields(consent.body), "company_id": company["id"], "decision": "approve"},
        headers={"Origin": context.emulator_url or ""},
    )
    callback = _location(approved)
    lines.append(
        f"the consent page: approved for {COMPANY_NAME} -> {urlsplit(callback).path}?code="
    )
    done = browser.request("GET", callback)
    landing = _location(done)
    lines.append(f"GET /oauth/callback -> {done.status} to {landing}: tokens stored encrypted")
    page = _settings(context, browser)
    context.memory["installation_id"] = _hidden(page, "installation_id")
    status = context.memory["watch"].path(company["id"])[-1:]
    lines.append(f"the installation in Pleo: {', '.join(status) or 'none'}")
    lines.append(f"the settings page shows {_status_on_page(page)}: it asks for the book")
    context.result = status[0] if status else "no installation"
    return lines


def _settings_form(context: DemoContext) -> dict[str, Any]:
    """The settings form as the customer fills it: the book, both dimensions, every kind."""
    return {
        "book": str(context.book),
        "sync_tag_groups": list(SYNCED_GROUPS),
        "sync_tax_codes": "on",
        "sync_vendors": "on",
        "sync_accounts": "on",
    }


def step_dry_run(context: DemoContext) -> list[str]:
    browser: Browser = context.memory["browser"]
    page = _settings(context, browser)
    _emulator(context).clear_request_log()  # a dry run reads Pleo, and writes nothing
    asked = browser.request(
        "POST",
        f"{context.api_url}/settings/preview",
        {**_form_fields(page), "preview": "form", **_settings_form(context)},
    )
    if asked.status == 404:
        raise DemoFailure(
            "POST /settings/preview answered 404: this build has no dry run", story_goes_on=True
        )
    if asked.status != 303:
        raise DemoFailure(
            f"POST /settings/preview answered {asked.status}: {_page_problem(asked.body)}",
            story_goes_on=True,
        )
    lines = [f"the book filled in ({context.book.name}), POST /settings/preview -> 303"]

    def finished() -> dict[str, Any] | None:
        answer = browser.request("GET", f"{context.api_url}/settings/progress")
        if answer.status != 200:
            raise DemoFailure(
                f"GET /settings/progress answered {answer.status}", story_goes_on=True
            )
        preview: dict[str, Any] = json.loads(answer.body).get("preview") or {}
        return preview if preview.get("state") in ("ready", "failed", "lost") else None

    started = time.monotonic()
    preview = context.wait_until("the dry run", finished, interval=PREVIEW_POLL_S)
    if preview["state"] != "ready":
        raise DemoFailure(
            f"the dry run {preview['state']}: {preview.get('message') or 'no message'}",
            story_goes_on=True,
        )
    shown = dry_run_lines(_settings(context, browser))
    if not shown:
        raise DemoFailure("the dry run is ready but the page shows none", story_goes_on=True)
    lines.append(f"ready after {time.monotonic() - started:.0f} s; the page shows:")
    lines += [f"  {line}" for line in shown]
    writes = _writes(_emulator(context))
    if writes:
        raise DemoFailure(f"the dry run wrote to Pleo: {_writes_line(writes)}", story_goes_on=True)
    lines.append("Pleo's request log: 0 writes, the dry run only read")
    context.result = f"{len(shown) - 1} lines of plan"
    return lines


def step_save_settings(context: DemoContext) -> list[str]:
    browser: Browser = context.memory["browser"]
    emulator = _emulator(context)
    page = _settings(context, browser)
    emulator.clear_request_log()  # from here, step 4 counts the first sync's writes
    context.memory["saved_at"] = time.time()
    saved = browser.request(
        "POST", f"{context.api_url}/settings", {**_form_fields(page), **_settings_form(context)}
    )
    _location(saved)
    status = context.memory["watch"].path(context.memory["company_id"])[-1]
    context.result = status
    return [
        f"POST /settings -> 303: book {context.book}",
        f"  tag groups {' and '.join(SYNCED_GROUPS)}, tax codes, vendors, accounts",
        f"Pleo now shows {status}; the first sync is queued",
    ]


def step_first_sync(context: DemoContext) -> list[str]:
    browser: Browser = context.memory["browser"]
    emulator = _emulator(context)
    company_id = context.memory["company_id"]
    started = time.monotonic()
    page = _wait_for_sync(context, browser, context.memory["saved_at"], "the first sync")
    took = time.monotonic() - started
    path = context.memory["watch"].path(company_id)
    if path[-1:] != ["ACTIVATED"]:
        raise DemoFailure(f"the installation went {' -> '.join(path)}, not to ACTIVATED")
    writes = _writes(emulator)
    data_writes = _data_writes(writes)
    context.result = f"{sum(data_writes.values())} records written, ACTIVATED"
    return [
        f"done after {took:.0f} s; {' -> '.join(path)} in Pleo",
        *_run_lines(page),
        f"Pleo's request log: {sum(data_writes.values())} writes of records, "
        f"{sum(writes.values()) - sum(data_writes.values())} of the installation's status",
        f"Pleo now holds {_pleo_holds(emulator, company_id)}",
    ]


def step_second_sync(context: DemoContext) -> list[str]:
    browser: Browser = context.memory["browser"]
    emulator = _emulator(context)
    emulator.clear_request_log()
    page = _sync_now(context, browser, "the second sync")
    writes = _writes(emulator)
    if writes:
        raise DemoFailure(f"the second sync wrote: {_writes_line(writes)}")
    context.result = "0 writes"
    return [
        'POST /settings/sync ("Sync now") -> 303',
        *_run_lines(page),
        f"Pleo's request log: {_reads(emulator)} reads, 0 writes",
    ]


def _demo_changes() -> tuple[str, str, str, str, str, str]:
    """`gnucash_books.DEMO_CHANGES`, unpacked: vendor id and new name, the account's code, the
    job's id, name and customer."""
    changes = gnucash_books.DEMO_CHANGES
    vendor_id, vendor_name = (str(value) for value in changes["rename_vendor"])
    job_id, job_name, customer_id = (str(value) for value in changes["add_job"])
    return vendor_id, vendor_name, str(changes["hide_account"]), job_id, job_name, customer_id


def step_change_book(context: DemoContext) -> list[str]:
    vendor_id, vendor_name, account_code, job_id, job_name, customer_id = _demo_changes()
    book = context.book
    gnucash_books.rename_vendor(book, vendor_id, vendor_name)
    gnucash_books.hide_account(book, account_code)
    gnucash_books.add_job(book, job_id, job_name, customer_id)
    context.result = "3 changes"
    return [
        f"vendor {vendor_id} renamed to {vendor_name!r}",
        f"account {account_code} hidden",
        f"job {job_id} {job_name!r} added (customer {customer_id})",
    ]


def step_scheduled_sync(context: DemoContext) -> list[str]:
    browser: Browser = context.memory["browser"]
    emulator = _emulator(context)
    company_id = context.memory["company_id"]
    emulator.clear_request_log()
    asked_at = time.time()
    os.kill(context.world_pid, signal.SIGUSR1)  # the schedule, now rather than on the hour
    fired = context.wait_for_activity(
        lambda e: e.get("source") == "schedule" and e.get("at", 0) >= asked_at, "the schedule"
    )
    if fired.get("error"):
        raise DemoFailure(f"the dispatcher failed: {fired['error']}")
    page = _wait_for_sync(context, browser, asked_at, "the scheduled sync")
    writes = _writes(emulator)
    data_writes = _data_writes(writes)
    expected = {
        "PUT /v1/vendors/{id}": 1,
        "PUT /v1/chart-of-accounts/{accountId}": 1,
        "POST /v0/tag-groups/{groupId}/tags": 1,
    }
    if dict(data_writes) != expected:
        raise DemoFailure(f"expected the three changes, Pleo got {_writes_line(data_writes)}")
    vendor_id, _, account_code, job_id, _, _ = _demo_changes()
    data = emulator.data(company_id)
    vendor = next(v for v in data["vendors"] if v.get("code") == vendor_id)
    account = next(a for a in data["accounts"] if a.get("code") == account_code)
    tag = next((t for t in data["tags"] if t.get("code") == job_id), None)
    context.result = "3 writes"
    return [
        f"the schedule fired {fired['function']}: the installation's sync queued",
        *_run_lines(page),
        "Pleo's request log: 3 writes of records:",
        f"  PUT /v1/vendors/{{id}}: {vendor['code']} is now {vendor['name']!r}",
        f"  PUT /v1/chart-of-accounts/{{accountId}}: {account['code']} "
        f"{'archived' if account.get('archived') else 'NOT archived'}",
        f"  POST /v0/tag-groups/{{groupId}}/tags: {tag['code'] if tag else '?'} "
        f"{tag['name'] if tag else 'missing'!r} in Jobs",
        f"and {sum(writes.values()) - 3} of the installation's status "
        f"({', '.join(f'{op} x{n}' for op, n in sorted((writes - data_writes).items()))})",
    ]


def step_unreadable_book(context: DemoContext) -> list[str]:
    browser: Browser = context.memory["browser"]
    emulator = _emulator(context)
    company_id = context.memory["company_id"]
    gnucash_books.make_unreadable(context.book, "locked")
    lines = ["the book locked, as when GnuCash has it open"]
    emulator.clear_request_log()
    try:
        page = _sync_now(context, browser, "the sync of the locked book")
        problem = _source_problem(page)
        if problem is None:
            raise DemoFailure("the page shows no failure after a sync of a locked book")
        data_writes = _data_writes(_writes(emulator))
        lines += [
            "the page says:",
            *(f"  {line}" for line in textwrap.wrap(problem, 90)),
            f"Pleo: {_writes_line(data_writes)} of records; the installation stays "
            f"{context.memory['watch'].path(company_id)[-1]}",
        ]
    finally:
        gnucash_books.restore_readable(context.book)
    lines.append("the book unlocked")
    page = _sync_now(context, browser, "the sync after the unlock")
    if _source_problem(page) is not None:
        raise DemoFailure(f"still failing after the unlock: {_source_problem(page)}")
    last = _last_run(page)
    lines.append(f"recovered: {last.headline if last else 'no last sync'} The failure is gone.")
    context.result = "failure shown, recovered"
    return lines


def step_api_key_install(context: DemoContext) -> list[str]:
    emulator = _emulator(context)
    company = emulator.seed_company("Second Company A/S")
    api_key = emulator.issue_api_key(company["id"])
    browser = Browser()
    form = browser.request("GET", f"{context.api_url}/install/api-key")
    if form.status != 200:
        raise DemoFailure(f"GET /install/api-key answered {form.status}")
    wrong = browser.request(
        "POST",
        f"{context.api_url}/install/api-key",
        {"csrf_token": _csrf_token(form.body), "api_key": "pleo_key_not_a_real_one_000000"},
    )
    lines = [f"a key Pleo does not know -> {wrong.status}: {_page_problem(wrong.body)[:80]}"]
    installed = browser.request(
        "POST",
        f"{context.api_url}/install/api-key",
        {"csrf_token": _csrf_token(form.body), "api_key": api_key},
    )
    lines.append(
        f"the key the emulator issued for {company['name']} -> {installed.status} to "
        f"{_location(installed)}: checked live, stored encrypted"
    )
    page = _settings(context, browser)
    context.memory["api_key_browser"] = browser
    context.memory["api_key_company_id"] = company["id"]
    status = context.memory["watch"].path(company["id"])
    lines.append(
        f"GET /settings -> 200, status {_status_on_page(page)}; Pleo: {' -> '.join(status)}"
    )
    context.result = status[-1] if status else "no installation"
    return lines


def _table_items(context: DemoContext) -> list[dict[str, Any]]:
    client = context.aws_client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=context.resources.tables["Table"]):
        items.extend(page.get("Items", []))
    return items


def _items_of(items: list[dict[str, Any]], installation_ids: list[str]) -> list[dict[str, Any]]:
    return [
        item
        for item in items
        if any(installation_id in str(item) for installation_id in installation_ids)
    ]


def _idempotency(item: dict[str, Any]) -> bool:
    return str(item["pk"].get("S", "")).startswith("idempotency#")


def _ttl_left(items: list[dict[str, Any]]) -> str:
    """How long until the last of `items` expires by TTL, in minutes."""
    ttls = [float(item["ttl"]["N"]) for item in items if "ttl" in item]
    return f"{max(0.0, (max(ttls) - time.time()) / 60):.0f} min" if ttls else "none set"


def _key_of(item: dict[str, Any]) -> str:
    """An item's keys with the installation's id left out: "INST#… / RUN#…"."""
    keys = (str(item.get(name, {}).get("S", "")) for name in ("pk", "sk"))
    return " / ".join(re.sub(r"[0-9a-f-]{36}", "…", key) for key in keys)


def _page_when_idle(context: DemoContext, browser: Browser) -> Callable[[], str | None]:
    def probe() -> str | None:
        page = _settings(context, browser)
        return None if _syncing(page) else page

    return probe


def step_disconnect(context: DemoContext) -> list[str]:
    emulator = _emulator(context)
    browsers: list[tuple[str, Browser]] = [(COMPANY_NAME, context.memory["browser"])]
    if "api_key_browser" in context.memory:
        browsers.append(("Second Company A/S", context.memory["api_key_browser"]))
    ids = [_hidden(_settings(context, browser), "installation_id") or "" for _, browser in browsers]
    before = len([i for i in _items_of(_table_items(context), ids) if not _idempotency(i)])
    lines = []
    for name, browser in browsers:
        # Disconnecting waits for a running sync (the page refuses it meanwhile).
        page = context.wait_until(f"{name}'s sync to end", _page_when_idle(context, browser))
        answer = browser.request(
            "POST", f"{context.api_url}/settings/disconnect", _form_fields(page)
        )
        if answer.status != 200:
            raise DemoFailure(
                f"disconnecting {name} answered {answer.status}: {_page_problem(answer.body)}"
            )
        after = browser.request("GET", f"{context.api_url}/settings")
        lines.append(
            f"{name}: POST /settings/disconnect -> {answer.status} ({_short_body(answer.body)}); "
            f"GET /settings then -> {after.status}"
        )
    naming = _items_of(_table_items(context), ids)
    # Powertools' idempotency records of the installs (an installation id and a status, no
    # credential) keep a retried callback from installing twice, until their TTL.
    expiring = [item for item in naming if _idempotency(item)]
    left_items = [item for item in naming if item not in expiring]
    companies = {context.memory["company_id"], context.memory.get("api_key_company_id")}
    left_in_pleo = [i for i in emulator.installations() if i["company_id"] in companies]
    grants = [g for g in emulator.grants() if g.get("company_id") in companies]
    active = [grant for grant in grants if not grant.get("revoked")]
    context.memory["watch"].stop()
    if left_items or left_in_pleo or active:
        raise DemoFailure(
            f"left behind: {len(left_items)} table items "
            f"({', '.join(_key_of(item) for item in left_items[:5])}), {len(left_in_pleo)} "
            f"installations in Pleo, {len(active)} OAuth grants not revoked"
        )
    path = context.memory["watch"].path(context.memory["company_id"])
    lines += [
        f"the table: {before} items of the two installations before, 0 now"
        + (
            f" (and {len(expiring)} idempotency records of the installs, no credential in "
            f"them, until their TTL: {_ttl_left(expiring)})"
            if expiring
            else ""
        ),
        f"Pleo: no installation left ({COMPANY_NAME}'s went {' -> '.join(path)} -> deleted), "
        f"the OAuth grant revoked ({', '.join(str(g.get('revoked_reason')) for g in grants)})",
    ]
    context.result = "nothing left"
    return lines


DEMO_STEPS: list[tuple[str, DemoStep]] = [
    ("Connect with OAuth, through Pleo's consent page", step_oauth_install),
    ("The settings page: the book filled in, and a dry run", step_dry_run),
    ("Save the settings", step_save_settings),
    ("The first sync", step_first_sync),
    ("A second sync: nothing to change", step_second_sync),
    ("Change the book: a vendor renamed, an account hidden, a job added", step_change_book),
    ("The scheduled sync applies exactly those three changes", step_scheduled_sync),
    ("The book cannot be read, then can again", step_unreadable_book),
    ("Connect a second company with an API key", step_api_key_install),
    ("Disconnect: nothing is left behind", step_disconnect),
]


@dataclass
class StepOutcome:
    title: str
    result: str
    seconds: float


def summary_table(outcomes: list[StepOutcome], total_s: float) -> list[str]:
    """The story in one table: step, result, time."""
    width = max([len(o.title) for o in outcomes] + [4])
    result_width = max([len(o.result) for o in outcomes] + [6])
    lines = [f"  {'step':{width}}  {'result':{result_width}}  {'time':>7}"]
    lines += [
        f"  {o.title:{width}}  {o.result:{result_width}}  {o.seconds:6.1f}s" for o in outcomes
    ]
    lines.append(f"  {'total':{width}}  {'':{result_width}}  {total_s:6.1f}s")
    return lines


def run_demo(
    config: WorldConfig, out: TextIO, steps: list[tuple[str, DemoStep]] | None = None
) -> int:
    steps = DEMO_STEPS if steps is None else steps
    existing = read_state(config.state_dir)
    if existing is not None and pid_alive(int(existing["pid"])):
        out.write("A local world is already running: stop it with `make down`, then retry.\n")
        return 1
    if config.adapter != DEMO_ADAPTER:
        if config.adapter:
            out.write(f"(the demo tells the GnuCash story: ADAPTER={config.adapter} is not used)\n")
        config = replace(config, adapter=DEMO_ADAPTER)
    if config.sqs_visibility_timeout_s is None:
        config = replace(config, sqs_visibility_timeout_s=DEMO_VISIBILITY_TIMEOUT_S)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    world_log_path = config.log_dir / "world.log"
    out.write("Starting the local world (DynamoDB Local, moto, the emulator, the local API)...\n")
    out.flush()
    started = time.monotonic()
    with world_log_path.open("w", encoding="utf-8") as world_log:
        process = spawn_world(config, world_log)
    state: dict[str, Any] = {}
    outcomes: list[StepOutcome] = []
    failed = stopped = False
    context: DemoContext | None = None
    try:
        try:
            state = wait_until_ready(config, process)
        except (RuntimeError, TimeoutError) as error:
            out.write(f"The local world did not start: {error}\n")
            out.write(_tail(world_log_path))
            return 1
        urls = state["urls"]
        up_s = time.monotonic() - started
        outcomes.append(StepOutcome("Start the local world", "up", up_s))
        out.write(f"Up in {up_s:.1f} s, with the GnuCash adapter:\n")
        for label, key in (
            ("local API", "api"),
            ("Pleo emulator", "pleo-emulator"),
            ("DynamoDB Local", "dynamodb-local"),
            ("moto server", "moto"),
        ):
            out.write(f"  {label:15} {urls.get(key, '(not started)')}\n")
        out.write(f"  {'demo book':15} {state.get('book', '(none)')}\n")
        target = Target(
            urls["dynamodb-local"],
            urls["moto"],
            urls.get("pleo-emulator"),
            LocalResources(**state["resources"]),
        )
        context = DemoContext(config, state, process.pid, target, out=out)
        for number, (title, step) in enumerate(steps, start=1):
            out.write(f"\n{number}. {title}\n")
            out.flush()
            step_started = time.monotonic()
            context.result = None
            try:
                for line in step(context):
                    out.write(f"   {line}\n")
                result = context.result or "ok"
            except Exception as error:
                out.write(f"   FAILED: {error}\n")
                failed = True
                result = "FAILED"
                if not (isinstance(error, DemoFailure) and error.story_goes_on):
                    outcomes.append(StepOutcome(f"{number}. {title}", result, _since(step_started)))
                    stopped = True
                    break
            outcomes.append(StepOutcome(f"{number}. {title}", result, _since(step_started)))
            out.flush()
    finally:
        if context is not None and "watch" in context.memory:
            context.memory["watch"].stop()
        out.write("\nStopping everything...\n")
        out.flush()
        stopping = time.monotonic()
        stop_spawned(process, config)
        groups = list(state.get("process_groups", {}).values())
        left = [pgid for pgid in [process.pid, *groups] if group_alive(pgid)]
        outcomes.append(
            StepOutcome(
                "Stop everything", "no process left" if not left else "LEFT", _since(stopping)
            )
        )
        out.write(
            f"Stopped; {'no process left' if not left else f'still running: {left}'}. "
            f"World log: {world_log_path}\n"
        )
    if stopped:  # the world log's last lines are those of the step that stopped the story
        out.write(_tail(world_log_path))
    out.write("\nSummary\n")
    for line in summary_table(outcomes, time.monotonic() - started):
        out.write(line + "\n")
    out.write("Demo failed.\n" if failed else "Demo done.\n")
    return 1 if failed else 0


def _since(started: float) -> float:
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    """`python -m local.demo`: start a local world of its own, run the story, print it, stop."""
    os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description="Start the local world, run the whole story against it, stop it.",
        parents=[common_arguments()],
    )
    return run_demo(config_from(parser.parse_args(argv)), sys.stdout)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8").splitlines()[-lines:]
    except FileNotFoundError:
        return ""
    return "--- last lines of the world log ---\n" + "\n".join(text) + "\n"


if __name__ == "__main__":
    sys.exit(main())
