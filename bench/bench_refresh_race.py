"""Refresh race: N separate processes ask for an access token on one expired credential at once.

Pleo rotates refresh tokens and revokes the whole grant when an old one comes back, so every race
must end with exactly one call to the token endpoint, no reuse detection, and the credential at
version start + 1. This module holds the harness (also used by tests/integration/
test_refresh_race.py) and a benchmark that repeats the race and prints:

    bench: refresh_race.token_calls_min = 1 calls
    bench: refresh_race.token_calls_max = 1 calls
    bench: refresh_race.reuse_detections = 0 count
    bench: refresh_race.duration_p50 = ... ms
    bench: refresh_race.duration_p95 = ... ms

Run with `.venv/bin/python -m bench.bench_refresh_race [--races 100] [--processes 20]
[--max-seconds 600]`. It starts its own DynamoDB Local, moto server and Pleo emulator on free
loopback ports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import multiprocessing
import queue
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.context import SpawnProcess
    from multiprocessing.sharedctypes import Synchronized
    from multiprocessing.synchronize import Barrier

    from local.pleo_emulator.control_client import EmulatorControl
    from pleo_connector.crypto import CredentialCipher
    from pleo_connector.store.credentials import CredentialRepository
    from pleo_connector.store.dynamodb import DynamoTable

# Generous: 20 processes start on a small machine, and a race must never hang a test run.
_READY_TIMEOUT_S = 180.0
_RACE_TIMEOUT_S = 90.0


def _ensure_paths() -> None:
    """Make `pleo_connector` and `local` importable when run as a script or with -m."""
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


@dataclass(frozen=True)
class RaceEndpoints:
    """Where every process finds the table, the key and the token endpoint (picklable)."""

    dynamodb_url: str
    kms_url: str
    table_name: str
    kms_key_id: str
    auth_url: str
    client_id: str
    client_secret: str
    region: str = "eu-west-1"


@dataclass(frozen=True)
class WorkerOutcome:
    worker: int
    ok: bool
    detail: str  # sha256 of the token when ok (never the token), else the error's type


@dataclass
class RaceResult:
    duration_s: float
    outcomes: list[WorkerOutcome] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [outcome.detail for outcome in self.outcomes if not outcome.ok]

    @property
    def distinct_tokens(self) -> set[str]:
        return {outcome.detail for outcome in self.outcomes if outcome.ok}


def _session(endpoints: RaceEndpoints) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - only the local stand-ins accept it
        region_name=endpoints.region,
    )


def build_table(endpoints: RaceEndpoints) -> DynamoTable:
    _ensure_paths()
    from pleo_connector.store.dynamodb import DynamoTable

    client = _session(endpoints).client("dynamodb", endpoint_url=endpoints.dynamodb_url)
    return DynamoTable(endpoints.table_name, client=client)


def build_parts(endpoints: RaceEndpoints) -> tuple[CredentialRepository, CredentialCipher]:
    """The credentials repository and cipher on the local stand-ins, as each process builds them."""
    _ensure_paths()
    from pleo_connector.crypto import CredentialCipher
    from pleo_connector.store.credentials import CredentialRepository

    kms = _session(endpoints).client("kms", endpoint_url=endpoints.kms_url)
    return CredentialRepository(build_table(endpoints)), CredentialCipher(
        endpoints.kms_key_id, kms_client=kms
    )


def _worker(
    endpoints: RaceEndpoints,
    index: int,
    commands: multiprocessing.Queue[str | None],
    results: multiprocessing.Queue[tuple[str, Any]],
    barrier: Barrier,
    frozen_at: Synchronized[float],
) -> None:
    """One racing process: build everything once, then race on each installation it is sent."""
    _ensure_paths()
    from pleo_connector.pleo.oauth import OAuthClient
    from pleo_connector.tokens import TokenStore

    repo, cipher = build_parts(endpoints)

    def clock() -> float:
        return frozen_at.value or time.time()

    async def race(installation_id: str) -> str:
        # One HTTP client per event loop (asyncio.run makes a new loop per race).
        oauth = OAuthClient(endpoints.auth_url, endpoints.client_id, endpoints.client_secret)
        try:
            store = TokenStore(
                repo, cipher, oauth.refresh, clock=clock, refresh_timeout_s=oauth.request_timeout_s
            )
            return await store.access_token(installation_id)
        finally:
            await oauth.aclose()

    # Warm up imports, clients and endpoint resolution, so the race measures the protocol.
    repo.get(f"warm-up-{index}")
    cipher.client.describe_key(KeyId=endpoints.kms_key_id)
    results.put(("ready", index))

    while True:
        installation_id = commands.get()
        if installation_id is None:
            return
        barrier.wait(timeout=_RACE_TIMEOUT_S)
        try:
            token = asyncio.run(race(installation_id))
            outcome = WorkerOutcome(index, True, hashlib.sha256(token.encode()).hexdigest())
        except Exception as error:  # reported to the parent, which fails the race
            outcome = WorkerOutcome(index, False, type(error).__name__)
        results.put(("done", outcome))


class RefreshRace:
    """N long-lived racing processes (spawned, so nothing is shared but the stand-ins and the
    clock: inside `frozen_clock()` every process's token store reads the time the parent sets, so
    a token expires when the test says, neither sooner on a slow machine nor later)."""

    def __init__(self, endpoints: RaceEndpoints, processes: int = 20) -> None:
        context = multiprocessing.get_context("spawn")
        self.processes = processes
        self._frozen_at: Synchronized[float] = context.Value("d", 0.0)  # 0: the real time
        self._barrier = context.Barrier(processes + 1)
        self._results: multiprocessing.Queue[tuple[str, Any]] = context.Queue()
        self._commands: list[multiprocessing.Queue[str | None]] = []
        self._workers: list[SpawnProcess] = []
        for index in range(processes):
            commands: multiprocessing.Queue[str | None] = context.Queue()
            worker = context.Process(
                target=_worker,
                args=(endpoints, index, commands, self._results, self._barrier, self._frozen_at),
                daemon=True,
            )
            worker.start()
            self._commands.append(commands)
            self._workers.append(worker)
        deadline = time.monotonic() + _READY_TIMEOUT_S
        for _ in range(processes):
            kind, _ = self._next_result(deadline)
            if kind != "ready":
                raise RuntimeError(f"unexpected message from a racing process: {kind}")

    def clock(self) -> float:
        """The racing processes' clock: the frozen time, or the real one."""
        return self._frozen_at.value or time.time()

    @contextlib.contextmanager
    def frozen_clock(self) -> Iterator[None]:
        """Stop the racing processes' clock at now; `advance_clock` then moves it."""
        self._frozen_at.value = time.time()
        try:
            yield
        finally:
            self._frozen_at.value = 0.0

    def advance_clock(self, seconds: float) -> None:
        if not self._frozen_at.value:
            raise RuntimeError("advance_clock works inside frozen_clock() only")
        self._frozen_at.value += seconds

    def run(self, installation_id: str) -> RaceResult:
        for commands in self._commands:
            commands.put(installation_id)
        self._barrier.wait(timeout=_RACE_TIMEOUT_S)
        started = time.perf_counter()
        deadline = time.monotonic() + _RACE_TIMEOUT_S
        outcomes: list[WorkerOutcome] = []
        while len(outcomes) < self.processes:
            kind, payload = self._next_result(deadline)
            if kind == "done":
                outcomes.append(payload)
        return RaceResult(time.perf_counter() - started, sorted(outcomes, key=lambda o: o.worker))

    def _next_result(self, deadline: float) -> tuple[str, Any]:
        while True:
            try:
                return self._results.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError("the racing processes did not answer in time") from None
                dead = [worker.exitcode for worker in self._workers if not worker.is_alive()]
                if dead:
                    raise RuntimeError(f"a racing process exited (codes {dead})") from None

    def close(self) -> None:
        for commands in self._commands:
            with contextlib.suppress(Exception):
                commands.put(None)
        for worker in self._workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=5)

    def __enter__(self) -> RefreshRace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class RaceRecord:
    """One race as the token endpoint and the table saw it."""

    result: RaceResult
    token_calls: int
    reuse_detections: int
    start_version: int
    final_version: int


