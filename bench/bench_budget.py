"""The shared rate budget: DynamoDB calls per Pleo request, and the rate the workers achieve.

Several workers (threads, each with its own event loop, its own `DynamoDBTokenBucket` and its
own DynamoDB client, as separate Lambda instances would have) draw from one bucket item on
DynamoDB Local, in real time, at the production budget. Each worker runs a few request loops:
acquire a token, then "send" (a sleep of the request's latency), as the applier does. Every
DynamoDB call of every client is counted. Prints:

    bench: budget_dynamodb_calls_per_request = X ratio      (goal: <= 0.05)
    bench: budget_dynamodb_calls = N calls
    bench: budget_requests = N requests
    bench: budget_achieved_rate = N req/min
    bench: budget_achieved_pct = N %                       (of the budget, whole run)
    bench: budget_steady_pct = N %                         (while every worker wanted more)
    bench: budget_max_in_any_60s = N requests
    bench: budget_bound_60s = N requests                    (the documented bound)
    bench: budget_fairness_min_over_max = X ratio           (1.0: every worker got as much)

Run with `.venv/bin/python -m bench.bench_budget [--workers 4] [--requests 200] [--rate 500]`.
At 500/min, 4 x 200 requests take about a minute and a half. It exits non-zero only when
something is broken: requests missing, or more in some minute than the bound allows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
import uuid
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"


def _ensure_paths() -> None:
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


@dataclass
class Calls:
    """DynamoDB API calls of one client (a botocore event hook: every call, whatever it is)."""

    count: int = 0

    def __call__(self, **_: Any) -> None:
        self.count += 1


@dataclass
class Worker:
    index: int
    calls: Calls = field(default_factory=Calls)
    sent: list[float] = field(default_factory=list)  # when each request went out (epoch s)
    error: BaseException | None = None


def most_in_any(times: list[float], window_s: float) -> int:
    """The most of `times` that fall in any window of `window_s` seconds."""
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, start + window_s) - index for index, start in enumerate(ordered)),
        default=0,
    )


def steady_until(workers: list[Worker]) -> float:
    """When the first worker sent its last request: until then, every worker wanted more."""
    return min(max(worker.sent) for worker in workers)


def fairness(workers: list[Worker]) -> float:
    """min/max of what each worker sent while all of them still wanted more."""
    until = steady_until(workers)
    shares = [sum(1 for moment in worker.sent if moment <= until) for worker in workers]
    return min(shares) / max(shares) if max(shares) else 0.0


def per_minute(times: list[float], until: float | None = None) -> float:
    """The rate of `times` (up to `until`), in requests a minute, from the first to the last."""
    kept = sorted(moment for moment in times if until is None or moment <= until)
    span = kept[-1] - kept[0] if len(kept) > 1 else 0.0
    return (len(kept) - 1) / span * 60 if span else 0.0


def _dynamodb_client(url: str, calls: Calls | None = None) -> Any:
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - only DynamoDB Local accepts it
    )
    if calls is not None:
        client.meta.events.register("before-call.dynamodb", calls)
    return client


def _run_worker(worker: Worker, args: argparse.Namespace, start: threading.Barrier) -> None:
    from pleo_connector.pleo.ratelimit import DynamoDBTokenBucket

    budget = DynamoDBTokenBucket(
        args.table,
        args.bucket,
        rate_per_min=args.rate,
        client=_dynamodb_client(args.dynamodb_url, worker.calls),
    )

    async def loop(left: list[int]) -> None:
        while left[0] > 0:
            left[0] -= 1
            await budget.acquire()
            worker.sent.append(time.time())
            await asyncio.sleep(args.latency_ms / 1000)

    async def work() -> None:
        left = [args.requests]
        await asyncio.gather(*(loop(left) for _ in range(args.concurrency)))

    start.wait()
    try:
        asyncio.run(work())
    except BaseException as error:  # reported by the main thread
        worker.error = error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200, help="per worker")
    parser.add_argument("--rate", type=float, default=500.0, help="the budget, requests/min")
    parser.add_argument("--concurrency", type=int, default=4, help="request loops per worker")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="of each request")
    args = parser.parse_args(argv if argv is not None else [])
    _ensure_paths()

    from local.resources import create_table, load_template, resources_of_type
    from local.services import free_port, start_dynamodb_local
    from pleo_connector.pleo.ratelimit import DynamoDBTokenBucket

    with tempfile.TemporaryDirectory(prefix="bench-budget-") as logs:
        dynamodb = start_dynamodb_local(free_port(), Path(logs))
        try:
            args.dynamodb_url = dynamodb.url
            args.table = "bench-budget-Table"
            args.bucket = f"bench-{uuid.uuid4().hex[:8]}"
            properties = resources_of_type(load_template(), "AWS::DynamoDB::Table")["Table"]
            create_table(_dynamodb_client(dynamodb.url), args.table, properties["Properties"])

            workers = [Worker(index) for index in range(args.workers)]
            start = threading.Barrier(args.workers)
            threads = [
                threading.Thread(target=_run_worker, args=(worker, args, start), daemon=True)
                for worker in workers
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            dynamodb.stop()

    broken = [worker for worker in workers if worker.error is not None]
    for worker in broken:
        print(f"worker {worker.index} failed: {worker.error!r}", file=sys.stderr)
    times = [moment for worker in workers for moment in worker.sent]
    requests = len(times)
    calls = sum(worker.calls.count for worker in workers)
    span = max(times) - min(times) if requests > 1 else 0.0
    achieved = per_minute(times)
    reference = DynamoDBTokenBucket(args.table, rate_per_min=args.rate)
    bound = reference.max_requests_in(60)
    most = most_in_any(times, 60)

    print(f"bench: budget_dynamodb_calls_per_request = {calls / max(requests, 1):.4f} ratio")
    print(f"bench: budget_dynamodb_calls = {calls} calls")
    print(f"bench: budget_requests = {requests} requests")
    print(f"bench: budget_block_size = {reference.block_size(args.rate)} tokens")
    print(f"bench: budget_achieved_rate = {achieved:.1f} req/min")
    print(f"bench: budget_achieved_pct = {achieved / args.rate * 100:.1f} %")
    if not broken:
        steady = per_minute(times, steady_until(workers))
        print(f"bench: budget_steady_pct = {steady / args.rate * 100:.1f} %")
    print(f"bench: budget_max_in_any_60s = {most} requests")
    print(f"bench: budget_bound_60s = {bound:.1f} requests")
    if not broken:
        print(f"bench: budget_fairness_min_over_max = {fairness(workers):.2f} ratio")
    print()
    print(
        f"{args.workers} workers x {args.requests} requests at {args.rate:.0f}/min "
        f"({args.concurrency} loops each, {args.latency_ms:.0f} ms a request): "
        f"{calls} DynamoDB calls for {requests} requests over {span:.1f} s"
    )
    if broken or requests != args.workers * args.requests or most > bound:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
