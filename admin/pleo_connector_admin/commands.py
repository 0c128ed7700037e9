"""The commands. Each is one function registered with `@command`: it gets the target's `Admin`,
its parsed arguments and the console, and returns a `Report` (JSON-able data, and the same as
text for people). Adding a command is adding one such function.

Every action goes through the layer's own stores and services, as the functions do it: "sync
now" is the settings page's `request_sync`, "disconnect" the disconnect function's service,
"pause" the store's `set_paused` that the dispatcher and the worker honour.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleo_connector.vocabulary import InstallationStatus
from pleo_connector_admin.errors import AdminError, RefusedError, UnknownInstallationError
from pleo_connector_admin.redact import Redactor
from pleo_connector_admin.render import counted, fields, table, when
from pleo_connector_admin.targets import SCHEDULE_DLQ_OUTPUT, SYNC_DLQ_OUTPUT

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping

    from pleo_connector.store.installations import InstallationRecord
    from pleo_connector.store.sync_runs import SyncRun
    from pleo_connector_admin.render import Console
    from pleo_connector_admin.wiring import Admin

DEFAULT_PAGE_SIZE = 500
LAST_RUN_READERS = 8
DEFAULT_HISTORY = 10
SQS_BATCH = 10
REDRIVE_VISIBILITY_S = 60

FORCE_WARNING = (
    "a sync is running: disconnecting now stops it part-way. What it already wrote to Pleo "
    "stays there, the rest of its plan is never applied, and the app's record of which Pleo "
    "records it created is deleted with the installation, so a later reconnect cannot archive "
    "or update them as its own. Its run record may be lost too."
)
SCAN_NOTICE = (
    "the table's ByStatus index cannot be read (DynamoDB is still filling it after it was "
    "added, or the table lacks it): listing by a scan of the whole table instead, which reads "
    "every item of every installation"
)


@dataclass(frozen=True, slots=True)
class Report:
    """A command's result: `data` for `--json`, `text` for people."""

    data: Any
    text: str


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Admin, argparse.Namespace, Console], Report]


COMMANDS: dict[str, Command] = {}


def installation_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("installation_id", help="the installation's id (see `list`)")


def command(
    name: str,
    help: str,
    arguments: Callable[[argparse.ArgumentParser], None] = installation_argument,
) -> Callable[
    [Callable[[Admin, argparse.Namespace, Console], Report]],
    Callable[[Admin, argparse.Namespace, Console], Report],
]:
    """Register a command under `name`, with its one-line help and its arguments."""

    def register(
        run: Callable[[Admin, argparse.Namespace, Console], Report],
    ) -> Callable[[Admin, argparse.Namespace, Console], Report]:
        COMMANDS[name] = Command(name, help, arguments, run)
        return run

    return register


# --- shared views --------------------------------------------------------------------------------


def require(admin: Admin, installation_id: str) -> InstallationRecord:
    record = admin.installations.get(installation_id)
    if record is None:
        raise UnknownInstallationError(f"no installation {installation_id!r} in {target(admin)}")
    return record


def target(admin: Admin) -> str:
    return admin.target.description


def installation_summary(record: InstallationRecord) -> dict[str, Any]:
    """What the tool shows of an installation: never its settings' values, never a secret."""
    connection = record.config.get("connection")
    connection_view: dict[str, Any] | None = None
    if isinstance(connection, dict):
        connection_view = {
            "adapter": connection.get("adapter"),
            "fields": sorted(dict(connection.get("values", {}))),
            "secret_fields": sorted(dict(connection.get("secrets", {}))),
        }
    return {
        "installation_id": record.installation_id,
        "company_id": record.company_id,
        "status": record.status.value,
        "auth_method": record.auth_method.value,
        "paused": record.paused,
        "schedulable": record.schedulable,
        "error_code": None if record.error_code is None else record.error_code.value,
        "local_error": None if record.local_error is None else record.local_error.value,
        "failure_count": record.failure_count,
        "failure_reason": record.failure_reason,
        "sync_requested_at": record.sync_requested_at,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "version": record.version,
        "connection": connection_view,
        "sync_choices": record.sync_choices,
    }


def run_summary(run: SyncRun) -> dict[str, Any]:
    """One run: what it did, counted, and what went wrong, in the words the settings page uses."""
    return {
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_s": round(run.duration_s, 3),
        "reason": run.reason.value,
        "outcome": run.outcome.value,
        "applied": {
            f"{kind.value}/{action.value}": count
            for (kind, action), count in sorted(run.applied.items())
        },
        "failed": {kind.value: count for kind, count in sorted(run.failed.items())},
        "requests": run.requests,
        "rate_limited": run.rate_limited,
        "problems_total": run.problems_total,
        "problems": [
            {"kind": problem.kind.value, "reference": problem.reference, "message": problem.message}
            for problem in run.problems
        ],
        "message": run.message,
    }


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "-"


