"""Run one function's handler once in a process of its own, as a Lambda invocation would: the
environment is the process's, the event comes on stdin, and the answer goes to stderr, so stdout
holds exactly what the handler printed (its log lines and its EMF metrics).

    python -m tests.support.run_handler FUNCTION_DIR < event.json
"""

from __future__ import annotations

import json
import sys

from tests.support.handlers import FakeLambdaContext, load_handler_module


def main(argv: list[str]) -> int:
    (function_dir,) = argv
    event = json.load(sys.stdin)
    module = load_handler_module(function_dir)
    answer = module.handler(event, FakeLambdaContext())
    print(json.dumps({"answer": answer, "modules": sorted(sys.modules)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
