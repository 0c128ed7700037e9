"""First sync and no-op sync: a generated source of 10,000 entities (mixed kinds) synced into the
Pleo emulator, a real process answering every API request 200 ms late, under a rate budget that
makes the first sync last about two minutes; then the same source synced again. Prints:

    bench: first_sync.rate_of_budget = ... %          (goal >= 95)
    bench: first_sync.requests_per_entity = ... requests
    bench: first_sync.min_requests_per_entity = ... requests
    bench: first_sync.requests_to_minimum = ... ratio
    bench: first_sync.checkpoints = ... count
    bench: first_sync.duplicates = ... count          (must be 0)
    bench: first_sync.total_s = ... s
    bench: noop_sync.reads_to_minimum = ... ratio     (goal 1.00)
    bench: noop_sync.writes = ... requests            (goal 0)

and more lines (see bench/README.md). A sync is what a worker does: read Pleo (list and search
pages), plan against the source and the owned set, apply, each "invocation" under a Lambda-like
deadline; an apply cut off by it is a checkpoint, and the next invocation starts over from a fresh
read. Ownership is on DynamoDB Local (or in memory, `--ownership memory`). Every count of requests
comes from the emulator's own counters, not from the client.

Run with `.venv/bin/python -m bench.bench_first_sync [--entities N] [--seconds S]`; `python -m
bench first_sync` takes `BENCH_FIRST_SYNC_ENTITIES` and `BENCH_FIRST_SYNC_SECONDS` for a quick
check at a smaller size.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.bench_planner import GROUPS, GeneratedReader, split

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"

ENTITIES = 10_000
TARGET_S = 120.0
LATENCY_MS = 200
PAGE = 100  # the page size the Pleo-side reader asks for (`sync.pleo_state.PAGE_SIZE`)
ACCOUNT_BATCH = 1_000  # accounts per batch call (`pleo.resources.accounts.BATCH_LIMIT`)
# Pages a first sync reads from an empty company: the tag group list, then one page each of
# tags, tax codes, vendors and accounts.
EMPTY_READS = 5
# The emulator's own limit sits this far above the budget: the client's pacing, not the
# emulator, decides the rate, and a 429 would still show a budget that overspends.
EMULATOR_LIMIT_MARGIN = 1.25
INSTALLATION_ID = "bench-first-sync"

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from local.pleo_emulator.control_client import EmulatorControl
    from pleo_connector.pleo.client import PleoClient
    from pleo_connector.sync.applier import ApplyResult
    from pleo_connector.sync.ports import OwnershipStore
    from pleo_connector.vocabulary import Kind


def _ensure_paths() -> None:
    """Make `pleo_connector` and `local` importable when run as a script or with -m."""
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


# --- what a run should cost ----------------------------------------------------------------------


def minimum_requests(counts: Mapping[str, int]) -> int:
    """The fewest requests a first sync of `counts` into an empty company can make with the bulk
    endpoints: one create per tag group, tag, tax code and vendor, one batch per 1,000 accounts,
    and the reads of an empty company."""
    writes = counts["tag_groups"] + counts["tags"] + counts["tax_codes"] + counts["vendors"]
    return writes + math.ceil(counts["accounts"] / ACCOUNT_BATCH) + EMPTY_READS


def budget_per_minute(minimum: int, seconds: float) -> int:
    """The rate budget under which `minimum` requests take `seconds`."""
    return max(1, math.ceil(minimum / seconds * 60))


def read_minimum(sizes: Mapping[str, int]) -> int:
    """The physical minimum of reads of a company holding `sizes` records per kind: the tag group
    list is one unpaginated request, every other kind ⌈n / page⌉ pages (one for none)."""
    paged = ("tags", "tax_codes", "vendors", "accounts")
    return 1 + sum(max(1, math.ceil(sizes[kind] / PAGE)) for kind in paged)


def is_read(operation: str) -> bool:
    """Whether an emulator operation ("METHOD /path") only reads: a GET or a `:search`."""
    method, _, path = operation.partition(" ")
    return method == "GET" or path.endswith(":search")


def split_counters(operations: Mapping[str, int]) -> tuple[int, int]:
    """(reads, writes) among the API requests the emulator counted."""
    reads = sum(n for op, n in operations.items() if is_read(op))
    return reads, sum(operations.values()) - reads


def record_key(kind: str, row: Mapping[str, Any], group_codes: Mapping[str, str]) -> str:
    """How the sync matches a record of the emulator's data: code, or external id for vendors
    and accounts, a tag's within its group; without regard to case."""
    if kind == "tags":
        return f"{group_codes.get(str(row.get('groupId')), '?')}\x1f{str(row['code']).casefold()}"
    field_name = "externalId" if kind in ("vendors", "accounts") else "code"
    return str(row.get(field_name) or "").casefold()