# --- list ----------------------------------------------------------------------------------------


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status",
        action="append",
        default=[],
        choices=[status.value for status in InstallationStatus],
        help="only installations with this status (repeat for several)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=DEFAULT_PAGE_SIZE,
        help=(
            "installations read from the status index per request, and so per page of the "
            f"listing (default {DEFAULT_PAGE_SIZE})"
        ),
    )


@command("list", "installations with their status, auth method and last run", _list_arguments)
def list_installations(admin: Admin, args: argparse.Namespace, console: Console) -> Report:
    statuses = [InstallationStatus(value) for value in args.status]
    rows: list[dict[str, Any]] = []
    with ThreadPoolExecutor(LAST_RUN_READERS, thread_name_prefix="last-run") as readers:
        pages = admin.installations.iter_pages(
            statuses,
            page_size=max(args.page_size, 1),
            on_scan=lambda: console.warn(SCAN_NOTICE),
        )
        for number, page in enumerate(pages, start=1):
            last_runs = readers.map(
                lambda record: admin.runs.last_run(record.installation_id), page
            )
            for record, last in zip(page, last_runs, strict=True):
                rows.append(
                    {
                        "installation_id": record.installation_id,
                        "company_id": record.company_id,
                        "status": record.status.value,
                        "auth_method": record.auth_method.value,
                        "paused": record.paused,
                        "local_error": None
                        if record.local_error is None
                        else record.local_error.value,
                        "last_run_at": None if last is None else last.started_at,
                        "last_outcome": None if last is None else last.outcome.value,
                        "created_at": record.created_at,
                    }
                )
            console.progress(f"listing: {counted(number, 'page')} read, {len(rows)} found")
    console.done()
    rows.sort(
        key=lambda row: (row["status"], row["created_at"] or datetime.min.replace(tzinfo=UTC))
    )
    text = table(
        ["INSTALLATION", "COMPANY", "STATUS", "AUTH", "PAUSED", "LAST RUN", "OUTCOME"],
        [
            [
                row["installation_id"],
                row["company_id"],
                row["status"] + (f" ({row['local_error']})" if row["local_error"] else ""),
                row["auth_method"],
                row["paused"],
                when(row["last_run_at"]),
                row["last_outcome"],
            ]
            for row in rows
        ],
    )
    return Report(rows, f"{text}\n{counted(len(rows), 'installation')} in {target(admin)}")


# --- show ----------------------------------------------------------------------------------------


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    installation_argument(parser)
    parser.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_HISTORY,
        help=f"how many of the newest runs to show (default {DEFAULT_HISTORY})",
    )


