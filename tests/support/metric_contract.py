"""Every series the app's metrics can print (metrics.py's contract with the alarms, the dashboard
and the cost model), under a template's Powertools settings."""

from __future__ import annotations

import contextlib
import io
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock

if TYPE_CHECKING:
    from collections.abc import Mapping


Series = tuple[str, tuple[tuple[str, str], ...]]  # (metric name, its dimensions sorted)


def emitted_series(template: Mapping[str, Any]) -> tuple[str, set[Series]]:
    """The namespace and every (metric, dimensions) that the app's metrics print under the
    template's Powertools settings: each event of metrics.py, with every value of its dimensions."""
    from pleo_connector import metrics
    from pleo_connector.store.sync_runs import SyncRun
    from pleo_connector.vocabulary import (
        Action,
        InstallationStatus,
        Kind,
        SyncOutcome,
        SyncReason,
    )
    from tests.support.observed_output import read_printed

    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    settings = {name: variables[name] for name in (metrics.NAMESPACE_ENV, metrics.SERVICE_ENV)}
    metrics.recorded.take()
    for outcome in SyncOutcome:
        metrics.sync_done(outcome)
    for method in metrics.InstallMethod:
        for install_outcome in metrics.InstallOutcome:
            metrics.install_done(method, install_outcome)
    metrics.activated()
    metrics.installation_stopped()
    metrics.installations_counted(dict.fromkeys(InstallationStatus, 2))
    metrics.budget_call()
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    metrics.run_counted(
        SyncRun(
            installation_id="inst-1",
            started_at=moment,
            finished_at=moment + timedelta(seconds=1),
            reason=SyncReason.SCHEDULED,
            outcome=SyncOutcome.SYNCED,
            applied={(kind, action): 1 for kind in Kind for action in Action},
            failed=dict.fromkeys(Kind, 1),
            requests=1,
            rate_limited=1,
        )
    )
    out = io.StringIO()
    with mock.patch.dict(os.environ, settings), contextlib.redirect_stdout(out):
        metrics.flush()
    printed = read_printed(out.getvalue())
    [namespace] = printed.namespaces()
    return namespace, set(printed.metrics())
