"""The scheduled dispatch: one sync message per schedulable installation, and one keep-alive per
OAuth grant idle for long, sent in batches of ten."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pleo_connector.sync_queue import SyncRequest
from pleo_connector.tokens import DEFAULT_IDLE_REFRESH_AFTER_S
from pleo_connector.vocabulary import SyncReason

if TYPE_CHECKING:
    from pleo_connector.ports import CredentialVault, InstallationStore, SyncQueuePort


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchDeps:
    installations: InstallationStore
    tokens: CredentialVault
    sync_queue: SyncQueuePort
    clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class Dispatched:
    dispatched: int
    keep_alive: int


def dispatch(deps: DispatchDeps) -> Dispatched:
    """Queue every schedulable installation, then every grant idle for longer than the token
    store's idle threshold (the worker re-checks each under the refresh lease)."""
    requests = (
        SyncRequest(installation_id=installation_id, reason=SyncReason.SCHEDULED)
        for installation_id in deps.installations.iter_schedulable()
    )
    dispatched = deps.sync_queue.send_many(requests)
    idle_before = deps.clock() - DEFAULT_IDLE_REFRESH_AFTER_S
    keep_alive = (
        SyncRequest(installation_id=installation_id, reason=SyncReason.KEEP_ALIVE)
        for installation_id in deps.tokens.iter_idle_grants(idle_before)
    )
    return Dispatched(dispatched, deps.sync_queue.send_many(keep_alive))
