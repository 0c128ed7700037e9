"""Where a fresh worker's first request goes: a stand-in handler that loads the real one.

bench_first_request.py runs each function with this directory as its first layer and the handler
`bench_probe.handler`; the real handler is named by BENCH_PROBE_HANDLER. At init the probe imports
the real handler module (so init is the function's own) after wrapping `__import__`, so that the
first import of boto3 or botocore is timed wherever it happens. Once boto3 is loaded, boto3
sessions and clients and every botocore API call are timed too, and so are the httpx requests
(the Pleo API). After the first invocation the probe appends one JSON line to BENCH_PROBE_OUT:
milliseconds per item, split into init and first request. The wrappers cost a few microseconds
per call. Standard library only: the worker has the function's code, its layers and the
virtualenv, as the function itself.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import json
import os
import sys
import time
from collections import defaultdict
from typing import Any

_REAL_MODULE, _, _REAL_ATTRIBUTE = os.environ["BENCH_PROBE_HANDLER"].rpartition(".")
_OUT = os.environ["BENCH_PROBE_OUT"]

_phase = "init"
_costs: dict[str, dict[str, float]] = {"init": defaultdict(float), "first": defaultdict(float)}
_calls: dict[str, int] = defaultdict(int)
_original_import = builtins.__import__
# The imports being timed, innermost last: [item, started, time of nested items of another kind].
_stack: list[list[Any]] = []
BOTO3 = "import boto3/botocore"
LAZY = "lazy imports"
CLIENTS = "boto3 sessions and clients"
PLEO = "Pleo API calls"


def _enter(item: str) -> list[Any] | None:
    """Start timing `item`, unless an item of the same kind is already running (it has it)."""
    if _stack and _stack[-1][0] == item:
        return None
    frame = [item, time.perf_counter(), 0.0]
    _stack.append(frame)
    return frame


def _leave(frame: list[Any] | None) -> None:
    """Book the item's time, less what nested items of other kinds took (booked by them)."""
    if frame is None:
        return
    # By identity: concurrent Pleo requests of one event loop may end out of order.
    del _stack[next(i for i, open_frame in enumerate(_stack) if open_frame is frame)]
    elapsed = (time.perf_counter() - frame[1]) * 1000
    _costs[_phase][frame[0]] += elapsed - frame[2]
    if _stack:
        _stack[-1][2] += elapsed


def _timed_import(name: str, *args: Any, **kwargs: Any) -> Any:
    """Times the first import of boto3 or botocore (with all they pull in) wherever it happens,
    and, on the first request, every other import that loads a module (the app's lazy imports)."""
    if not name or name in sys.modules:
        return _original_import(name, *args, **kwargs)
    kind = BOTO3 if name.partition(".")[0] in ("boto3", "botocore") else LAZY
    # What boto3, a client or a call imports belongs to it; at init every import is the app's.
    if (kind == LAZY and _phase == "init") or (_stack and _stack[-1][0] != LAZY):
        return _original_import(name, *args, **kwargs)
    frame = _enter(kind)
    try:
        return _original_import(name, *args, **kwargs)
    finally:
        _leave(frame)
        # Only once the outermost boto3 import is done: boto3 is whole then.
        if frame is not None and kind == BOTO3 and "boto3" in sys.modules:
            _wrap_boto3()


_boto3_wrapped = False


def _wrap_boto3() -> None:
    global _boto3_wrapped
    if _boto3_wrapped:
        return
    _boto3_wrapped = True
    import boto3.session
    import botocore.client

    session_init = boto3.session.Session.__init__
    session_client = boto3.session.Session.client
    make_api_call = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009

    @functools.wraps(session_init)
    def timed_session(self: Any, *args: Any, **kwargs: Any) -> None:
        frame = _enter(CLIENTS)
        try:
            session_init(self, *args, **kwargs)
        finally:
            _leave(frame)

    @functools.wraps(session_client)
    def timed_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        frame = _enter(CLIENTS)
        try:
            return session_client(self, *args, **kwargs)
        finally:
            _leave(frame)
            _calls["clients"] += 1

    @functools.wraps(make_api_call)
    def timed_call(self: Any, operation: str, params: Any) -> Any:
        service = self.meta.service_model.service_name
        frame = _enter(f"{service} calls")
        try:
            return make_api_call(self, operation, params)
        finally:
            _leave(frame)
            _calls[f"{service}.{operation}"] += 1

    boto3.session.Session.__init__ = timed_session  # type: ignore[method-assign]
    boto3.session.Session.client = timed_client  # type: ignore[method-assign]
    setattr(botocore.client.BaseClient, "_make_api_call", timed_call)  # noqa: B010


def _wrap_httpx() -> None:
    if "httpx" not in sys.modules:
        return
    import httpx

    async_send = httpx.AsyncClient.send
    sync_send = httpx.Client.send

    @functools.wraps(async_send)
    async def timed_async_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        frame = _enter(PLEO)
        try:
            return await async_send(self, *args, **kwargs)
        finally:
            _leave(frame)
            _calls["pleo"] += 1

    @functools.wraps(sync_send)
    def timed_sync_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        frame = _enter(PLEO)
        try:
            return sync_send(self, *args, **kwargs)
        finally:
            _leave(frame)
            _calls["pleo"] += 1

    httpx.AsyncClient.send = timed_async_send  # type: ignore[method-assign]
    httpx.Client.send = timed_sync_send  # type: ignore[method-assign]


builtins.__import__ = _timed_import
_init_started = time.perf_counter()
_real = getattr(importlib.import_module(_REAL_MODULE), _REAL_ATTRIBUTE)
_init_ms = (time.perf_counter() - _init_started) * 1000
_wrap_httpx()
_reported = False


def handler(event: Any, context: Any) -> Any:
    """The real handler; the first invocation's costs are written out afterwards."""
    global _phase, _reported
    _phase = "first"
    profile_to = os.environ.get("BENCH_PROBE_PROFILE") if not _reported else None
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    try:
        return _real(event, context)
    finally:
        if profiler is not None and profile_to:
            profiler.disable()
            profiler.dump_stats(profile_to)
        if not _reported:
            _reported = True
            first_ms = (time.perf_counter() - started) * 1000
            record = {
                "init_ms": _init_ms,
                "first_ms": first_ms,
                "init": dict(_costs["init"]),
                "first": dict(_costs["first"]),
                "calls": dict(_calls),
            }
            with open(_OUT, "a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