def installation_view(admin: Admin, record: InstallationRecord, runs: int) -> dict[str, Any]:
    from pleo_connector.connect.settings import SYNC_NOW_WINDOW_S

    credential = admin.credentials.get(record.installation_id)
    requested = record.sync_requested_at
    return {
        "installation": installation_summary(record),
        "sync": {
            "running": admin.runs.lease_held(record.installation_id),
            "queued": requested is not None
            and datetime.now(UTC).timestamp() - requested.timestamp() < SYNC_NOW_WINDOW_S,
        },
        "credential": None
        if credential is None
        else {
            "kind": credential.kind.value,
            "version": credential.version,
            "access_token_expires_at": _moment(credential.expires_at),
            "refreshed_at": _moment(credential.refreshed_at),
            "grant_revoked_at": _moment(credential.grant_revoked_at),
        },
        "runs": [
            run_summary(run)
            for run in admin.runs.recent_runs(record.installation_id, limit=max(runs, 1))
        ],
    }


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@command("show", "one installation and its run history (never a credential)", _show_arguments)
def show(admin: Admin, args: argparse.Namespace, console: Console) -> Report:
    view = installation_view(admin, require(admin, args.installation_id), args.runs)
    summary = view["installation"]
    credential = view["credential"] or {}
    connection = summary["connection"] or {}
    lines = [
        fields(
            [
                ("installation", summary["installation_id"]),
                ("company", summary["company_id"]),
                ("status", summary["status"]),
                ("auth method", summary["auth_method"]),
                ("paused", summary["paused"]),
                ("on the schedule", summary["schedulable"]),
                ("error code", summary["error_code"]),
                ("local error", summary["local_error"]),
                ("failures in a row", summary["failure_count"]),
                ("failure reason", summary["failure_reason"]),
                ("sync running", view["sync"]["running"]),
                ("sync queued", view["sync"]["queued"]),
                ("adapter", connection.get("adapter")),
                ("settings fields", ", ".join(connection.get("fields", [])) or None),
                ("secret fields", ", ".join(connection.get("secret_fields", [])) or None),
                ("credential", credential.get("kind")),
                ("token expires", when(credential.get("access_token_expires_at"))),
                ("created", when(summary["created_at"])),
                ("updated", when(summary["updated_at"])),
            ]
        ),
        "",
    ]
    runs = view["runs"]
    if not runs:
        lines.append("no runs recorded (run records expire after 30 days)")
    else:
        lines.append(
            table(
                ["STARTED", "REASON", "OUTCOME", "SECONDS", "REQUESTS", "429s", "WRITES", "FAILED"],
                [
                    [
                        when(run["started_at"]),
                        run["reason"],
                        run["outcome"],
                        f"{run['duration_s']:.1f}",
                        run["requests"],
                        run["rate_limited"],
                        _counts(run["applied"]),
                        _counts(run["failed"]),
                    ]
                    for run in runs
                ],
            )
        )
        for run in runs:
            for problem in run["problems"]:
                lines.append(
                    f"  {when(run['started_at'])} {problem['kind']} {problem['reference']}: "
                    f"{problem['message']}"
                )
            if run["problems_total"] > len(run["problems"]):
                lines.append(f"  ... and {run['problems_total'] - len(run['problems'])} more")
            if run["message"]:
                lines.append(f"  {when(run['started_at'])} {run['message']}")
    return Report(view, "\n".join(lines))


# --- sync now, pause, resume ---------------------------------------------------------------------


@command("sync-now", "queue a sync now, as the settings page's button does")
def sync_now(admin: Admin, args: argparse.Namespace, console: Console) -> Report:
    from pleo_connector.connect.settings import request_sync

    require(admin, args.installation_id)
    request_sync(admin.settings, args.installation_id)
    return Report(
        {"installation_id": args.installation_id, "queued": True},
        f"Queued a sync of {args.installation_id}. `show {args.installation_id}` has its run "
        "when it ends.",
    )


DRY_RUN_WAIT_S = 120.0
DRY_RUN_POLL_S = 1.0


def _dry_run_arguments(parser: argparse.ArgumentParser) -> None:
    installation_argument(parser)
    parser.add_argument(
        "--wait",
        type=float,
        default=DRY_RUN_WAIT_S,
        metavar="SECONDS",
        help=f"how long to wait for the plan (default {DRY_RUN_WAIT_S:.0f})",
    )


@command(
    "dry-run",
    "plan the next sync with reads only, as the settings page does, and print it",
    _dry_run_arguments,
)
def dry_run(admin: Admin, args: argparse.Namespace, console: Console) -> Report:
    """The worker plans it (only the worker has the accounting system's reader); this waits for
    the plan and prints it in the settings page's words."""
    import time

    from pleo_connector.connect.settings import preview_of, request_preview
    from pleo_connector.vocabulary import PreviewState
    from pleo_connector.web.pages import describe_plan

    require(admin, args.installation_id)
    services = admin.settings
    asked = request_preview(services, args.installation_id)
    started = time.monotonic()
    while True:
        state, preview = preview_of(services, args.installation_id)
        waited = time.monotonic() - started
        if preview is None or preview.preview_id != asked.preview_id:
            raise AdminError("a newer dry run replaced this one; run the command again")
        if not state.unfinished or waited > args.wait:
            break
        console.progress(f"dry run: {state.value}, {waited:.0f} s")
        time.sleep(DRY_RUN_POLL_S)
    console.done()
    plan = describe_plan(state, preview)
    data = {
        "installation_id": args.installation_id,
        "state": state.value,
        "message": plan.message,
        "counts": list(plan.counts),
        "records": {group.title: list(group.records) for group in plan.groups},
        "refused": list(plan.refused),
        "refused_more": plan.more_refused,
    }
    if state.unfinished:
        raise AdminError(
            f"the dry run is still {state.value} after {args.wait:.0f} s; its result shows on "
            "the settings page when it is ready"
        )
    if state is not PreviewState.READY:
        return Report(data, f"The dry run did not plan: {plan.message or state.value}.")
    lines = [f"Dry run of {args.installation_id}, with reads only (nothing was changed):"]
    lines += [f"  {line}" for line in plan.counts] or ["  Nothing would change."]
    for group in plan.groups:
        more = f", and {group.more} more" if group.more else ""
        lines.append(f"  {group.title}: {', '.join(group.records)}{more}")
    lines += [f"  refused: {line}" for line in plan.refused]
    if plan.more_refused:
        lines.append(f"  and {plan.more_refused} more refused")
    return Report(data, "\n".join(lines))


