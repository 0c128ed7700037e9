"""`pleo-connector-admin`: parse the target and the command, run it, print its report, and turn
every failure into one `error:` line and an exit code (never a traceback).

    pleo-connector-admin --local list --status ACTIVATED
    pleo-connector-admin --stack pleo-connector-prod --json show <installation id>
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pleo_connector_admin import ROOT
from pleo_connector_admin.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNKNOWN_INSTALLATION,
    EXIT_USAGE,
    AdminError,
    UsageError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pleo_connector_admin.commands import Report
    from pleo_connector_admin.render import Console
    from pleo_connector_admin.targets import Target

PROG = "pleo-connector-admin"


def _target_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command takes; on the subcommands too (`list --json` works), where
    they default to "not given" so the main parser's values stand."""
    default = argparse.SUPPRESS if suppress else None
    where = parser.add_argument_group("target")
    where.add_argument(
        "--local",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="the running local world (`make up`)",
    )
    where.add_argument("--stack", metavar="NAME", default=default, help="a deployed stack")
    where.add_argument(
        "--region", default=default, help="the stack's region (default: your AWS configuration)"
    )
    where.add_argument(
        "--state-dir",
        type=Path,
        default=default,
        help="the local world's state (default .local-world, or $LOCAL_WORLD_DIR)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON for scripts instead of tables",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="also print the app's own log lines (on stderr)",
    )


def build_parser() -> argparse.ArgumentParser:
    from pleo_connector_admin.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Look at and act on installations, in the local world or a deployed stack.",
        epilog=f"exit codes: 0 done, {EXIT_FAILED} failed, {EXIT_USAGE} usage, 3 target not "
        f"found, {EXIT_UNKNOWN_INSTALLATION} unknown installation, {EXIT_REFUSED} refused",
    )
    _target_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        command.arguments(sub)
        _target_options(sub, suppress=True)
    return parser


def resolve_target(args: argparse.Namespace) -> Target:
    from pleo_connector_admin.targets import local_target, stack_target

    if args.local and args.stack:
        raise UsageError("choose one target: --local or --stack NAME")
    if args.stack:
        return stack_target(args.stack, args.region)
    if args.local:
        state_dir = args.state_dir or Path(
            os.environ.get("LOCAL_WORLD_DIR") or ROOT / ".local-world"
        )
        return local_target(state_dir.resolve())
    raise UsageError("say where: --local (the local world) or --stack NAME (a deployed stack)")


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its help or its usage message
        return int(exit_.code or 0)
    from pleo_connector_admin.render import Console, to_json

    console = Console(err)
    try:
        layer_logs_to(err, verbose=args.verbose)
        report = run_command(args, console)
    except KeyboardInterrupt:
        console.done()
        err.write("interrupted\n")
        return EXIT_FAILED
    except Exception as error:  # every failure ends as one line, never a traceback
        console.done()
        message, code = explain(error)
        err.write(f"error: {message}\n")
        return code
    out.write((to_json(report.data) if args.json else report.text) + "\n")
    return EXIT_OK


def layer_logs_to(err: TextIO, *, verbose: bool) -> None:
    """The services log as they do in Lambda (JSON lines, to stdout): here they go to stderr,
    so stdout holds the report alone, and only warnings unless `--verbose`."""
    import logging

    from pleo_connector.observability import logger

    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(err)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def run_command(args: argparse.Namespace, console: Console) -> Report:
    from pleo_connector_admin.commands import COMMANDS
    from pleo_connector_admin.wiring import Admin

    admin = Admin(resolve_target(args))
    return COMMANDS[args.command].run(admin, args, console)


def explain(error: BaseException) -> tuple[str, int]:
    """The operator's message and the exit code for `error`."""
    from pleo_connector.connect.errors import (
        NotInstalledError,
        SyncAlreadyQueuedError,
        SyncRunningError,
    )
    from pleo_connector.errors import ConnectorError
    from pleo_connector.store.errors import InstallationNotFoundError

    if isinstance(error, AdminError):
        return str(error), error.exit_code
    if isinstance(error, (NotInstalledError, InstallationNotFoundError)):
        return "the installation no longer exists", EXIT_UNKNOWN_INSTALLATION
    if isinstance(error, (SyncRunningError, SyncAlreadyQueuedError)):
        return str(error), EXIT_REFUSED
    if isinstance(error, ConnectorError):
        return f"{error} ({type(error).__name__})", EXIT_FAILED
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 is always there
        pass
    else:
        if isinstance(error, ClientError):
            details = error.response.get("Error", {})
            operation = getattr(error, "operation_name", "AWS")
            said = _one_line(str(details.get("Message") or ""))
            message = f"{operation} failed: {details.get('Code')}"
            return (f"{message}: {said}" if said else message), EXIT_FAILED
        if isinstance(error, BotoCoreError):
            return f"AWS could not be reached: {type(error).__name__}", EXIT_FAILED
    return f"unexpected {type(error).__name__}: {error}", EXIT_FAILED


def _one_line(text: str, limit: int = 200) -> str:
    """A service's message as one short line (an HTML error page is not a message)."""
    if text.lstrip().startswith("<"):
        return "the service answered with an error page"
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
