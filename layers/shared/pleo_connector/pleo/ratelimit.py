"""A client-side request budget that keeps a whole app under Pleo's rate limit.

Pleo allows about 600 requests a minute and does not say whether per app or per credential, so
every worker of one app draws from one token bucket: in-process when there is one worker, in the
DynamoDB table when several Lambda instances sync at once. A 429 halves the rate, which then
recovers linearly to the configured one over `recovery_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pleo_connector.pleo.errors import DeadlineExceededError
from pleo_connector.pleo.retry import Clock, Deadline
from pleo_connector.store.dynamodb import DynamoTable
from pleo_connector.store.errors import WriteConflictError

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_RATE_PER_MIN = 500.0
DEFAULT_BURST = 10.0


class RateBudget(Protocol):
    """What the transport needs from a budget."""

    async def acquire(self, deadline: Deadline | None = None) -> None:
        """Wait for one request's worth; DeadlineExceededError if it won't come in time."""
        ...

    async def on_rate_limited(self) -> None:
        """Pleo answered 429: slow down."""
        ...


@dataclass
class _RateState:
    """The bucket's state: shared by both implementations, so both refill and slow down alike."""

    tokens: float
    updated_at: float
    lowered_rate: float | None = None
    lowered_at: float = 0.0

    def rate_per_min(self, configured: float, recovery_s: float, now: float) -> float:
        if self.lowered_rate is None:
            return configured
        progress = min(max((now - self.lowered_at) / recovery_s, 0.0), 1.0)
        return self.lowered_rate + (configured - self.lowered_rate) * progress

    def refill(self, configured: float, recovery_s: float, burst: float, now: float) -> None:
        elapsed = max(now - self.updated_at, 0.0)
        rate = self.rate_per_min(configured, recovery_s, now)
        self.tokens = min(burst, self.tokens + elapsed * rate / 60.0)
        self.updated_at = max(now, self.updated_at)
        if self.lowered_rate is not None and now - self.lowered_at >= recovery_s:
            self.lowered_rate = None

    def lower(self, configured: float, recovery_s: float, floor: float, now: float) -> None:
        current = self.rate_per_min(configured, recovery_s, now)
        self.lowered_rate = max(floor, current / 2.0)
        self.lowered_at = now
        self.tokens = min(self.tokens, 0.0)


class _BucketSettings:
    def __init__(
        self,
        rate_per_min: float,
        burst: float | None,
        min_rate_per_min: float | None,
        recovery_s: float,
    ) -> None:
        if rate_per_min <= 0:
            raise ValueError("rate_per_min must be positive")
        self.rate_per_min = float(rate_per_min)
        self.burst = float(burst if burst is not None else min(DEFAULT_BURST, rate_per_min))
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self.min_rate_per_min = float(
            min_rate_per_min if min_rate_per_min is not None else max(rate_per_min / 10, 1.0)
        )
        self.recovery_s = float(recovery_s)


def _check_deadline(wait: float, deadline: Deadline | None) -> None:
    if deadline is not None and wait >= deadline.remaining():
        raise DeadlineExceededError(
            f"the rate budget needs {wait:.2f} s more and the deadline leaves "
            f"{max(deadline.remaining(), 0):.2f} s"
        )