def _pause_report(record: InstallationRecord) -> Report:
    data = installation_summary(record)
    if record.paused:
        text = (
            f"Paused {record.installation_id}: the dispatcher no longer queues it, the worker "
            "skips what is queued, and its settings page says syncing is paused."
        )
    elif record.schedulable:
        text = f"Resumed {record.installation_id}: it is back on the schedule."
    else:
        text = (
            f"Resumed {record.installation_id}, but its state ({record.status.value}"
            + (f", {record.local_error.value}" if record.local_error else "")
            + ") keeps it off the schedule until that is fixed."
        )
    return Report(data, text)


@command("pause", "take an installation off the schedule until it is resumed")
def pause(admin: Admin, args: argparse.Namespace, console: Console) -> Report:
    require(admin, args.installation_id)
    return _pause_report(admin.installations.set_paused(args.installation_id, True))


@command("resume", "put a paused installation back on the schedule")
def resume(admin: Admin, args: argparse.Namespace, console: Console) -> Report:
    require(admin, args.installation_id)
    return _pause_report(admin.installations.set_paused(args.installation_id, False))


# --- disconnect ----------------------------------------------------------------------------------


def _disconnect_arguments(parser: argparse.ArgumentParser) -> None:
    installation_argument(parser)
    parser.add_argument(
        "--force",
        action="store_true",
        help="disconnect even while a sync runs (it says what may be lost)",
    )


@command(
    "disconnect",
    "delete the installation in Pleo and here, as the settings page does",
    _disconnect_arguments,
)
def disconnect(admin: Admin, args: argparse.Namespace, console: Console) -> Report:
    from pleo_connector.aio import run
    from pleo_connector.connect.disconnect import disconnect as disconnect_installation
    from pleo_connector.connect.disconnect import sync_running

    record = require(admin, args.installation_id)
    deps = admin.disconnect
    running = sync_running(deps, record)
    if running and not args.force:
        raise RefusedError(
            "a sync is running (or Pleo shows PENDING_INTEGRATION): disconnect when it has "
            f"finished, or pass --force ({FORCE_WARNING.split(': ', 1)[1]})"
        )
    if running:
        console.warn(FORCE_WARNING)
    run(disconnect_installation(deps, args.installation_id, force=args.force))
    return Report(
        {"installation_id": args.installation_id, "disconnected": True, "forced": running},
        f"Disconnected {args.installation_id}: deleted in Pleo (its tokens are revoked) and "
        "every item of it here.",
    )


# --- redrive -------------------------------------------------------------------------------------


def _redrive_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--method",
        choices=["auto", "move-task", "copy"],
        default="auto",
        help="move-task: SQS's StartMessageMoveTask; copy: receive, send, delete in batches; "
        "auto (default): the move task on a stack (copy if SQS refuses the action), copy in the "
        "local world (moto has no move task)",
    )
    parser.add_argument(
        "--max", type=int, default=0, help="copy at most this many messages (default: all)"
    )


def _depth(admin: Admin, queue_url: str) -> int:
    attributes = admin.sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


@command(
    "redrive",
    "send the sync dead-letter queue's messages back to the sync queue, after a fix",
    _redrive_arguments,
)
def redrive(admin: Admin, args: argparse.Namespace, console: Console) -> Report:
    from botocore.exceptions import ClientError

    dlq_url = admin.target.output(SYNC_DLQ_OUTPUT)
    queue_url = admin.target.output("SyncQueueUrl")
    waiting = _depth(admin, dlq_url)
    schedule_waiting = _depth(admin, admin.target.output(SCHEDULE_DLQ_OUTPUT))
    data: dict[str, Any] = {
        "dead_letter_messages": waiting,
        "schedule_dead_letter_messages": schedule_waiting,
    }
    lines = []
    if schedule_waiting:
        lines.append(
            f"The schedule's dead-letter queue holds {schedule_waiting} failed dispatcher "
            "deliveries: they are not redriven (the next scheduled run does their work)."
        )
    method = args.method
    if method == "auto" and admin.target.local:
        # moto (the local SQS) answers StartMessageMoveTask with a 500: it does not implement it.
        method = "copy"
    if method in ("auto", "move-task"):
        try:
            task = _start_move_task(admin, dlq_url)
        except ClientError as error:
            if method == "move-task" or not _unsupported(error):
                raise
            console.warn(
                "this SQS does not offer StartMessageMoveTask "
                f"({error.response.get('Error', {}).get('Code')}): copying instead"
            )
            method = "copy"
        else:
            data.update(method="move-task", task_handle=task, moved=None)
            lines.append(
                f"Started a message move task for {waiting} messages back to the sync queue. "
                "SQS moves them by itself; `aws sqs list-message-move-tasks --source-arn "
                "<the dead-letter queue's ARN>` follows it."
            )
            return Report(data, "\n".join(lines))
    moved, refused = _copy_back(admin, dlq_url, queue_url, args.max or None, console)
    data.update(method="copy", moved=moved, refused=refused)
    lines.append(
        f"Moved {moved} of {waiting} messages from the dead-letter queue to the sync queue"
        + (f"; {refused} refused by SQS stay in the dead-letter queue" if refused else "")
        + "."
    )
    return Report(data, "\n".join(lines))


