"""Invoke the template's functions locally the way Lambda does, without Docker.

Each function gets a pool of warm workers (local/lambda_runtime.py run by the app's virtualenv): a
new worker is a cold start, a worker is reused once it is free, and concurrent invocations of one
function get more workers. A worker that times out or crashes is thrown away, as Lambda throws away
an execution environment. Standard library only: both virtualenvs use it.

The environment of a function is built as `sam local invoke --env-vars` builds it: the variables
the template declares (Globals + the function's own), with `!Ref`s already resolved to the local
resources, then the overrides file (`{"Parameters": {...}, "<LogicalId>": {...}}`, the format of
`--env-vars`; only declared variables are overridden), then what Lambda itself sets (region,
credentials, function name, ...) plus the local endpoints of the AWS stand-ins.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import string
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

from local.services import APP_PYTHON, LOCAL_REGION

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from local.function_spec import FunctionSpec

RUNTIME_SCRIPT = Path(__file__).resolve().parent / "lambda_runtime.py"
DEFAULT_OVERRIDES = Path(__file__).resolve().parent / "env.local.json"
# Lambda allows 10 s of init; a shared laptop importing boto3 cold can be slower, so allow more.
INIT_TIMEOUT_S = 30.0
MAX_WORKERS_PER_FUNCTION = 10


class FunctionNotFoundError(KeyError):
    """The template declares no function of that name."""


@dataclass
class Invocation:
    """The outcome of one invocation, with what Lambda's REPORT line would say."""

    function_name: str
    request_id: str
    payload: Any
    is_error: bool
    cold_start: bool
    duration_ms: float
    init_ms: float | None = None

    @property
    def error_type(self) -> str | None:
        if self.is_error and isinstance(self.payload, dict):
            return str(self.payload.get("errorType"))
        return None


def load_overrides(path: Path | None = DEFAULT_OVERRIDES) -> dict[str, dict[str, str]]:
    """Read an env-vars overrides file (`sam local --env-vars` format); none -> no overrides."""
    if path is None or not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected {{'Parameters': {{...}}, '<LogicalId>': {{...}}}}")
    return {key: {k: str(v) for k, v in value.items()} for key, value in data.items()}


def lambda_environment(
    spec: FunctionSpec,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    placeholders: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment one function's workers run with.

    `placeholders` fill `${Name}` in override values (the local ports are only known at start,
    e.g. `${LocalApiUrl}`); `extra` is added as is (credentials and endpoints of the stand-ins)."""
    overrides = overrides or {}
    declared = dict(spec.environment)
    for scope in ("Parameters", spec.name):
        for name, value in (overrides.get(scope) or {}).items():
            if name in declared:
                declared[name] = string.Template(value).safe_substitute(placeholders or {})
    runtime = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_RUNTIME_API": "local",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "LAMBDA_TASK_ROOT": spec.code_dir,
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Lambda's code directory is read-only: nothing writes bytecode next to the code.
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        # No AWS account is ever reached from a local worker: ignore a person's AWS config.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return {**runtime, **(extra or {}), **declared}


class _Worker:
    """One warm execution environment of one function."""

    def __init__(
        self, spec: FunctionSpec, environment: dict[str, str], python: Path, log: _LogSink
    ) -> None:
        self.spec = spec
        argv = [str(python), "-P", str(RUNTIME_SCRIPT)]
        argv += ["--code-dir", spec.code_dir, "--handler", spec.handler]
        for layer in spec.layer_dirs:
            argv += ["--layer", layer]
        argv += ["--function-name", spec.name, "--memory", str(spec.memory_mb)]
        self.process = subprocess.Popen(
            argv,
            cwd=spec.code_dir,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            start_new_session=True,
        )
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        threading.Thread(
            target=self._read_answers, args=(self.process.stdout,), daemon=True
        ).start()
        threading.Thread(
            target=log.relay, args=(spec.name, self.process.stderr), daemon=True
        ).start()
        self.init_ms: float | None = None
        self.init_error: dict[str, Any] | None = None

    def _read_answers(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with contextlib.suppress(ValueError):
                    self._answers.put(json.loads(line))
        self._answers.put(None)  # the process is gone

    def start(self) -> None:
        """Wait for the handler's module to import (Lambda's init phase)."""
        try:
            first = self._answers.get(timeout=INIT_TIMEOUT_S)
        except queue.Empty:
            self.kill()
            self.init_error = {
                "errorType": "Runtime.InitTimeout",
                "errorMessage": f"Init did not finish within {INIT_TIMEOUT_S:.0f} s",
            }
            return
        if first is None:
            self.init_error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Runtime exited during init: exit status {self.process.wait()}",
            }
        elif "init_error" in first:
            self.init_error = first["init_error"]
            self.kill()
        else:
            self.init_ms = float(first.get("init_ms", 0.0))

    def invoke(self, event: Any, request_id: str) -> tuple[Any, bool, bool]:
        """Run one event: (payload, is_error, worker_still_usable)."""
        timeout = float(self.spec.timeout_s)
        deadline_ms = int((time.time() + timeout) * 1000)
        request = {"request_id": request_id, "event": event, "deadline_ms": deadline_ms}
        request["trace_id"] = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            answer = self._answers.get(timeout=timeout + 0.5)
        except (BrokenPipeError, OSError):
            answer = None
        except queue.Empty:
            self.kill()
            return (
                {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after "
                    f"{timeout:.2f} seconds",
                },
                True,
                False,
            )
        if answer is None:
            code = self.process.wait()
            return (
                {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                    f"exit status {code}",
                },
                True,
                False,
            )
        if "error" in answer:
            return answer["error"], True, True
        return answer.get("result"), False, True

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._close_stdin()

    def _close_stdin(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def stop(self) -> None:
        """End a warm worker: closing stdin ends its loop; kill what lingers."""
        self._close_stdin()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
        else:
            # Children the handler may have started share the worker's process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


class _LogSink:
    """Where the workers' output goes, one line at a time, prefixed by the function's name."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def relay(self, function_name: str, source: IO[str]) -> None:
        with source:
            for line in source:
                self.write(f"[{function_name}] {line.rstrip()}")

    def write(self, line: str) -> None:
        if self.stream is None:
            return
        with self._lock, contextlib.suppress(ValueError, OSError):
            self.stream.write(line + "\n")
            self.stream.flush()


