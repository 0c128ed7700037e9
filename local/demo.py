"""`make demo`: start the local world, walk through the story step by step, print what happened,
stop everything.

The story is `DEMO_STEPS`, a list of (title, step) pairs; a step gets a `DemoContext` (the running
world's URLs, resources and helpers) and returns the lines to print, or raises `DemoFailure`. Later
capabilities (an OAuth install through the emulator, an API-key install, a sync) are new steps.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from local.functions import load_function_specs
from local.invoker import Invocation, Invoker
from local.pleo_emulator.control_client import EmulatorControl
from local.resources import LocalResources
from local.services import LOCAL_REGION
from local.world import (
    EVENTS_DIR,
    Target,
    WorldConfig,
    common_arguments,
    config_from,
    environment_builder,
    group_alive,
    pid_alive,
    read_activity,
    read_state,
    spawn_world,
    stop_spawned,
    wait_until_ready,
)

if TYPE_CHECKING:
    from local.function_spec import FunctionSpec

# A failed sync message comes back after this many seconds in the demo, not the template's 720.
DEMO_VISIBILITY_TIMEOUT_S = 5


class DemoFailure(Exception):
    """A step did not see what it should have."""


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: str


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


@dataclass
class DemoContext:
    """What a step can use: the running world and small helpers."""

    config: WorldConfig
    state: dict[str, Any]
    world_pid: int
    target: Target
    memory: dict[str, Any] = field(default_factory=dict)  # what steps hand to later steps

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

    def specs(self) -> dict[str, FunctionSpec]:
        return load_function_specs(self.config.template, self.resources, self.config.base_dir)

    def http(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpAnswer:
        """One request to the local API (redirects are not followed: steps look at them)."""
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.api_url + path, data=body, method=method, headers=headers or {}
        )
        return _answer(urllib.request.build_opener(_NoRedirect), request)

    def aws_client(self, service: str) -> Any:
        import boto3

        endpoint = self.target.dynamodb_url if service == "dynamodb" else self.target.moto_url
        session: Any = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the stand-ins accept anything
            region_name=LOCAL_REGION,
        )
        return session.client(service, endpoint_url=endpoint)

    def invoker(self) -> Invoker:
        """A fresh invoker with the world's environment, like `local.world invoke` uses."""
        build = environment_builder(
            self.config, self.target.dynamodb_url, self.target.moto_url, self.target.emulator_url
        )
        return Invoker(self.specs(), build, log=None)

    def wait_for_activity(
        self, matches: Callable[[dict[str, Any]], bool], timeout: float = 60.0
    ) -> dict[str, Any]:
        """The first entry of the world's activity log that `matches`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in read_activity(self.config.activity_file):
                if matches(entry):
                    return entry
            time.sleep(0.2)
        raise DemoFailure(f"nothing happened within {timeout:.0f} s")


DemoStep = Callable[[DemoContext], list[str]]


def describe(invocation: Invocation) -> str:
    """One readable line for an invocation's outcome."""
    payload = invocation.payload
    if invocation.is_error:
        text = f"ERROR {invocation.error_type}: {payload.get('errorMessage')}"
    elif isinstance(payload, dict) and "statusCode" in payload:
        headers = {k.lower(): v for k, v in (payload.get("headers") or {}).items()}
        text = f"HTTP {payload['statusCode']}"
        if "location" in headers:
            text += f" -> {headers['location'][:70]}"
        elif payload.get("body"):
            text += f" {_short_body(str(payload['body']))}"
    else:
        text = json.dumps(payload)[:80]
    start = f"cold start, init {invocation.init_ms:.0f} ms" if invocation.init_ms else "warm"
    return f"{text}  ({start}, {invocation.duration_ms:.0f} ms)"


def _short_body(body: str) -> str:
    """A page's title, or the first characters of any other body, on one line."""
    title = re.search(r"<title>(.*?)</title>", body, re.S | re.I)
    if title:
        return f"page: {' '.join(title.group(1).split())[:60]}"
    return " ".join(body.split())[:60]


def step_health(context: DemoContext) -> list[str]:
    answer = context.http("GET", "/health")
    if answer.status != 200 or json.loads(answer.body or "{}").get("status") != "ok":
        raise DemoFailure(f"GET /health answered {answer.status}: {answer.body[:200]}")
    again = context.http("GET", "/health")
    return [
        f"GET {context.api_url}/health -> {answer.status} {answer.body}",
        f"again (a warm worker this time) -> {again.status}",
    ]


def step_invoke_every_function(context: DemoContext) -> list[str]:
    lines, failures = [], []
    with context.invoker() as invoker:
        for name, spec in sorted(context.specs().items()):
            event_file = EVENTS_DIR / f"{Path(spec.code_dir).name}.json"
            if not event_file.exists():
                failures.append(name)
                lines.append(f"{name:24} no sample event at events/{event_file.name}")
                continue
            invocation = invoker.invoke(name, json.loads(event_file.read_text(encoding="utf-8")))
            if invocation.is_error:
                failures.append(name)
            lines.append(f"{name:24} events/{event_file.name:22} {describe(invocation)}")
    if failures:
        raise DemoFailure(f"failed: {', '.join(failures)}\n      " + "\n      ".join(lines))
    return lines