class InProcessTokenBucket(_BucketSettings):
    """A token bucket for the requests of one process.

    Each caller takes a token at once, going into debt when none is left, and sleeps until its
    token is due: concurrent callers queue fairly without a lock.
    """

    def __init__(
        self,
        rate_per_min: float = DEFAULT_RATE_PER_MIN,
        *,
        burst: float | None = None,
        min_rate_per_min: float | None = None,
        recovery_s: float = 60.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(rate_per_min, burst, min_rate_per_min, recovery_s)
        self._clock = clock
        self._sleep = sleep
        self._state = _RateState(tokens=self.burst, updated_at=clock())

    @property
    def current_rate_per_min(self) -> float:
        return self._state.rate_per_min(self.rate_per_min, self.recovery_s, self._clock())

    async def acquire(self, deadline: Deadline | None = None) -> None:
        now = self._clock()
        state = self._state
        state.refill(self.rate_per_min, self.recovery_s, self.burst, now)
        if state.tokens >= 1:
            state.tokens -= 1
            return
        rate_per_s = state.rate_per_min(self.rate_per_min, self.recovery_s, now) / 60.0
        wait = (1 - state.tokens) / rate_per_s
        _check_deadline(wait, deadline)
        state.tokens -= 1
        await self._sleep(wait)

    async def on_rate_limited(self) -> None:
        self._state.lower(self.rate_per_min, self.recovery_s, self.min_rate_per_min, self._clock())
        logger.warning(
            "Pleo rate limit hit: request budget lowered to %.0f/min", self._state.lowered_rate
        )


class DynamoDBTokenBucket(_BucketSettings):
    """A token bucket in the app's DynamoDB table, shared by every worker of the app.

    The bucket is the item `BUDGET#<name>`/`BUDGET`; every change is a conditional write on its
    `version`, so concurrent workers never spend the same token twice. It goes through the
    store's table adapter, so its client is the process's shared one (built when the first request
    needs it) and a lost condition is the store's WriteConflictError, like every other write.
    """

    MAX_CONFLICTS = 50

    def __init__(
        self,
        table_name: str,
        name: str = "pleo",
        rate_per_min: float = DEFAULT_RATE_PER_MIN,
        *,
        burst: float | None = None,
        min_rate_per_min: float | None = None,
        recovery_s: float = 60.0,
        client: Any = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(rate_per_min, burst, min_rate_per_min, recovery_s)
        self.table_name = table_name
        self.key = {"pk": {"S": f"BUDGET#{name}"}, "sk": {"S": "BUDGET"}}
        self._table = DynamoTable(table_name, client)
        self._clock = clock
        self._sleep = sleep

    async def acquire(self, deadline: Deadline | None = None) -> None:
        conflicts = 0
        while True:
            state, version = await asyncio.to_thread(self._read)
            now = self._clock()
            state.refill(self.rate_per_min, self.recovery_s, self.burst, now)
            if state.tokens >= 1:
                state.tokens -= 1
                if await asyncio.to_thread(self._write, state, version):
                    return
                conflicts += 1
                if conflicts >= self.MAX_CONFLICTS:
                    conflicts = 0
                    await self._pause(0.05, deadline)
                continue
            rate_per_s = state.rate_per_min(self.rate_per_min, self.recovery_s, now) / 60.0
            await self._pause((1 - state.tokens) / rate_per_s, deadline)

    async def on_rate_limited(self) -> None:
        for _ in range(self.MAX_CONFLICTS):
            state, version = await asyncio.to_thread(self._read)
            now = self._clock()
            state.refill(self.rate_per_min, self.recovery_s, self.burst, now)
            state.lower(self.rate_per_min, self.recovery_s, self.min_rate_per_min, now)
            if await asyncio.to_thread(self._write, state, version):
                logger.warning(
                    "Pleo rate limit hit: shared request budget lowered to %.0f/min",
                    state.lowered_rate,
                )
                return

    async def _pause(self, wait: float, deadline: Deadline | None) -> None:
        _check_deadline(wait, deadline)
        await self._sleep(wait)

    def _read(self) -> tuple[_RateState, int | None]:
        item = self._table.get(self.key, consistent=True)
        if not item:
            return _RateState(tokens=self.burst, updated_at=self._clock()), None
        lowered = item.get("lowered_rate")
        return (
            _RateState(
                tokens=float(item["tokens"]["N"]),
                updated_at=float(item["updated_at"]["N"]),
                lowered_rate=float(lowered["N"]) if lowered else None,
                lowered_at=float(item.get("lowered_at", {}).get("N", "0")),
            ),
            int(item["version"]["N"]),
        )

    def _write(self, state: _RateState, version: int | None) -> bool:
        """Store `state` if nobody wrote since `version` was read; False when someone did."""
        item: dict[str, Any] = {
            **self.key,
            "tokens": {"N": f"{state.tokens:.6f}"},
            "updated_at": {"N": f"{state.updated_at:.6f}"},
            "lowered_at": {"N": f"{state.lowered_at:.6f}"},
            "version": {"N": str((version or 0) + 1)},
        }
        if state.lowered_rate is not None:
            item["lowered_rate"] = {"N": f"{state.lowered_rate:.6f}"}
        try:
            if version is None:
                self._table.put(item, condition="attribute_not_exists(pk)")
            else:
                self._table.put(
                    item,
                    condition="#version = :version",
                    names={"#version": "version"},
                    values={":version": {"N": str(version)}},
                )
        except WriteConflictError:
            return False
        return True


_process_budgets: dict[float, InProcessTokenBucket] = {}


def process_budget(rate_per_min: float = DEFAULT_RATE_PER_MIN) -> InProcessTokenBucket:
    """The one in-process bucket of this rate, shared by every client the process builds."""
    budget = _process_budgets.get(rate_per_min)
    if budget is None:
        budget = _process_budgets[rate_per_min] = InProcessTokenBucket(rate_per_min)
    return budget


def make_budget(
    rate_per_min: float = DEFAULT_RATE_PER_MIN,
    *,
    table_name: str | None = None,
    name: str = "pleo",
) -> RateBudget:
    """The budget to hand to `PleoClient`: shared through DynamoDB when a table is configured
    (every worker of the app draws from it), the process's own bucket otherwise."""
    if table_name:
        return DynamoDBTokenBucket(table_name, name, rate_per_min)
    return process_budget(rate_per_min)