def duplicates(data: Mapping[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Per kind, how many records share a key with an earlier one (a create sent twice)."""
    group_codes = {str(row["id"]): str(row["code"]).casefold() for row in data["tag_groups"]}
    found: dict[str, int] = {}
    for kind in ("tag_groups", "tags", "tax_codes", "vendors", "accounts"):
        keys = Counter(record_key(kind, row, group_codes) for row in data[kind])
        found[kind] = sum(n - 1 for n in keys.values())
    return found


def by_operation(log: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, float, float]]:
    """Per operation of the emulator's request log: requests, and the median and largest time
    the emulator took to answer (the injected latency included)."""
    durations: dict[str, list[float]] = {}
    for entry in log:
        durations.setdefault(str(entry["operation"]), []).append(float(entry["duration_ms"] or 0))
    return {
        operation: (len(times), statistics.median(times), max(times))
        for operation, times in durations.items()
    }


def sizes_of(data: Mapping[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {
        kind: len(data[kind]) for kind in ("tag_groups", "tags", "tax_codes", "vendors", "accounts")
    }


class OutcomeUnknownCount(logging.Handler):
    """Counts the client's "outcome unknown" warnings (a create cut off in flight, adopted by the
    next run) and keeps the client's per-request warnings off the benchmark's output."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "outcome unknown" in record.getMessage():
            self.count += 1
        elif record.levelno >= logging.ERROR:
            print(self.format(record), file=sys.stderr)


# --- the sync -------------------------------------------------------------------------------


class MemoryOwnership:
    """An ownership store in memory, for `--ownership memory`."""

    def __init__(self) -> None:
        self._owned: dict[str, set[tuple[Kind, str]]] = {}

    def owned(self, installation_id: str) -> set[tuple[Kind, str]]:
        return set(self._owned.get(installation_id, set()))

    def record(self, installation_id: str, entries: Iterable[tuple[Kind, str]]) -> None:
        self._owned.setdefault(installation_id, set()).update(entries)


@dataclass
class Invocation:
    """One "Lambda invocation" of a sync: its phases' times and what the apply did."""

    read_s: float = 0.0
    plan_s: float = 0.0
    apply_s: float = 0.0
    changes: int = 0
    problems: int = 0
    result: ApplyResult | None = None
    read_cut_off: bool = False

    @property
    def checkpoint(self) -> bool:
        """It stopped before the work was done: the run continues in a new message."""
        return self.read_cut_off or (self.result is not None and not self.result.complete)


@dataclass
class SyncRun:
    invocations: list[Invocation] = field(default_factory=list)
    total_s: float = 0.0

    @property
    def checkpoints(self) -> int:
        return sum(1 for invocation in self.invocations if invocation.checkpoint)

    @property
    def failed(self) -> list[Any]:
        return [p for i in self.invocations if i.result is not None for p in i.result.failed]

    def applied(self) -> Counter[tuple[Kind, Any]]:
        total: Counter[tuple[Kind, Any]] = Counter()
        for invocation in self.invocations:
            if invocation.result is not None:
                total.update(invocation.result.applied)
        return total

    def phase_s(self, phase: str) -> float:
        return sum(float(getattr(invocation, phase)) for invocation in self.invocations)


async def sync(
    pleo: PleoClient,
    ownership: OwnershipStore,
    company_id: str,
    entities: int,
    *,
    invocation_s: float,
    concurrency: int | None,
    max_invocations: int = 50,
) -> SyncRun:
    """Read, plan and apply, one invocation after another, until an apply completes (or a plan
    is empty)."""
    from pleo_connector.installation_config import SyncChoices
    from pleo_connector.pleo.errors import DeadlineExceededError
    from pleo_connector.pleo.retry import Deadline
    from pleo_connector.sync.applier import apply_plan
    from pleo_connector.sync.planner import plan_sync
    from pleo_connector.sync.pleo_state import read_pleo_entries

    choices = SyncChoices(tag_groups=[f"DIM{n}" for n in range(GROUPS)])
    extra = {} if concurrency is None else {"concurrency": concurrency}
    run = SyncRun()
    started = time.perf_counter()
    for _ in range(max_invocations):
        invocation = Invocation()
        run.invocations.append(invocation)
        deadline = Deadline.after(invocation_s)
        pleo.deadline = deadline  # as the worker sets it from Lambda's remaining time
        try:
            mark = time.perf_counter()
            try:
                entries = await read_pleo_entries(pleo, company_id, choices)
            except DeadlineExceededError:
                invocation.read_cut_off = True
                continue
            finally:
                invocation.read_s = time.perf_counter() - mark
            mark = time.perf_counter()
            owned = await asyncio.to_thread(ownership.owned, INSTALLATION_ID)
            with GeneratedReader(entities) as reader:
                plan = plan_sync(reader, entries, owned, choices)
            del entries, owned
            invocation.plan_s = time.perf_counter() - mark
            invocation.changes, invocation.problems = len(plan.changes), len(plan.problems)
            if not plan.changes:
                break
            mark = time.perf_counter()
            invocation.result = await apply_plan(
                plan, pleo, company_id, ownership, INSTALLATION_ID, deadline=deadline, **extra
            )
            invocation.apply_s = time.perf_counter() - mark
            if invocation.result.complete:
                break
        finally:
            pleo.deadline = None
    run.total_s = time.perf_counter() - started
    return run


# --- the world ----------------------------------------------------------------------------------


@dataclass
class World:
    control: EmulatorControl
    api_url: str
    api_key: str
    company_id: str
    ownership: OwnershipStore


@dataclass
class Services:
    started: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        for service in reversed(self.started):
            service.stop()


def start_world(log_dir: Path, ownership: str, services: Services) -> World:
    """The emulator (and DynamoDB Local with the app's table, for DynamoDB ownership)."""
    _ensure_paths()
    from local.pleo_emulator.control_client import EmulatorControl
    from local.pleo_emulator.launcher import start_pleo_emulator
    from local.pleo_emulator.state import DEFAULT_COMPANY_ID
    from local.services import free_port

    emulator = start_pleo_emulator(free_port(), log_dir)
    services.started.append(emulator)
    control = EmulatorControl(emulator.url, timeout=120.0)  # `data` of 10,000 records takes a while
    store: OwnershipStore = MemoryOwnership()
    if ownership == "dynamodb":
        store = _dynamodb_ownership(log_dir, services)
    return World(
        control=control,
        api_url=emulator.url,
        api_key=control.issue_api_key(DEFAULT_COMPANY_ID),
        company_id=DEFAULT_COMPANY_ID,
        ownership=store,
    )


def _dynamodb_ownership(log_dir: Path, services: Services) -> OwnershipStore:
    import boto3

    from local.resources import create_table, load_template
    from local.services import LOCAL_REGION, free_port, start_dynamodb_local
    from pleo_connector.store.dynamodb import DynamoTable
    from pleo_connector.store.ownership import OwnershipRepository

    dynamodb = start_dynamodb_local(free_port(), log_dir)
    services.started.append(dynamodb)
    client = boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - only DynamoDB Local accepts it
        region_name=LOCAL_REGION,
    ).client("dynamodb", endpoint_url=dynamodb.url)
    name = f"bench-first-sync-{uuid.uuid4().hex[:8]}"
    create_table(client, name, load_template()["Resources"]["Table"]["Properties"])
    return OwnershipRepository(DynamoTable(name, client=client))