def _start_move_task(admin: Admin, dlq_url: str) -> str:
    arn = admin.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    # No destination: SQS sends each message back to the queue it came from.
    return str(admin.sqs.start_message_move_task(SourceArn=arn)["TaskHandle"])


def _unsupported(error: Any) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return code in {"InvalidAction", "UnsupportedOperation", "NotImplemented"} or (
        status in (400, 404, 500, 501) and "not" in code.lower() and "implement" in code.lower()
    )


def _copy_back(
    admin: Admin, dlq_url: str, queue_url: str, limit: int | None, console: Console
) -> tuple[int, int]:
    """Receive from the dead-letter queue, send to the sync queue, delete what was sent; in
    batches of ten. A message sent but not yet deleted when this stops comes back to the
    dead-letter queue after its visibility timeout and may be sent twice: a sync message is
    safe to repeat (the lease and the plan make a second run a no-op)."""
    moved = refused = 0
    seen: set[str] = set()
    while limit is None or moved < limit:
        wanted = SQS_BATCH if limit is None else min(SQS_BATCH, limit - moved)
        messages = admin.sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=1,
            VisibilityTimeout=REDRIVE_VISIBILITY_S,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [message for message in messages if message["MessageId"] not in seen]
        if not fresh:
            break
        seen.update(message["MessageId"] for message in fresh)
        entries = []
        for index, message in enumerate(fresh):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = admin.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        ok = {entry["Id"] for entry in sent.get("Successful", [])}
        refused += len(sent.get("Failed", []))
        done = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(fresh)
            if str(index) in ok
        ]
        if done:
            admin.sqs.delete_message_batch(QueueUrl=dlq_url, Entries=done)
        moved += len(done)
        console.progress(f"redrive: {moved} moved")
    console.done()
    return moved, refused


# --- export --------------------------------------------------------------------------------------


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    installation_argument(parser)
    parser.add_argument(
        "--output", "-o", type=Path, help="write the export to this file (default: stdout)"
    )


@command(
    "export",
    "one installation's stored data for a support case, every secret redacted",
    _export_arguments,
)
def export(admin: Admin, args: argparse.Namespace, console: Console) -> Report:
    record = require(admin, args.installation_id)
    redactor = Redactor()
    items = [redactor.item(item) for item in admin.installations.items_of(record.installation_id)]
    pointer = admin.installations.company_pointer(record.company_id)
    if pointer is not None:
        items.append(redactor.item(pointer))
    document = {
        "exported_at": datetime.now(UTC),
        "target": target(admin),
        "installation": redactor.value("installation", installation_summary(record)),
        "items": items,
        "redacted_values": redactor.count,
    }
    if args.output is None:
        return Report(document, _dump(document))
    with _private_file(args.output) as handle:
        handle.write(_dump(document) + "\n")
    summary = {
        "installation_id": record.installation_id,
        "file": str(args.output),
        "items": len(items),
        "redacted_values": redactor.count,
    }
    return Report(
        summary,
        f"Wrote {counted(len(items), 'item')} of {record.installation_id} to {args.output} "
        f"({counted(redactor.count, 'value')} redacted).",
    )


def _dump(document: Mapping[str, Any]) -> str:
    from pleo_connector_admin.render import to_json

    return to_json(document)


@contextlib.contextmanager
def _private_file(path: Path) -> Any:
    """A new file only its owner can read (an export is still a customer's data)."""
    import os

    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as error:
        raise AdminError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        yield handle
