"""The local world: all the app needs to run on one machine, with no Docker and no AWS account.

    .venv-sam/bin/python -m local.world up              start it and leave it running (Ctrl-C stops)
    .venv-sam/bin/python -m local.world down            stop the one `up` started (from anywhere)
    .venv-sam/bin/python -m local.world status          what runs where, with a health check
    .venv-sam/bin/python -m local.world invoke HealthFunction -e events/health.json
    .venv-sam/bin/python -m local.world fire-schedule   run the scheduled sync now
    .venv-sam/bin/python -m local.demo                  start, run the story, print it, stop

`up` runs DynamoDB Local, moto's server and (once it exists) the Pleo emulator, creates the
template's resources on them, and serves the template's HTTP API with SAM CLI's own classes; an SQS
poller and a scheduler stand in for Lambda's event sources. Runs in SAM CLI's virtualenv; the
handlers run in the app's virtualenv (local/invoker.py). Every child lives in its own process group
recorded in `.local-world/state.json`, so `down` leaves nothing behind even after a crash.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from local.function_spec import DEFAULT_TEMPLATE, FunctionSpec
from local.functions import SAM_PYTHON, load_function_specs, translations
from local.invoker import (
    DEFAULT_OVERRIDES,
    FunctionNotFoundError,
    Invocation,
    Invoker,
    load_overrides,
    world_environment_builder,
)
from local.resources import LocalResources, create_all, load_template
from local.scheduler import Schedule, Scheduler, schedules
from local.services import (
    APP_PYTHON,
    PORTS,
    ROOT,
    Service,
    aws_endpoint_env,
    default_port,
    free_port,
    port_in_use,
    start_dynamodb_local,
    start_moto_server,
)
from local.sqs_poller import BatchOutcome, SqsPoller, sqs_sources, visibility_override_from_env

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

EMULATOR_LAUNCHER = ROOT / "local" / "pleo_emulator" / "launcher.py"
EVENTS_DIR = ROOT / "events"
RESOURCE_PREFIX = "pleo-connector-local"
# The emulator's default registered client uses this secret; the local secret must match it.
LOCAL_SECRET_VALUES = {"PleoClientSecret": "local-client-secret"}
# What `up` and the demo run when $ADAPTER is unset: the GnuCash adapter, with the demo book
# written into the state directory. `ADAPTER=` (set, empty) keeps the template's default.
DEFAULT_LOCAL_ADAPTER = "gnucash"

# name, default port, environment variable, what it is


class StopRequested(Exception):
    """SIGTERM or SIGINT arrived: stop everything."""


# ---------------------------------------------------------------------------------------------
# Configuration and the state file
# ---------------------------------------------------------------------------------------------


@dataclass
class WorldConfig:
    ports: dict[str, int]
    state_dir: Path
    template: Path = DEFAULT_TEMPLATE
    base_dir: Path | None = None
    env_vars: Path = DEFAULT_OVERRIDES
    sqs_visibility_timeout_s: int | None = None
    schedule_rate_s: int | None = None
    # The accounting-system adapter the functions read (`ADAPTER`); None: the template's default.
    adapter: str | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def activity_file(self) -> Path:
        """One JSON line per invocation made by the event sources and the local API."""
        return self.state_dir / "activity.jsonl"

    @property
    def demo_book(self) -> Path:
        """The GnuCash book a world with `ADAPTER=gnucash` writes at every start."""
        return self.state_dir / "books" / "demo.gnucash"


def write_demo_book(path: Path) -> Path:
    """Write the demo book (Nordlys Design ApS) afresh at `path`. piecash lives in the app's
    virtualenv, not SAM CLI's, so the book is written by the app's Python. Whatever was there
    goes first: piecash cannot overwrite a file that is not an SQLite database."""
    path.unlink(missing_ok=True)
    completed = subprocess.run(
        [str(APP_PYTHON), "-m", "local.gnucash_books", "demo", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"could not write the demo book {path}: {completed.stderr.strip()}")
    return path


def emulator_available() -> bool:
    return EMULATOR_LAUNCHER.exists()


def read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data


def write_state(config: WorldConfig, state: dict[str, Any]) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    partial = config.state_file.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    partial.replace(config.state_file)


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_groups(pgids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM each process group, then SIGKILL what is left after `timeout`."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(group_alive(p) for p in pgids):
        time.sleep(0.1)
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# The running world
# ---------------------------------------------------------------------------------------------


class ActivityLog:
    """Appends what the event sources and the API invoked, for `demo` and for people to read."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps({"at": time.time(), **entry}, sort_keys=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def invocation(self, source: str, invocation: Invocation, **extra: Any) -> None:
        self.record(
            {
                "source": source,
                "function": invocation.function_name,
                "request_id": invocation.request_id,
                "error": invocation.error_type,
                "cold_start": invocation.cold_start,
                "duration_ms": invocation.duration_ms,
                **extra,
            }
        )


