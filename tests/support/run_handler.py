"""Run one function's handler once in a process of its own, as a Lambda invocation would: the
environment is the process's, the event comes on stdin, and the answer goes to stderr (with the
modules the process imported), so stdout holds exactly what the handler printed: its log lines and
its EMF metrics.

    python -m tests.support.run_handler FUNCTION_DIR < event.json
    python -m tests.support.run_handler tests.support.calling_handler < event.json

The argument is a folder of functions/ or, with a dot in it, a module of this repository. The
answer also lists the modules the handler's import (Lambda's init) had loaded before the event.
With XRAY_CAPTURE=1 (and tracing on), after that import the X-Ray SDK's emitter is replaced by one
that keeps what would have gone to the daemon, and the answer lists it, and the modules the SDK
patched: no daemon is needed.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

from tests.support.handlers import FakeLambdaContext, load_handler_module


class CapturingEmitter:
    """The X-Ray emitter's interface, keeping each entity's document instead of sending it."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        self.documents.append(json.loads(entity.serialize()))

    def set_daemon_address(self, address: str | None) -> None:
        pass

    @property
    def ip(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return 2000


def subsegments(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each document and every subsegment inside it, flattened, without their children."""
    found: list[dict[str, Any]] = []
    pending = list(documents)
    while pending:
        document = pending.pop()
        pending.extend(document.get("subsegments", []))
        found.append({k: v for k, v in document.items() if k != "subsegments"})
    return found


def main(argv: list[str]) -> int:
    (target,) = argv
    event = json.load(sys.stdin)
    module = importlib.import_module(target) if "." in target else load_handler_module(target)
    at_init = sorted(sys.modules)
    emitter = None
    if os.environ.get("XRAY_CAPTURE"):
        from aws_xray_sdk.core import xray_recorder  # type: ignore[import-untyped]

        emitter = CapturingEmitter()
        xray_recorder.configure(emitter=emitter)
    answer = module.handler(event, FakeLambdaContext())
    report: dict[str, Any] = {
        "answer": answer,
        "init_modules": at_init,
        "modules": sorted(sys.modules),
    }
    if emitter is not None:
        from aws_xray_sdk.core import patcher

        report["traced"] = subsegments(emitter.documents)
        report["patched"] = sorted(patcher._PATCHED_MODULES)
    print(json.dumps(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