def step_sqs_message(context: DemoContext) -> list[str]:
    queue_url = context.resources.queue_urls["SyncQueue"]
    # The sync message format (pleo_connector.sync_queue.SyncRequest). No such installation
    # exists: the worker has nothing to sync, and the message is done.
    body = json.dumps(
        {"installation_id": "00000000-0000-4000-8000-000000000001", "reason": "sync_now"}
    )
    message_id = context.aws_client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)[
        "MessageId"
    ]
    entry = context.wait_for_activity(
        lambda e: e.get("source") == "sqs" and message_id in e.get("message_ids", [])
    )
    outcome = (
        f"error {entry['error']}"
        if entry.get("error")
        else f"deleted {entry['deleted']}, left for a retry {entry['failed']}"
    )
    return [
        f"sent message {message_id} to {queue_url.rsplit('/', 1)[-1]}",
        f"the poller handed {entry['function']} a batch of {len(entry['message_ids'])}: {outcome}",
    ]


def step_fire_schedule(context: DemoContext) -> list[str]:
    asked_at = time.time()
    os.kill(context.world_pid, signal.SIGUSR1)
    entry = context.wait_for_activity(
        lambda e: e.get("source") == "schedule" and e.get("at", 0) >= asked_at
    )
    outcome = f"error {entry['error']}" if entry.get("error") else "done"
    return [f"schedule {entry['schedule']} fired {entry['function']}: {outcome}"]


class Browser:
    """A cookie-keeping client that follows no redirect by itself, so each hop can be shown."""

    def __init__(self) -> None:
        import http.cookiejar

        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect
        )

    def request(self, method: str, url: str, form: dict[str, Any] | None = None) -> HttpAnswer:
        from urllib.parse import urlencode

        data = urlencode(form, doseq=True).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        return _answer(self._opener, request)


def _emulator(context: DemoContext) -> EmulatorControl:
    """The emulator's control API."""
    if context.emulator_url is None:
        raise DemoFailure("the Pleo emulator is not running")
    return EmulatorControl(context.emulator_url, timeout=30)


def _location(answer: HttpAnswer) -> str:
    location = {k.lower(): v for k, v in answer.headers.items()}.get("location")
    if answer.status not in (302, 303) or not location:
        raise DemoFailure(f"expected a redirect, got {answer.status}: {_short_body(answer.body)}")
    return location


def _csrf_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not found:
        raise DemoFailure("the page has no CSRF token")
    return found.group(1)


def _status_on_page(page: str) -> str:
    """The installation status the settings page shows (its `data-status` attribute)."""
    found = re.search(r'data-status="([A-Z_]+)"', page)
    return found.group(1) if found else "unknown"


def _wait_for_status(
    context: DemoContext, browser: Browser, wanted: str, timeout: float = 60.0
) -> str:
    deadline = time.monotonic() + timeout
    status = "unknown"
    while time.monotonic() < deadline:
        page = browser.request("GET", f"{context.api_url}/settings")
        status = _status_on_page(page.body)
        if status == wanted:
            return status
        time.sleep(0.5)
    raise DemoFailure(f"the settings page still shows {status}, not {wanted}")


def _configure(context: DemoContext, browser: Browser) -> list[str]:
    """Fill the settings page as a person would: connection, two dimensions, everything else."""
    page = browser.request("GET", f"{context.api_url}/settings")
    if page.status != 200:
        raise DemoFailure(f"GET /settings answered {page.status}")
    lines = [f"GET /settings -> 200, status {_status_on_page(page.body)}"]
    saved = browser.request(
        "POST",
        f"{context.api_url}/settings",
        {
            "csrf_token": _csrf_token(page.body),
            "source_url": "https://erp.example.com/api",
            "api_token": "demo-accounting-token",
            "environment": "sandbox",
            "timeout_s": "20",
            "sync_tag_groups": ["DEPT", "PROJ"],
            "sync_tax_codes": "on",
            "sync_vendors": "on",
            "sync_accounts": "on",
        },
    )
    _location(saved)
    lines.append("POST /settings -> 303: PENDING_INTEGRATION in Pleo, first sync queued")
    _wait_for_status(context, browser, "ACTIVATED")
    lines.append("the worker ran the first sync and called me:activate: the page shows ACTIVATED")
    return lines