def read_activity(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Backing:
    """The AWS stand-ins (and the emulator) with the template's resources created on them."""

    dynamodb_url: str
    moto_url: str
    emulator_url: str | None
    resources: LocalResources
    services: list[Service] = field(default_factory=list)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


def start_backing(
    config: WorldConfig,
    log_dir: Path | None,
    on_service: Callable[[Service], None] = lambda service: None,
    out: TextIO = sys.stdout,
) -> Backing:
    """Start DynamoDB Local, moto and the emulator (if present), then create the resources."""
    services: list[Service] = []
    try:
        for start, port in (
            (start_dynamodb_local, config.ports["dynamodb"]),
            (start_moto_server, config.ports["moto"]),
        ):
            service = start(port, log_dir)
            services.append(service)
            on_service(service)
        emulator_url = None
        if emulator_available():
            launcher = importlib.import_module("local.pleo_emulator.launcher")
            service = launcher.start_pleo_emulator(
                config.ports["emulator"], log_dir=log_dir, redirect_uri=oauth_callback_url(config)
            )
            services.append(service)
            on_service(service)
            emulator_url = service.url
        else:
            out.write(
                "note: the Pleo emulator (local/pleo_emulator/launcher.py) is not there yet: "
                "starting without it\n"
            )
        resources = create_all(
            services[0].url,
            services[1].url,
            prefix=RESOURCE_PREFIX,
            secret_values=LOCAL_SECRET_VALUES,
            template=load_template(config.template),
        )
    except BaseException:
        for service in reversed(services):
            service.stop()
        raise
    return Backing(services[0].url, services[1].url, emulator_url, resources, services)


def oauth_callback_url(config: WorldConfig) -> str:
    """The app's OAuth redirect URI in this world: the emulator starts with it (its default
    names port 3000, and an exact match is required) and keeps it across resets."""
    return f"{config.url('api')}/oauth/callback"


def environment_builder(
    config: WorldConfig, dynamodb_url: str, moto_url: str, emulator_url: str | None
) -> Callable[[FunctionSpec], dict[str, str]]:
    placeholders = {
        "LocalApiUrl": config.url("api"),
        "PleoEmulatorUrl": emulator_url or config.url("emulator"),
        "DynamoDbUrl": dynamodb_url,
        "MotoUrl": moto_url,
    }
    return world_environment_builder(
        world_overrides(config), placeholders, aws_endpoint_env(dynamodb_url, moto_url)
    )


def world_overrides(config: WorldConfig) -> dict[str, dict[str, str]]:
    """The env-vars file's overrides, with the world's adapter (`make up` with `ADAPTER` set)
    over the file's for every function; without one, what the file or the template says."""
    overrides = load_overrides(config.env_vars)
    if config.adapter:
        overrides["Parameters"] = {**overrides.get("Parameters", {}), "ADAPTER": config.adapter}
    return overrides


class World:
    """One running local world (the `up` command)."""

    def __init__(self, config: WorldConfig, out: TextIO = sys.stdout) -> None:
        self.config = config
        self.out = out
        self.backing: Backing | None = None
        self.invoker: Invoker | None = None
        self.pollers: list[SqsPoller] = []
        self.schedulers: list[Scheduler] = []
        self.activity = ActivityLog(config.activity_file)
        self.state: dict[str, Any] = {
            "pid": os.getpid(),
            "status": "starting",
            "started_at": time.time(),
            "process_groups": {},
            "urls": {},
            "template": str(config.template),
            # What the functions' environment was built from, for tools that act as a function
            # would (`pleo-connector-admin --local`).
            "env_vars": str(config.env_vars),
            "adapter": config.adapter,
        }

    def _remember(self, service: Service) -> None:
        self.state["process_groups"][service.name] = service.process.pid
        self.state["urls"][service.name] = service.url
        write_state(self.config, self.state)

    def start(self) -> Any:
        """Start everything but the API's server loop; return the API (its `run()` blocks)."""
        from local.local_api import LocalApi

        config = self.config
        config.log_dir.mkdir(parents=True, exist_ok=True)
        config.activity_file.unlink(missing_ok=True)
        if config.adapter == "gnucash":
            # A fresh world (DynamoDB Local and the emulator keep nothing) gets a fresh book.
            self.state["book"] = str(write_demo_book(config.demo_book))
        write_state(config, self.state)
        self.backing = start_backing(config, config.log_dir, self._remember, self.out)
        backing = self.backing
        specs = load_function_specs(config.template, backing.resources, config.base_dir)
        self.invoker = Invoker(
            specs,
            environment_builder(
                config, backing.dynamodb_url, backing.moto_url, backing.emulator_url
            ),
            log=self.out,
        )
        api = LocalApi(
            self.invoker,
            config.template,
            port=config.ports["api"],
            translations=translations(backing.resources),
        )
        api.runner.on_invocation = lambda invocation: self.activity.invocation("api", invocation)

        urls_by_arn = {
            backing.resources.queue_arns[logical]: url
            for logical, url in backing.resources.queue_urls.items()
        }
        for source in sqs_sources(specs, urls_by_arn):
            poller = SqsPoller(
                self.invoker,
                source,
                backing.moto_url,
                visibility_timeout_s=config.sqs_visibility_timeout_s,
                on_batch=self._record_batch,
            )
            poller.start()
            self.pollers.append(poller)
        for schedule in schedules(specs):
            scheduler = Scheduler(
                self.invoker, schedule, config.schedule_rate_s, on_fire=self._record_fire
            )
            scheduler.start()
            self.schedulers.append(scheduler)

        self.state.update(
            urls={**self.state["urls"], "api": api.url},
            resources=json.loads(backing.resources.to_json()),
            functions=sorted(specs),
        )
        write_state(config, self.state)
        self._print_summary(api, specs)
        threading.Thread(target=self._ready_when_listening, daemon=True).start()
        return api

    def _ready_when_listening(self) -> None:
        """Say "ready" in the state file once the API's server accepts connections."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not port_in_use(self.config.ports["api"]):
            time.sleep(0.05)
        self.state["status"] = "ready"
        write_state(self.config, self.state)

    def _record_batch(self, outcome: BatchOutcome) -> None:
        self.activity.invocation(
            "sqs",
            outcome.invocation,
            message_ids=outcome.message_ids,
            deleted=len(outcome.deleted),
            failed=len(outcome.failed),
        )

    def _record_fire(self, schedule: Schedule, invocation: Invocation) -> None:
        self.activity.invocation("schedule", invocation, schedule=schedule.name)

    def fire_schedules(self) -> None:
        for scheduler in self.schedulers:
            scheduler.fire_soon()

    def _print_summary(self, api: Any, specs: dict[str, FunctionSpec]) -> None:
        assert self.backing is not None
        lines = ["", "The local world is up:"]
        lines.append(f"  local API          {api.url}")
        for method, path, function in api.routes:
            lines.append(f"    {method:5} {api.url}{path}  -> {function}")
        emulator = self.backing.emulator_url or "(not started: the emulator is not there yet)"
        lines.append(f"  Pleo emulator      {emulator}")
        lines.append(f"  DynamoDB Local     {self.backing.dynamodb_url}")
        lines.append(f"  moto server        {self.backing.moto_url}")
        for poller in self.pollers:
            retry = (
                f"{poller.visibility_timeout_s} s"
                if poller.visibility_timeout_s is not None
                else "the queue's visibility timeout"
            )
            lines.append(
                f"  SQS poller         {poller.source.queue_url} -> {poller.source.function_name} "
                f"(batch {poller.source.batch_size}, concurrency {poller.source.max_concurrency}, "
                f"failed messages retried after {retry})"
            )
        for scheduler in self.schedulers:
            period = f"every {scheduler.period_s} s" if scheduler.period_s else "on demand only"
            lines.append(
                f"  schedule           {scheduler.schedule.expression} -> "
                f"{scheduler.schedule.function_name} ({period}; fire it now: "
                "`python -m local.world fire-schedule`)"
            )
        lines.append(f"  table              {', '.join(self.backing.resources.tables.values())}")
        lines.append(f"  logs and state     {self.config.state_dir}")
        lines.append(f"  adapter            {self.config.adapter or 'the template default'}")
        lines.extend(self._try_it_lines(api.url))
        lines.append("Stop it with Ctrl-C or `make down`. Health: `python -m local.world status`.")
        self.out.write("\n".join(lines) + "\n\n")
        self.out.flush()

    def _try_it_lines(self, api_url: str) -> list[str]:
        """What to open in a browser, and, with the GnuCash adapter, the book to enter."""
        lines = [
            "",
            "Open in a browser:",
            f"  connect with OAuth  {api_url}/oauth/start  (the emulator's consent page: approve)",
            f"  connect with a key  {api_url}/install/api-key",
            f"  settings            {api_url}/settings  (after connecting)",
        ]
        if self.backing is not None and self.backing.emulator_url:
            from local.pleo_emulator.state import DEFAULT_CLIENT_ID, DEFAULT_COMPANY_ID

            emulator = self.backing.emulator_url
            body = json.dumps({"company_id": DEFAULT_COMPANY_ID, "client_id": DEFAULT_CLIENT_ID})
            lines += [
                f"  Pleo's side         {emulator}/_emulator/installations  and /_emulator/data",
                f"  an API key:  curl -s -X POST {emulator}/_emulator/api-keys -d '{body}'",
            ]
        book = self.state.get("book")
        if book:
            lines += [
                "GnuCash book to enter on the settings page (written afresh at every start):",
                f"  {book}",
            ]
        return lines

    def stop(self) -> None:
        """Stop everything this world started, in reverse order."""
        for scheduler in self.schedulers:
            scheduler.stop()
        for poller in self.pollers:
            poller.stop()
        if self.invoker is not None:
            self.invoker.close()
        if self.backing is not None:
            self.backing.stop()
        kill_groups(list(self.state["process_groups"].values()), timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.config.state_file.unlink()


def _raise_stop(signum: int, frame: object) -> None:
    raise StopRequested(signal.Signals(signum).name)


def cmd_up(config: WorldConfig) -> int:
    existing = read_state(config.state_dir)
    if existing is not None and pid_alive(int(existing["pid"])):
        api = existing.get("urls", {}).get("api", "(starting)")
        sys.stderr.write(
            f"A local world is already running (pid {existing['pid']}, API {api}). "
            "Stop it first with `make down`.\n"
        )
        return 1
    if existing is not None:  # a crashed world: clear what it left
        kill_groups(list(existing.get("process_groups", {}).values()), timeout=5)
        config.state_file.unlink(missing_ok=True)
    wanted = dict(config.ports)
    if not emulator_available():
        wanted.pop("emulator")
    busy = [f"{name} port {port}" for name, port in wanted.items() if port_in_use(port)]
    if busy:
        sys.stderr.write(
            f"Cannot start the local world: {', '.join(busy)} already in use by another program. "
            "Choose other ports (see `python -m local.world up --help`).\n"
        )
        return 1

    # Also when started in the background, where a shell leaves SIGINT ignored.
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    world = World(config)
    signal.signal(signal.SIGUSR1, lambda signum, frame: world.fire_schedules())
    try:
        api = world.start()
        api.run()
    except (KeyboardInterrupt, StopRequested):
        pass
    except Exception as error:
        if type(error).__name__ != "ProcessSigTermException":  # SAM CLI's SIGTERM handler
            raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.stdout.write("\nStopping the local world...\n")
        world.stop()
        sys.stdout.write("Stopped.\n")
    return 0


def cmd_down(config: WorldConfig) -> int:
    state = read_state(config.state_dir)
    if state is None:
        sys.stdout.write(f"No local world is running (no state in {config.state_dir}).\n")
        return 0
    pid = int(state["pid"])
    if pid_alive(pid):
        sys.stdout.write(f"Stopping the local world (pid {pid})...\n")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    kill_groups(list(state.get("process_groups", {}).values()), timeout=5)
    config.state_file.unlink(missing_ok=True)
    sys.stdout.write("The local world is stopped.\n")
    return 0


def _check(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback only
            return f"ok ({response.status})"
    except urllib.error.HTTPError as error:
        return f"answers ({error.code})"
    except (urllib.error.URLError, OSError) as error:
        return f"DOWN ({error})"


def cmd_status(config: WorldConfig) -> int:
    state = read_state(config.state_dir)
    if state is None or not pid_alive(int(state["pid"])):
        sys.stdout.write("No local world is running.\n")
        return 1
    urls = state.get("urls", {})
    checks = {
        "local API /health": urls.get("api", "") + "/health" if "api" in urls else "",
        "DynamoDB Local": urls.get("dynamodb-local", ""),
        "moto server": urls.get("moto", "") + "/moto-api/" if "moto" in urls else "",
        "Pleo emulator": urls["pleo-emulator"] + "/_emulator/health"
        if "pleo-emulator" in urls
        else "",
    }
    healthy = True
    sys.stdout.write(f"Local world pid {state['pid']} ({state['status']}):\n")
    for name, url in checks.items():
        if not url:
            result = "not running"
            healthy = healthy and name == "Pleo emulator"
        else:
            result = _check(url)
            healthy = healthy and result.split()[0] in {"ok", "answers"}
            if name == "local API /health":
                healthy = healthy and result.startswith("ok")
        sys.stdout.write(f"  {name:18} {url or '-':45} {result}\n")
    return 0 if healthy and state["status"] == "ready" else 1


# ---------------------------------------------------------------------------------------------
# invoke and fire-schedule: with the running world if there is one, else with what they need
# ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    """The stand-ins an invocation talks to, and how to build a function's environment."""

    dynamodb_url: str
    moto_url: str
    emulator_url: str | None
    resources: LocalResources


@contextlib.contextmanager
def world_or_temporary(config: WorldConfig, out: TextIO = sys.stderr) -> Iterator[Target]:
    """The running world's stand-ins, or fresh ones on free ports, stopped afterwards."""
    state = read_state(config.state_dir)
    if state is not None and state.get("status") == "ready" and pid_alive(int(state["pid"])):
        urls = state["urls"]
        yield Target(
            urls["dynamodb-local"],
            urls["moto"],
            urls.get("pleo-emulator"),
            LocalResources(**state["resources"]),
        )
        return
    out.write("(no local world is running: starting the stand-ins it needs on free ports)\n")
    temporary = WorldConfig(
        ports={name: free_port() for name, *_ in PORTS},
        state_dir=config.state_dir,
        template=config.template,
        base_dir=config.base_dir,
        env_vars=config.env_vars,
        adapter=config.adapter,
    )
    backing = start_backing(temporary, None, out=out)
    try:
        yield Target(
            backing.dynamodb_url, backing.moto_url, backing.emulator_url, backing.resources
        )
    finally:
        backing.stop()


def resolve_function(specs: dict[str, FunctionSpec], name: str) -> str:
    """A logical ID, or a function's folder name (`health` -> HealthFunction)."""
    if name in specs:
        return name
    for logical, spec in specs.items():
        if Path(spec.code_dir).name == name:
            return logical
    raise FunctionNotFoundError(f"{name}: not a function of the template ({', '.join(specs)})")


def invoke_once(config: WorldConfig, target: Target, function: str, event: Any) -> Invocation:
    specs = load_function_specs(config.template, target.resources, config.base_dir)
    build = environment_builder(config, target.dynamodb_url, target.moto_url, target.emulator_url)
    with Invoker(specs, build, log=sys.stderr) as invoker:
        return invoker.invoke(resolve_function(specs, function), event)


def cmd_invoke(config: WorldConfig, function: str, event_path: str | None) -> int:
    if event_path in (None, "-"):
        event = json.loads(sys.stdin.read() or "{}") if event_path == "-" else {}
    else:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    with world_or_temporary(config) as target:
        try:
            invocation = invoke_once(config, target, function, event)
        except FunctionNotFoundError as error:
            sys.stderr.write(f"{error.args[0]}\n")
            return 2
    sys.stdout.write(json.dumps(invocation.payload) + "\n")
    return 1 if invocation.is_error else 0


def cmd_fire_schedule(config: WorldConfig) -> int:
    state = read_state(config.state_dir)
    if state is not None and state.get("status") == "ready" and pid_alive(int(state["pid"])):
        os.kill(int(state["pid"]), signal.SIGUSR1)
        sys.stdout.write(
            "Asked the running local world to fire its schedules now (see its output).\n"
        )
        return 0
    with world_or_temporary(config) as target:
        specs = load_function_specs(config.template, target.resources, config.base_dir)
        build = environment_builder(
            config, target.dynamodb_url, target.moto_url, target.emulator_url
        )
        failed = False
        with Invoker(specs, build, log=sys.stderr) as invoker:
            for schedule in schedules(specs):
                invocation = Scheduler(invoker, schedule).fire()
                failed = failed or invocation.is_error
                sys.stdout.write(f"{schedule.name}: {json.dumps(invocation.payload)}\n")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.world",
        description="Run the app locally: AWS stand-ins, the local API, the event sources.",
    )
    common = common_arguments()
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", parents=[common], help="start and leave running (Ctrl-C stops)")
    commands.add_parser("down", parents=[common], help="stop the running world")
    commands.add_parser("status", parents=[common], help="what runs where, health-checked")
    invoke = commands.add_parser("invoke", parents=[common], help="like `sam local invoke`")
    invoke.add_argument("function", help="logical ID (HealthFunction) or folder name (health)")
    invoke.add_argument("-e", "--event", default=None, help="event JSON file, or - for stdin")
    commands.add_parser("fire-schedule", parents=[common], help="run the scheduled sync now")
    return parser


