"""Warm workers behave like Lambda execution environments: reuse, errors, timeouts, isolation."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from local.function_spec import FunctionSpec
from local.invoker import FunctionNotFoundError, Invoker, lambda_environment

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

HANDLERS = """
import os, sys, time

LOADED_AT = time.time()
CALLS = []


def echo(event, context):
    CALLS.append(1)
    print("printed output must not reach the answer")
    sys.stdout.write("neither may this\\n")
    return {
        "event": event,
        "calls_in_this_worker": len(CALLS),
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 2000,
        "table": os.environ.get("TABLE_NAME"),
        "cwd_is_code_dir": os.getcwd() == os.path.dirname(os.path.abspath(__file__)),
        "stdin": sys.stdin.read(),
    }


def boom(event, context):
    raise ValueError("a handler bug")


def sleepy(event, context):
    time.sleep(10)


def meet(event, context):
    # Waits until event["expected"] invocations run at once (each marks a file).
    open(os.path.join(event["dir"], str(os.getpid())), "w").close()
    while len(os.listdir(event["dir"])) < event["expected"]:
        time.sleep(0.01)
    return os.getpid()
"""


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


def spec(code_dir: Path, name: str, handler: str, timeout_s: int = 2) -> FunctionSpec:
    return FunctionSpec(
        name=name,
        handler=handler,
        code_dir=str(code_dir),
        layer_dirs=(),
        runtime="python3.13",
        timeout_s=timeout_s,
        memory_mb=256,
        environment={"TABLE_NAME": "Table"},
    )


@pytest.fixture
def invoker(code_dir: Path) -> Iterator[Invoker]:
    specs = {
        "Echo": spec(code_dir, "Echo", "handlers.echo"),
        "Boom": spec(code_dir, "Boom", "handlers.boom"),
        "Sleepy": spec(code_dir, "Sleepy", "handlers.sleepy", timeout_s=1),
        "Missing": spec(code_dir, "Missing", "nowhere.handler"),
        "Meet": spec(code_dir, "Meet", "handlers.meet", timeout_s=20),
    }
    overrides = {"Echo": {"TABLE_NAME": "local-table"}}
    with Invoker(specs, lambda s: lambda_environment(s, overrides), log=io.StringIO()) as invoker:
        yield invoker


def test_a_worker_stays_warm_between_invocations(invoker: Invoker) -> None:
    first = invoker.invoke("Echo", {"n": 1})
    second = invoker.invoke("Echo", {"n": 2})

    assert (first.cold_start, second.cold_start) == (True, False)
    assert second.payload["calls_in_this_worker"] == 2
    assert second.payload["event"] == {"n": 2}
    assert invoker.cold_starts["Echo"] == 1


def test_the_handler_gets_a_lambda_context_and_the_overridden_environment(
    invoker: Invoker,
) -> None:
    payload = invoker.invoke("Echo", {}).payload

    assert payload["function_name"] == "Echo"
    assert payload["memory"] == 256
    assert payload["arn"].endswith(":function:Echo")
    assert payload["remaining_ok"] is True
    assert payload["table"] == "local-table"
    assert payload["cwd_is_code_dir"] is True
    assert payload["stdin"] == ""  # the protocol's requests are out of the handler's reach


def test_an_exception_becomes_a_lambda_error_payload_and_the_worker_survives(
    invoker: Invoker,
) -> None:
    first = invoker.invoke("Boom", {})
    second = invoker.invoke("Boom", {})

    assert first.is_error
    assert first.payload["errorType"] == "ValueError"
    assert first.payload["errorMessage"] == "a handler bug"
    assert first.payload["stackTrace"]
    assert second.cold_start is False


def test_a_timeout_kills_the_worker(invoker: Invoker) -> None:
    timed_out = invoker.invoke("Sleepy", {})

    assert timed_out.is_error
    assert timed_out.payload["errorType"] == "Sandbox.Timedout"
    assert invoker.warm_workers("Sleepy") == 0


def test_a_missing_module_is_an_import_error(invoker: Invoker) -> None:
    outcome = invoker.invoke("Missing", {})

    assert outcome.is_error
    assert outcome.payload["errorType"] == "Runtime.ImportModuleError"


def test_concurrent_invocations_get_their_own_workers(invoker: Invoker, tmp_path: Path) -> None:
    event = {"dir": str(tmp_path / "meet"), "expected": 2}
    (tmp_path / "meet").mkdir()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda _: invoker.invoke("Meet", event), range(2)))

    assert [outcome.is_error for outcome in outcomes] == [False, False]
    assert [outcome.cold_start for outcome in outcomes] == [True, True]
    assert outcomes[0].payload != outcomes[1].payload  # two processes
    assert invoker.warm_workers("Meet") == 2


def test_an_unknown_function_is_refused(invoker: Invoker) -> None:
    with pytest.raises(FunctionNotFoundError):
        invoker.invoke("Nope", {})