def step_oauth_install(context: DemoContext) -> list[str]:
    _emulator(context).update_settings(auto_approve=True)
    browser = Browser()
    start = browser.request("GET", f"{context.api_url}/oauth/start")
    authorize = _location(start)
    lines = [f"GET /oauth/start -> {start.status} to {authorize.split('?')[0]} (PKCE S256, state)"]
    consent = browser.request("GET", authorize)
    callback = _location(consent)
    lines.append(f"the emulator approved for its company -> {callback.split('?')[0]}?code=...")
    done = browser.request("GET", callback)
    landing = _location(done)
    lines.append(f"GET /oauth/callback -> {done.status} to {landing}: tokens stored encrypted")
    lines.extend(_configure(context, browser))
    statuses = [item["status"] for item in _emulator(context).installations()]
    lines.append(f"the installation in Pleo (the emulator): {', '.join(statuses)}")
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
    lines = [f"a key Pleo does not know -> {wrong.status}: {_short_body(wrong.body)}"]
    installed = browser.request(
        "POST",
        f"{context.api_url}/install/api-key",
        {"csrf_token": _csrf_token(form.body), "api_key": api_key},
    )
    lines.append(
        f"the key the emulator issued for {company['name']} -> {installed.status} to "
        f"{_location(installed)}: checked live, stored encrypted, installation created"
    )
    page = browser.request("GET", f"{context.api_url}/settings")
    lines.append(f"GET /settings -> {page.status}, status {_status_on_page(page.body)}")
    return lines


def step_scheduled_sync(context: DemoContext) -> list[str]:
    expected = len(_emulator(context).installations())
    asked_at = time.time()
    os.kill(context.world_pid, signal.SIGUSR1)
    entry = context.wait_for_activity(
        lambda e: e.get("source") == "schedule" and e.get("at", 0) >= asked_at
    )
    if entry.get("error"):
        raise DemoFailure(f"the dispatcher failed: {entry['error']}")
    deadline = time.monotonic() + 60
    batches: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        batches = [
            e
            for e in read_activity(context.config.activity_file)
            if e.get("source") == "sqs" and e.get("at", 0) >= asked_at
        ]
        if sum(len(e["message_ids"]) for e in batches) >= expected:
            break
        time.sleep(0.2)
    handed = sum(len(e["message_ids"]) for e in batches)
    if handed < expected:
        raise DemoFailure(f"{handed} of {expected} installations reached the worker")
    deleted = sum(int(e.get("deleted", 0)) for e in batches)
    return [
        f"schedule fired {entry['function']}: one message per schedulable installation",
        f"the poller handed {handed} message(s) to the worker in {len(batches)} batch(es): "
        f"{deleted} done",
    ]


DEMO_STEPS: list[tuple[str, DemoStep]] = [
    ("GET /health through the local API", step_health),
    ("Every function once with its events/ sample (local invoke)", step_invoke_every_function),
    ("One message through the SQS poller to the sync worker", step_sqs_message),
    ("The schedule, fired once", step_fire_schedule),
    ("An OAuth install through Pleo's consent, then the settings page", step_oauth_install),
    ("An API-key install", step_api_key_install),
    ("A scheduled sync of every installation", step_scheduled_sync),
]


def run_demo(
    config: WorldConfig, out: TextIO, steps: list[tuple[str, DemoStep]] | None = None
) -> int:
    steps = DEMO_STEPS if steps is None else steps
    existing = read_state(config.state_dir)
    if existing is not None and pid_alive(int(existing["pid"])):
        out.write("A local world is already running: stop it with `make down`, then retry.\n")
        return 1
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
    failed = False
    try:
        try:
            state = wait_until_ready(config, process)
        except (RuntimeError, TimeoutError) as error:
            out.write(f"The local world did not start: {error}\n")
            out.write(_tail(world_log_path))
            return 1
        urls = state["urls"]
        out.write(f"Up in {time.monotonic() - started:.1f} s:\n")
        for label, key in (
            ("local API", "api"),
            ("Pleo emulator", "pleo-emulator"),
            ("DynamoDB Local", "dynamodb-local"),
            ("moto server", "moto"),
        ):
            out.write(f"  {label:15} {urls.get(key, '(not started)')}\n")
        target = Target(
            urls["dynamodb-local"],
            urls["moto"],
            urls.get("pleo-emulator"),
            LocalResources(**state["resources"]),
        )
        context = DemoContext(config, state, process.pid, target)
        for number, (title, step) in enumerate(steps, start=1):
            out.write(f"\n{number}. {title}\n")
            out.flush()
            try:
                for line in step(context):
                    out.write(f"   {line}\n")
            except Exception as error:
                out.write(f"   FAILED: {error}\n")
                failed = True
                break
            out.flush()
    finally:
        out.write("\nStopping everything...\n")
        stop_spawned(process, config)
        groups = list(state.get("process_groups", {}).values())
        left = [pgid for pgid in [process.pid, *groups] if group_alive(pgid)]
        out.write(
            f"Stopped; {'no process left' if not left else f'still running: {left}'}. "
            f"World log: {world_log_path}\n"
        )
    if failed:
        out.write(_tail(world_log_path))
    out.write("Demo failed.\n" if failed else "Demo done.\n")
    return 1 if failed else 0


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
