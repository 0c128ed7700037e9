"""One warm Lambda execution environment: imports one function's handler once, then serves
invocations read from stdin, one JSON object a line, answering on a dedicated descriptor.

Run by the app's virtualenv (Lambda's Python) as a script, with `-P` so that neither the current
directory nor this file's folder lands on sys.path: the handler sees only its code directory and its
layers, as Lambda's /var/task and /opt/python. Standard library only, for the same reason.

    python -P local/lambda_runtime.py --code-dir functions/health --handler app.handler \
        --layer layers/shared --function-name HealthFunction --memory 256

Protocol (the invoker in local/invoker.py is the other end):
- at start, one line: {"ready": true, "init_ms": ...} or {"init_error": {errorType, ...}};
- per request line {"request_id", "event", "deadline_ms"} one answer line:
  {"request_id", "result": ...} or {"request_id", "error": {errorMessage, errorType, stackTrace}}.
Requests and answers use private copies of the original stdin and stdout; the handler's stdin is
empty and anything it prints goes to stderr (descriptors 1 and 2 both point there), so it can never
corrupt the protocol. The invoker enforces
the timeout by killing the process, as Lambda ends a timed-out environment.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

REGION_FALLBACK = "eu-west-1"
ACCOUNT_ID = "123456789012"


class LambdaContext:
    """The attributes and method of Lambda's Python context object that handlers use."""

    def __init__(
        self,
        function_name: str,
        memory_limit_in_mb: int,
        aws_request_id: str,
        deadline_ms: int,
    ) -> None:
        region = os.environ.get("AWS_REGION", REGION_FALLBACK)
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/[$LATEST]{os.getpid()}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_payload(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The shape Lambda returns for an unhandled exception."""
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "requestId": "",
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _take_protocol_descriptors() -> tuple[int, int]:
    """Keep private copies of stdin and stdout for the protocol; the handler's descriptor 0 reads
    /dev/null and its descriptor 1 writes to stderr, so it can neither eat nor corrupt messages."""
    sys.stdout.flush()
    requests, answers = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = os.fdopen(0, "r", encoding="utf-8", closefd=False)
    sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", closefd=False)
    return requests, answers


def _load_handler(code_dir: str, layers: list[str], handler: str) -> Any:
    sys.path[0:0] = [code_dir, *layers]
    module_name, _, function_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        message = f"Unable to import module '{module_name}': {error}"
        payload = {"errorMessage": message, "errorType": "Runtime.ImportModuleError"}
        raise _InitError(payload | {"stackTrace": []}) from error
    except SyntaxError as error:
        raise _InitError(error_payload(error, "Runtime.UserCodeSyntaxError")) from error
    except Exception as error:  # module-level code raised: Lambda reports it as it is
        raise _InitError(error_payload(error)) from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise _InitError(
            {
                "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
                "errorType": "Runtime.HandlerNotFound",
                "stackTrace": [],
            }
        )
    return function


class _InitError(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["errorMessage"])
        self.payload = payload


def _json_default(value: Any) -> Any:
    """Lambda's runtime serialises decimals and dates the way its json encoder does."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if type(value).__name__ == "Decimal":
        return float(value) if value % 1 else int(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def serve(args: argparse.Namespace) -> int:
    requests_fd, answers_fd = _take_protocol_descriptors()
    requests = os.fdopen(requests_fd, "r", encoding="utf-8")
    answers = os.fdopen(answers_fd, "w", buffering=1, encoding="utf-8")

    def answer(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message, default=_json_default) + "\n")
        answers.flush()

    os.chdir(args.code_dir)
    started = time.perf_counter()
    try:
        handler = _load_handler(args.code_dir, args.layer or [], args.handler)
    except _InitError as error:
        answer({"init_error": error.payload})
        return 1
    answer({"ready": True, "init_ms": round((time.perf_counter() - started) * 1000, 1)})

    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        request_id = request["request_id"]
        context = LambdaContext(args.function_name, args.memory, request_id, request["deadline_ms"])
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        try:
            result = handler(request["event"], context)
            try:
                answer({"request_id": request_id, "result": result})
            except TypeError as error:
                answer(
                    {
                        "request_id": request_id,
                        "error": error_payload(error, "Runtime.MarshalError")
                        | {"requestId": request_id},
                    }
                )
        except Exception as error:
            traceback.print_exc()
            answer(
                {
                    "request_id": request_id,
                    "error": error_payload(error) | {"requestId": request_id},
                }
            )
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--layer", action="append", help="a layer directory (repeatable)")
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--memory", type=int, default=128)
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