def common_arguments() -> argparse.ArgumentParser:
    """The world's options (ports, state, template, overrides), shared with `python -m
    local.demo`, which starts a world of its own."""
    common = argparse.ArgumentParser(add_help=False)
    for name, default, variable, what in PORTS:
        common.add_argument(
            f"--{name}-port",
            type=int,
            default=default_port(name),
            help=f"{what} (default {default}, or ${variable})",
        )
    common.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("LOCAL_WORLD_DIR") or ROOT / ".local-world"),
        help="state file and logs (default .local-world, or $LOCAL_WORLD_DIR)",
    )
    common.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    common.add_argument(
        "--base-dir", type=Path, default=None, help="where CodeUri paths start (sam's --base-dir)"
    )
    common.add_argument(
        "--env-vars",
        type=Path,
        default=DEFAULT_OVERRIDES,
        help="environment overrides, `sam local --env-vars` format (default local/env.local.json)",
    )
    common.add_argument(
        "--sqs-visibility-timeout",
        type=int,
        default=visibility_override_from_env(),
        help="seconds a failed message waits before its retry (default: the rest of the queue's "
        "visibility timeout, 720 s in the template; or $LOCAL_SQS_VISIBILITY_TIMEOUT)",
    )
    common.add_argument(
        "--schedule-rate",
        type=int,
        default=int(os.environ.get("LOCAL_SCHEDULE_RATE_SECONDS") or 0) or None,
        help="fire schedules every N seconds instead of the template's rate "
        "(or $LOCAL_SCHEDULE_RATE_SECONDS)",
    )
    common.add_argument(
        "--adapter",
        default=os.environ.get("ADAPTER", DEFAULT_LOCAL_ADAPTER),
        help=f"the accounting-system adapter the functions read, e.g. json (default: $ADAPTER, "
        f"else {DEFAULT_LOCAL_ADAPTER}, with the demo book in the state directory); an empty "
        "value keeps the template's Adapter parameter",
    )
    return common


