"""What tracing needs beyond Powertools' Tracer; imported only when tracing is on (it imports the
X-Ray SDK).

The SDK keeps the current subsegment in a thread-local stack, and in Lambda its context is
thread-local too. A sync run is asyncio: several requests to Pleo are in flight at once in one
thread (the pages read ahead, the writes in batches), so their subsegments would push and pop one
stack in turn and end each other's (`AlreadyEndedException`, raised into the request). The
context here keeps the stack in a context variable instead, as immutable tuples: each asyncio
task (and each thread started with `asyncio.to_thread`) works on its own copy, under the same
Lambda facade segment.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from aws_xray_sdk.core import xray_recorder  # type: ignore[import-untyped]
from aws_xray_sdk.core.lambda_launcher import LambdaContext  # type: ignore[import-untyped]
from aws_xray_sdk.core.models.dummy_entities import DummySegment  # type: ignore[import-untyped]

_entities: ContextVar[tuple[Any, ...]] = ContextVar("xray_entities", default=())


class TaskLocalLambdaContext(LambdaContext):  # type: ignore[misc]
    """Lambda's X-Ray context with a subsegment stack per asyncio task."""

    def put_subsegment(self, subsegment: Any) -> None:
        current = self.get_trace_entity()
        if not self._is_subsegment(current) and (
            getattr(current, "initializing", None) or isinstance(current, DummySegment)
        ):
            return  # the SDK's own rule: nothing is recorded outside an invocation
        current.add_subsegment(subsegment)
        _entities.set((*_entities.get(), subsegment))

    def end_subsegment(self, end_time: float | None = None) -> bool:
        entity = self.get_trace_entity()
        if not self._is_subsegment(entity):
            return False
        entity.close(end_time)
        _entities.set(_entities.get()[:-1])
        return True

    def set_trace_entity(self, trace_entity: Any) -> None:
        super().set_trace_entity(trace_entity)
        _entities.set((trace_entity,) if self._is_subsegment(trace_entity) else ())

    def get_trace_entity(self) -> Any:
        self._refresh_context()  # a new invocation gets a new facade segment
        segment = self._local.segment
        stack = _entities.get()
        if stack and stack[-1].parent_segment is segment:
            return stack[-1]
        return segment

    def clear_trace_entities(self) -> None:
        super().clear_trace_entities()
        _entities.set(())


def use_task_local_context() -> None:
    """In Lambda, give the recorder the task-local context (before anything is patched)."""
    if isinstance(xray_recorder.context, LambdaContext) and not isinstance(
        xray_recorder.context, TaskLocalLambdaContext
    ):
        xray_recorder.configure(context=TaskLocalLambdaContext())
