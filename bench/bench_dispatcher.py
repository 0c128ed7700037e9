"""The dispatcher with 10,000 installations: how long one invocation takes to enqueue them all.

Starts DynamoDB Local and moto's server (SQS) on free ports with the template's resources, writes
the installations straight into the table with batch writes (the items the repository itself
writes), plus some that must be skipped (paused, inactive, dead), then times one `dispatch` built
by the function's own composition root, and counts what arrived in the queue. Prints:

    bench: dispatcher_10000_s = X s                   (the function's timeout is 60 s)
    bench: dispatcher_messages_per_s = N msg/s
    bench: dispatcher_messages_arrived = 10000 count  (ApproximateNumberOfMessages: exact on moto)
    bench: dispatcher_unsent = 0 count
    bench: dispatcher_setup_s = X s                   (the batch writes, for scale)

moto's server runs with one change, `patch_moto_sqs`: its SendMessage otherwise scans the whole
queue for every message it takes, so filling one queue with 10,000 would take some twenty minutes
and say nothing about the dispatcher (SQS's cost per message does not grow with the queue).

Run with `.venv/bin/python -m bench.bench_dispatcher [--installations 10000] [--skipped 1000]`.
It exits non-zero only when something is broken: a message missing, one too many, or one unsent.
The stand-ins share this machine's CPU with the dispatcher, so the time is CPU-bound Python on
every side; on AWS each SendMessageBatch waits ~20 ms on the network instead, which the batches
in flight (8) overlap: about 1,000 batches / 8 x 20 ms, 2.5 s, plus ten index pages.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"

BATCH_WRITE_LIMIT = 25


def _ensure_paths() -> None:
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


def installation_items(schedulable: int, skipped: int) -> list[dict[str, Any]]:
    """The META items of `schedulable` installations that the dispatcher must send, and of
    `skipped` that it must not (paused, inactive, dead, in turn)."""
    from pleo_connector.store.installations import InstallationRecord, _item_from_record
    from pleo_connector.vocabulary import AuthMethod, InstallationStatus, LocalError

    items = []
    for number in range(schedulable + skipped):
        record = InstallationRecord(
            installation_id=f"bench-{number:06d}",
            company_id=f"bench-company-{number:06d}",
            auth_method=AuthMethod.API_KEY,
            status=InstallationStatus.ACTIVATED,
            version=1,
        )
        if number >= schedulable:
            kind = number % 3
            if kind == 0:
                record = replace(record, paused=True)
            elif kind == 1:
                record = replace(
                    record,
                    status=InstallationStatus.INACTIVE,
                    local_error=LocalError.SOURCE_FAILING,
                )
            else:
                record = replace(
                    record, status=InstallationStatus.ERROR, local_error=LocalError.AUTH_ERROR
                )
        items.append(_item_from_record(record))
    return items


def batch_write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    """Write `items` 25 to a call, a few calls at once, retrying what comes back unprocessed."""

    def write(chunk: list[dict[str, Any]]) -> None:
        pending: list[dict[str, Any]] = [{"PutRequest": {"Item": item}} for item in chunk]
        while pending:
            answer = client.batch_write_item(RequestItems={table: pending})
            pending = answer.get("UnprocessedItems", {}).get(table, [])

    chunks = [items[i : i + BATCH_WRITE_LIMIT] for i in range(0, len(items), BATCH_WRITE_LIMIT)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, chunks))


def patch_moto_sqs() -> None:
    """Make moto's SendMessage cost what it costs on SQS: constant, not the queue's length.

    moto's `send_message` reads `queue.attributes.get("ContentBasedDeduplication")` for every
    message, and `attributes` computes every attribute, counting visible, delayed and in-flight
    messages by scanning them all: 10,000 messages into one queue would take some twenty minutes.
    Here `attributes` is computed when something other than that one key is asked for; the key
    exists on FIFO queues only, so a standard queue answers None, as moto's full dict would.
    """
    from moto.sqs.models import Queue

    full: Any = vars(Queue)["attributes"].fget

    class LazyAttributes(Mapping[str, Any]):
        def __init__(self, queue: Queue) -> None:
            self._queue = queue
            self._all: dict[str, Any] | None = None

        def _computed(self) -> dict[str, Any]:
            if self._all is None:
                self._all = full(self._queue)
            return self._all

        def get(self, key: str, default: Any = None) -> Any:
            if key == "ContentBasedDeduplication" and not self._queue.fifo_queue:
                return default
            return self._computed().get(key, default)

        def __getitem__(self, key: str) -> Any:
            return self._computed()[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self._computed())

        def __len__(self) -> int:
            return len(self._computed())

    setattr(Queue, "attributes", property(LazyAttributes))  # noqa: B010 - replaces a property


def serve_moto(port: int) -> None:
    """moto's server, as `moto_server -H 127.0.0.1 -p PORT` runs it, with `patch_moto_sqs`."""
    from moto.server import main as moto_main

    patch_moto_sqs()
    moto_main(["-H", "127.0.0.1", "-p", str(port)])