def race_once(
    race: RefreshRace,
    repo: CredentialRepository,
    cipher: CredentialCipher,
    control: Any,
    installation_id: str | None = None,
) -> RaceRecord:
    """Give a fresh installation an expired credential from a real grant, race, and count.

    `control` is local.pleo_emulator.control_client.EmulatorControl, or anything with its
    obtain_tokens, events, clear_request_log and request_log.
    """
    _ensure_paths()
    from pleo_connector.pleo.oauth import TokenSet
    from pleo_connector.tokens import TokenStore

    installation_id = installation_id or f"race-{uuid.uuid4().hex[:12]}"
    tokens = control.obtain_tokens()
    TokenStore(repo, cipher, clock=race.clock).save_oauth_tokens(
        installation_id,
        TokenSet(
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            expires_in=-1,  # stored as already expired: every process wants a refresh
        ),
    )
    start = repo.get(installation_id)
    assert start is not None
    reuse_before = int(control.events().get("refresh_token_reuse_detected", 0))
    control.clear_request_log()

    result = race.run(installation_id)

    token_calls = count_token_calls(control)
    reuse = int(control.events().get("refresh_token_reuse_detected", 0)) - reuse_before
    final = repo.get(installation_id)
    assert final is not None
    return RaceRecord(result, token_calls, reuse, start.version, final.version)


