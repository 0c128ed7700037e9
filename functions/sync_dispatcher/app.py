"""Scheduled by EventBridge Scheduler: one sync message per schedulable installation, and one
keep-alive message per OAuth grant idle for two weeks, sent in batches of ten. Messages SQS
refused are counted in the answer and logged; the run fails only when none went out. Each run
also counts the installations in each status, for its log line, and the first run of every six
hours sends the counts as the `Installations` metric."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from pleo_connector.composition.roots import build_dispatcher
from pleo_connector.config import DispatcherFunctionSettings, load_settings
from pleo_connector.observability import logger, observed
from pleo_connector.sync.dispatcher import DispatchDeps, dispatch

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@cache
def deps() -> DispatchDeps:
    return build_dispatcher(load_settings(DispatcherFunctionSettings))


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    done = dispatch(deps())
    counts = {
        "dispatched": done.dispatched,
        "keep_alive": done.keep_alive,
        "unsent": done.unsent,
        "abandoned": done.abandoned,
    }
    by_status = {str(status): count for status, count in done.by_status.items()}
    logger.info("sync dispatched", extra={**counts, "installations": by_status})
    return counts