def config_from(args: argparse.Namespace) -> WorldConfig:
    return WorldConfig(
        ports={name: int(getattr(args, f"{name}_port")) for name, *_ in PORTS},
        state_dir=args.state_dir.resolve(),
        template=args.template.resolve(),
        base_dir=args.base_dir.resolve() if args.base_dir else None,
        env_vars=args.env_vars,
        sqs_visibility_timeout_s=args.sqs_visibility_timeout,
        schedule_rate_s=args.schedule_rate,
        adapter=args.adapter or None,
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
    args = build_parser().parse_args(argv)
    config = config_from(args)
    if args.command == "up":
        return cmd_up(config)
    if args.command == "down":
        return cmd_down(config)
    if args.command == "status":
        return cmd_status(config)
    if args.command == "invoke":
        return cmd_invoke(config, args.function, args.event)
    if args.command == "fire-schedule":
        return cmd_fire_schedule(config)
    raise AssertionError(args.command)


def spawn_world(config: WorldConfig, log: TextIO | None = None) -> subprocess.Popen[bytes]:
    """Start `up` as a child process (the demo and the tests do), in its own process group."""
    return subprocess.Popen(
        world_argv(config),
        cwd=ROOT,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0", "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


def world_argv(config: WorldConfig) -> list[str]:
    """The `up` command line that starts a world with `config`."""
    argv = [str(SAM_PYTHON), "-m", "local.world", "up"]
    argv += [f"--{name}-port={config.ports[name]}" for name, *_ in PORTS]
    argv += [f"--state-dir={config.state_dir}", f"--template={config.template}"]
    argv += [f"--env-vars={config.env_vars}"]
    if config.base_dir is not None:
        argv.append(f"--base-dir={config.base_dir}")
    if config.sqs_visibility_timeout_s is not None:
        argv.append(f"--sqs-visibility-timeout={config.sqs_visibility_timeout_s}")
    if config.schedule_rate_s is not None:
        argv.append(f"--schedule-rate={config.schedule_rate_s}")
    # Always explicit: an empty value keeps the template's default in the child, whose own
    # default would otherwise be DEFAULT_LOCAL_ADAPTER.
    argv.append(f"--adapter={config.adapter or ''}")
    return argv


def wait_until_ready(
    config: WorldConfig, process: subprocess.Popen[bytes], timeout: float = 180.0
) -> dict[str, Any]:
    """Wait for a spawned world's state to say ready (or fail if it exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local world exited with code {process.returncode}")
        state = read_state(config.state_dir)
        if state is not None and state.get("status") == "ready" and state["pid"] == process.pid:
            return state
        time.sleep(0.2)
    raise TimeoutError(f"the local world was not ready within {timeout:.0f} s")


def stop_spawned(process: subprocess.Popen[bytes], config: WorldConfig) -> None:
    """Stop a world started with `spawn_world` and anything it left."""
    state = read_state(config.state_dir)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    if state is not None:
        kill_groups(list(state.get("process_groups", {}).values()), timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    config.state_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