def count_token_calls(control: Any) -> int:
    """Calls to the token endpoint in the emulator's request log (since it was last cleared)."""
    return sum(1 for entry in control.request_log() if entry["path"] == "/oauth/token")


@contextlib.contextmanager
def local_world(log_dir: Path) -> Iterator[tuple[RaceEndpoints, EmulatorControl]]:
    """DynamoDB Local, moto's server and the Pleo emulator on free ports, with the template's
    resources; yields the endpoints and the emulator's control client."""
    _ensure_paths()
    from local.pleo_emulator.control_client import EmulatorControl
    from local.pleo_emulator.launcher import start_pleo_emulator
    from local.pleo_emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
    from local.resources import create_all
    from local.services import free_port, start_dynamodb_local, start_moto_server

    services = []
    try:
        dynamodb = start_dynamodb_local(free_port(), log_dir)
        services.append(dynamodb)
        moto = start_moto_server(free_port(), log_dir)
        services.append(moto)
        emulator = start_pleo_emulator(free_port(), log_dir)
        services.append(emulator)
        resources = create_all(dynamodb.url, moto.url, prefix="bench-refresh-race")
        control = EmulatorControl(emulator.url)
        endpoints = RaceEndpoints(
            dynamodb_url=dynamodb.url,
            kms_url=moto.url,
            table_name=resources.tables["Table"],
            kms_key_id=resources.keys["CredentialsKey"],
            auth_url=emulator.url,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
        )
        try:
            yield endpoints, control
        finally:
            control.close()
    finally:
        for service in reversed(services):
            service.stop()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(fraction * 100) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--races", type=int, default=100)
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    _ensure_paths()

    records: list[RaceRecord] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-refresh-race-") as log_dir,
        local_world(Path(log_dir)) as (endpoints, control),
    ):
        repo, cipher = build_parts(endpoints)
        budget_ends = time.monotonic() + args.max_seconds
        with RefreshRace(endpoints, args.processes) as race:
            for _ in range(args.races):
                if time.monotonic() > budget_ends:
                    break
                records.append(race_once(race, repo, cipher, control))

    if not records:
        print("bench: refresh_race.races = 0 count")
        return 1
    calls = [record.token_calls for record in records]
    durations_ms = [record.result.duration_s * 1000 for record in records]
    failures = sum(
        1
        for record in records
        if record.result.errors
        or len(record.result.distinct_tokens) != 1
        or record.final_version != record.start_version + 1
    )
    print(f"bench: refresh_race.races = {len(records)} count")
    print(f"bench: refresh_race.processes = {args.processes} count")
    print(f"bench: refresh_race.token_calls_min = {min(calls)} calls")
    print(f"bench: refresh_race.token_calls_max = {max(calls)} calls")
    print(
        f"bench: refresh_race.reuse_detections = {sum(r.reuse_detections for r in records)} count"
    )
    print(f"bench: refresh_race.failed_races = {failures} count")
    print(f"bench: refresh_race.duration_p50 = {_percentile(durations_ms, 0.50):.1f} ms")
    print(f"bench: refresh_race.duration_p95 = {_percentile(durations_ms, 0.95):.1f} ms")
    print()
    print(f"{'races':<28}{len(records):>10}")
    print(f"{'processes per race':<28}{args.processes:>10}")
    print(f"{'token calls per race':<28}{min(calls):>6} to {max(calls)}")
    print(f"{'reuse detections':<28}{sum(r.reuse_detections for r in records):>10}")
    print(f"{'failed races':<28}{failures:>10}")
    print(f"{'race duration min':<28}{min(durations_ms):>10.1f} ms")
    print(f"{'race duration p50':<28}{_percentile(durations_ms, 0.50):>10.1f} ms")
    print(f"{'race duration p95':<28}{_percentile(durations_ms, 0.95):>10.1f} ms")
    print(f"{'race duration max':<28}{max(durations_ms):>10.1f} ms")
    # More than one token call, or a race that did not end at start + 1, is a broken protocol.
    ok = failures == 0 and max(calls) == 1 and min(calls) == 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
