"""The logger, and the wrapper every handler wears, in a neutral module that any layer may import.

One Powertools logger for the whole package: JSON lines with keys, never `%`-formatted text. The
wrapper (`observed`) gives each invocation a clean logger state with Lambda's context, prints the
invocation's metrics once at its end (`metrics.flush`), and traces it when the stack says so.

Tracing is off unless the stack's `EnableTracing` is true (TRACING_ENABLED, parsed in config).
Only then is Powertools' Tracer built, which imports the X-Ray SDK (not part of the Lambda
runtime; it loads botocore) and patches botocore and httpx, so that each call to AWS and to Pleo
is a subsegment. That happens on the first invocation, before the handler runs, not at init: the
init stays as light as with tracing off, and the first request, which loads botocore anyway, pays
the rest. With tracing off nothing of the SDK is imported.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from pleo_connector.config import ObservabilitySettings, load_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()

# What the X-Ray SDK patches when tracing is on: the AWS SDK and the Pleo client's HTTP library.
TRACED_MODULES = ("botocore", "httpx")


def tracing_enabled() -> bool:
    return load_settings(ObservabilitySettings).tracing_enabled


def observed[E, R](handler: Callable[[E, LambdaContext], R]) -> Callable[[E, LambdaContext], R]:
    """A handler with Lambda's context in its logs (state cleared first), its metrics printed
    when it ends (also when it raises) and, with tracing on, an X-Ray subsegment of its own."""
    inner = _traced_on_first_call(handler) if tracing_enabled() else handler

    @functools.wraps(handler)
    def invoke(event: E, context: LambdaContext) -> R:
        from pleo_connector import metrics

        try:
            return inner(event, context)
        finally:
            try:
                metrics.flush()
            except Exception as error:  # a metric is not worth failing an invocation for
                logger.warning(
                    "metrics could not be printed", extra={"error_type": type(error).__name__}
                )

    wrapped: Callable[[E, LambdaContext], R] = logger.inject_lambda_context(
        invoke, clear_state=True
    )
    return wrapped


def _traced_on_first_call[E, R](
    handler: Callable[[E, LambdaContext], R],
) -> Callable[[E, LambdaContext], R]:
    """The handler under the Tracer, built (the context set, botocore and httpx patched) when
    the first event comes, before the handler runs: every call of every invocation is traced.
    Patching is process-wide: botocore's wraps the client class, so even a client made at init
    is traced; httpx's swaps its client classes, and every httpx client is made on a request."""

    @functools.cache
    def traced() -> Callable[[E, LambdaContext], R]:
        return _traced(handler)

    def invoke(event: E, context: LambdaContext) -> R:
        return traced()(event, context)

    return invoke


def _traced[E, R](handler: Callable[[E, LambdaContext], R]) -> Callable[[E, LambdaContext], R]:
    """The handler under Powertools' Tracer. Responses stay out of the trace (pages hold CSRF
    tokens); errors go in, and their messages never hold a secret."""
    from aws_lambda_powertools import Tracer

    from pleo_connector.tracing import use_task_local_context

    use_task_local_context()
    tracer = Tracer(patch_modules=TRACED_MODULES)
    traced: Callable[[E, LambdaContext], R] = tracer.capture_lambda_handler(
        handler, capture_response=False
    )
    return traced


def annotate(**annotations: Any) -> None:
    """Searchable X-Ray annotations on the current subsegment; nothing with tracing off."""
    if not tracing_enabled():
        return
    from aws_lambda_powertools import Tracer

    tracer = Tracer()
    for key, value in annotations.items():
        tracer.put_annotation(key=key, value=value)