def start_patched_moto(log_dir: Path) -> Any:
    """The patched moto server in its own process group, like local.services starts moto."""
    from local.services import APP_PYTHON, LOCAL_AWS_ENV, Service, free_port, wait_for_http

    port = free_port()
    log_path = log_dir / "moto.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(APP_PYTHON), "-m", "bench.bench_dispatcher", "--serve-moto", str(port)],
            cwd=ROOT,
            env={**os.environ, **LOCAL_AWS_ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/moto-api/", process=process)
    return Service("moto", url, process, log_path)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """The process environment with `env` (the function's settings and the local endpoints, which
    the shared boto3 clients read), restored afterwards."""
    from pleo_connector.aws import forget_clients

    saved = dict(os.environ)
    os.environ.update(env)
    forget_clients()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        forget_clients()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--installations", type=int, default=10_000, help="to dispatch")
    parser.add_argument("--skipped", type=int, default=1_000, help="paused, inactive, dead")
    parser.add_argument("--serve-moto", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else [])
    _ensure_paths()
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return 0

    import boto3

    from local.resources import create_all
    from local.services import aws_endpoint_env, free_port, start_dynamodb_local
    from pleo_connector.composition.roots import build_dispatcher
    from pleo_connector.config import DispatcherFunctionSettings, load_settings
    from pleo_connector.sync.dispatcher import dispatch

    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dispatcher-")))
        dynamodb = start_dynamodb_local(free_port(), logs)
        stack.callback(dynamodb.stop)
        moto = start_patched_moto(logs)
        stack.callback(moto.stop)
        resources = create_all(dynamodb.url, moto.url, prefix="bench-dispatcher")
        env = {
            **aws_endpoint_env(dynamodb.url, moto.url),
            "TABLE_NAME": resources.tables["Table"],
            "KMS_KEY_ID": resources.keys["CredentialsKey"],
            "SYNC_QUEUE_URL": resources.queue_urls["SyncQueue"],
        }
        stack.enter_context(_environment(env))
        session = boto3.session.Session()

        started = time.perf_counter()
        batch_write(
            session.client("dynamodb"),
            env["TABLE_NAME"],
            installation_items(args.installations, args.skipped),
        )
        setup_s = time.perf_counter() - started

        deps = build_dispatcher(load_settings(DispatcherFunctionSettings, env))
        started = time.perf_counter()
        done = dispatch(deps)
        elapsed = time.perf_counter() - started

        attributes = session.client("sqs").get_queue_attributes(
            QueueUrl=env["SYNC_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        arrived = int(attributes["ApproximateNumberOfMessages"])

    n = args.installations
    print(f"bench: dispatcher_{n}_s = {elapsed:.2f} s")
    print(f"bench: dispatcher_messages_per_s = {done.dispatched / elapsed:.0f} msg/s")
    print(f"bench: dispatcher_messages_arrived = {arrived} count")
    print(f"bench: dispatcher_unsent = {done.unsent} count")
    print(f"bench: dispatcher_setup_s = {setup_s:.2f} s")
    print()
    print(
        f"{n} schedulable and {args.skipped} skipped installations: {done.dispatched} sent "
        f"in {elapsed:.2f} s, {arrived} in the queue"
    )
    return 0 if done.dispatched == arrived == n and not done.unsent else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