def make_client(world: World, budget_per_min: int) -> PleoClient:
    from pleo_connector.pleo.auth import ApiKeyAuth
    from pleo_connector.pleo.client import PleoClient
    from pleo_connector.pleo.ratelimit import InProcessTokenBucket

    return PleoClient(
        world.api_url, ApiKeyAuth(world.api_key), budget=InProcessTokenBucket(budget_per_min)
    )


# --- the benchmark ------------------------------------------------------------------------------


@dataclass
class Settings:
    entities: int
    seconds: float
    invocation_s: float
    latency_ms: int
    ownership: str
    concurrency: int | None


def _settings(argv: list[str]) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--entities", type=int, default=int(os.environ.get("BENCH_FIRST_SYNC_ENTITIES", ENTITIES))
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("BENCH_FIRST_SYNC_SECONDS", TARGET_S)),
        help="how long the minimum of requests takes under the budget (default 120)",
    )
    parser.add_argument(
        "--invocation-s", type=float, help="each invocation's deadline (default: --seconds / 2)"
    )
    parser.add_argument("--latency-ms", type=int, default=LATENCY_MS)
    parser.add_argument("--ownership", choices=("dynamodb", "memory"), default="dynamodb")
    parser.add_argument("--concurrency", type=int, help="default: the applier's own")
    args = parser.parse_args(argv)
    return Settings(
        entities=args.entities,
        seconds=args.seconds,
        invocation_s=args.invocation_s or args.seconds / 2,
        latency_ms=args.latency_ms,
        ownership=args.ownership,
        concurrency=args.concurrency,
    )