@dataclass
class _Pool:
    idle: list[_Worker] = field(default_factory=list)
    busy: set[_Worker] = field(default_factory=set)
    free_slots: threading.Semaphore = field(
        default_factory=lambda: threading.Semaphore(MAX_WORKERS_PER_FUNCTION)
    )


class Invoker:
    """Warm pools of workers, one pool per function of the template."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        environment_for: Callable[[FunctionSpec], dict[str, str]] | None = None,
        log: TextIO | None = sys.stderr,
        python: Path = APP_PYTHON,
    ) -> None:
        self.specs = dict(specs)
        self._environment_for = environment_for or (lambda spec: lambda_environment(spec))
        self._log = _LogSink(log)
        self._python = python
        self._pools: dict[str, _Pool] = {name: _Pool() for name in self.specs}
        self._lock = threading.Lock()
        self._closed = False
        self.cold_starts: dict[str, int] = dict.fromkeys(self.specs, 0)

    def invoke(self, function_name: str, event: Any) -> Invocation:
        """Invoke synchronously (RequestResponse), as `sam local invoke` does."""
        spec = self.specs.get(function_name)
        if spec is None:
            raise FunctionNotFoundError(function_name)
        pool = self._pools[function_name]
        request_id = str(uuid.uuid4())
        with pool.free_slots:
            worker, cold = self._acquire(spec, pool)
            started = time.perf_counter()
            if worker.init_error is not None:
                payload: Any = worker.init_error | {"requestId": request_id}
                is_error, usable = True, False
            else:
                payload, is_error, usable = worker.invoke(event, request_id)
            duration_ms = (time.perf_counter() - started) * 1000
            self._release(pool, worker, usable and worker.alive())
        invocation = Invocation(
            function_name=function_name,
            request_id=request_id,
            payload=payload,
            is_error=is_error,
            cold_start=cold,
            duration_ms=round(duration_ms, 1),
            init_ms=worker.init_ms if cold else None,
        )
        init = f" Init Duration: {invocation.init_ms:.1f} ms" if invocation.init_ms else ""
        status = f" Error: {invocation.error_type}" if is_error else ""
        self._log.write(
            f"[{function_name}] REPORT RequestId: {request_id} Duration: {duration_ms:.1f} ms "
            f"Memory Size: {spec.memory_mb} MB{init}{status}"
        )
        return invocation

    def _acquire(self, spec: FunctionSpec, pool: _Pool) -> tuple[_Worker, bool]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the invoker is closed")
            while pool.idle:
                worker = pool.idle.pop()
                if worker.alive():
                    pool.busy.add(worker)
                    return worker, False
        worker = _Worker(spec, self._environment_for(spec), self._python, self._log)
        with self._lock:
            pool.busy.add(worker)
        self.cold_starts[spec.name] += 1
        worker.start()
        return worker, True

    def _release(self, pool: _Pool, worker: _Worker, usable: bool) -> None:
        with self._lock:
            pool.busy.discard(worker)
            if usable and not self._closed:
                pool.idle.append(worker)
                return
        worker.kill()

    def warm_workers(self, function_name: str) -> int:
        with self._lock:
            return len(self._pools[function_name].idle)

    def close(self) -> None:
        """Stop every worker (warm or running)."""
        with self._lock:
            self._closed = True
            workers = [w for pool in self._pools.values() for w in (*pool.idle, *pool.busy)]
            for pool in self._pools.values():
                pool.idle.clear()
        for worker in workers:
            worker.stop()

    def __enter__(self) -> Invoker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def world_environment_builder(
    overrides: Mapping[str, Mapping[str, str]],
    placeholders: Mapping[str, str],
    aws_env: Mapping[str, str],
) -> Callable[[FunctionSpec], dict[str, str]]:
    """The environment builder the local world uses (overrides file + stand-in endpoints)."""

    def build(spec: FunctionSpec) -> dict[str, str]:
        return lambda_environment(spec, overrides, placeholders, aws_env)

    return build