def _cpu_s() -> float:
    """CPU time of this process so far (every thread: the client, the planner, the store)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _lines(prefix: str, figures: Iterable[tuple[str, str, str]]) -> Iterator[str]:
    for name, value, unit in figures:
        yield f"bench: {prefix}.{name} = {value} {unit}"


async def _measure(settings: Settings, world: World) -> int:
    counts = split(settings.entities)
    minimum = minimum_requests(counts)
    budget = budget_per_minute(minimum, settings.seconds)
    control = world.control
    control.set_rate_limit(math.ceil(budget * EMULATOR_LIMIT_MARGIN))
    control.inject_fault("latency", latency_ms=settings.latency_ms)
    control.clear_request_log()
    unknown = OutcomeUnknownCount()
    client_log = logging.getLogger("pleo_connector.pleo")
    client_log.addHandler(unknown)
    client_log.propagate = False

    async with make_client(world, budget) as pleo:
        cpu = _cpu_s()
        first = await sync(
            pleo,
            world.ownership,
            world.company_id,
            settings.entities,
            invocation_s=settings.invocation_s,
            concurrency=settings.concurrency,
        )
        cpu = _cpu_s() - cpu
        first_reads, first_writes = split_counters(control.counters())
        first_limited = control.events().get("rate_limited", 0)
        first_unknown, unknown.count = unknown.count, 0
        served = by_operation(control.request_log())
        data = control.data(world.company_id)
        sizes = sizes_of(data)
        doubles = duplicates(data)
        del data
        control.clear_request_log()
        noop = await sync(
            pleo,
            world.ownership,
            world.company_id,
            settings.entities,
            invocation_s=settings.invocation_s,
            concurrency=settings.concurrency,
        )
        noop_reads, noop_writes = split_counters(control.counters())

    requests = first_reads + first_writes
    rate = requests / first.total_s * 60 / budget * 100
    apply_s = first.phase_s("apply_s")
    apply_requests = sum(i.result.requests for i in first.invocations if i.result is not None)
    apply_rate = apply_requests / apply_s * 60 / budget * 100 if apply_s else 0.0
    reads_minimum = read_minimum(sizes)
    missing = {kind: counts[kind] - sizes[kind] for kind in counts if sizes[kind] != counts[kind]}
    lines = [
        *_lines(
            "first_sync",
            [
                ("rate_of_budget", f"{rate:.1f}", "%"),
                ("apply_rate_of_budget", f"{apply_rate:.1f}", "%"),
                ("requests_per_entity", f"{requests / settings.entities:.4f}", "requests"),
                ("min_requests_per_entity", f"{minimum / settings.entities:.4f}", "requests"),
                ("requests_to_minimum", f"{requests / minimum:.3f}", "ratio"),
                ("requests", str(requests), "requests"),
                ("min_requests", str(minimum), "requests"),
                ("writes", str(first_writes), "requests"),
                ("reads", str(first_reads), "requests"),
                ("rate_limited", str(first_limited), "responses"),
                ("checkpoints", str(first.checkpoints), "count"),
                ("outcome_unknown", str(first_unknown), "requests"),
                ("invocations", str(len(first.invocations)), "count"),
                ("duplicates", str(sum(doubles.values())), "count"),
                ("missing", str(sum(missing.values())), "count"),
                ("failed", str(len(first.failed)), "count"),
                ("budget", str(budget), "requests/min"),
                ("cpu_ms_per_request", f"{cpu / requests * 1000:.2f}", "ms"),
                ("total_s", f"{first.total_s:.1f}", "s"),
                ("read_s", f"{first.phase_s('read_s'):.1f}", "s"),
                ("plan_s", f"{first.phase_s('plan_s'):.1f}", "s"),
                ("apply_s", f"{apply_s:.1f}", "s"),
            ],
        ),
        *_lines(
            "noop_sync",
            [
                ("reads_to_minimum", f"{noop_reads / reads_minimum:.2f}", "ratio"),
                ("reads", str(noop_reads), "requests"),
                ("min_reads", str(reads_minimum), "requests"),
                ("writes", str(noop_writes), "requests"),
                ("plan_changes", str(sum(i.changes for i in noop.invocations)), "count"),
                ("total_s", f"{noop.total_s:.1f}", "s"),
            ],
        ),
    ]
    for line in lines:
        print(line)
    print()
    _table(settings, counts, sizes, doubles, first, budget)
    print(f"{'operation (first sync)':<42}{'requests':>9}{'p50 ms':>9}{'max ms':>9}")
    for operation, (n, p50, most) in sorted(served.items()):
        print(f"{operation:<42}{n:>9}{p50:>9.0f}{most:>9.0f}")
    for problem in first.failed[:10]:
        print(f"failed: {problem.kind} {problem.reference}: {problem.message}")
    # Broken, not slow: a record created twice or lost, a refused write, a no-op that writes.
    broken = sum(doubles.values()) or missing or first.failed or noop_writes
    return 1 if broken else 0


def _table(
    settings: Settings,
    counts: Mapping[str, int],
    sizes: Mapping[str, int],
    doubles: Mapping[str, int],
    first: SyncRun,
    budget: int,
) -> None:
    print(
        f"{settings.entities} entities, {settings.latency_ms} ms latency, budget {budget}/min, "
        f"{settings.invocation_s:.0f} s invocations, ownership {settings.ownership}"
    )
    print(f"{'kind':<12}{'source':>8}{'in Pleo':>9}{'doubles':>9}")
    for kind in counts:
        print(f"{kind:<12}{counts[kind]:>8}{sizes[kind]:>9}{doubles[kind]:>9}")
    header = f"{'invocation':<12}{'read s':>8}{'plan s':>8}{'apply s':>9}{'changes':>9}"
    print(f"{header}{'requests':>10}  done")
    for n, invocation in enumerate(first.invocations, 1):
        result = invocation.result
        sent = result.requests if result is not None else 0
        done = "cut off" if invocation.checkpoint else "yes"
        print(
            f"{n:<12}{invocation.read_s:>8.1f}{invocation.plan_s:>8.1f}{invocation.apply_s:>9.1f}"
            f"{invocation.changes:>9}{sent:>10}  {done}"
        )


def main(argv: list[str] | None = None) -> int:
    settings = _settings(list(argv or []))
    _ensure_paths()
    services = Services()
    with tempfile.TemporaryDirectory(prefix="bench-first-sync-") as log_dir:
        try:
            world = start_world(Path(log_dir), settings.ownership, services)
            return asyncio.run(_measure(settings, world))
        finally:
            services.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
