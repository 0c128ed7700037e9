"""A client-side request budget that keeps a whole app under Pleo's rate limit.

Pleo allows about 600 requests a minute and does not say whether per app or per credential, so
every worker of one app draws from one token bucket: in-process when there is one worker, in the
DynamoDB table when several Lambda instances sync at once. A 429 halves the rate, which then
recovers linearly to the configured one over `recovery_s`.

The shared bucket hands out tokens in blocks, so that a worker pays one DynamoDB write per block
rather than two round trips per request; `DynamoDBTokenBucket` says how, and what it bounds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pleo_connector import metrics
from pleo_connector.observability import logger
from pleo_connector.pleo.errors import DeadlineExceededError
from pleo_connector.store.dynamodb import DynamoTable, get_int, get_n, n
from pleo_connector.store.errors import WriteConflictError

if TYPE_CHECKING:
    from pleo_connector.pleo.retry import Clock, Deadline

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_RATE_PER_MIN = 500.0
DEFAULT_BURST = 10.0
# A block is this many seconds of the shared rate: 33 tokens at 500/min, so a busy worker pays
# about 0.03 DynamoDB writes per request. Larger blocks cost fewer writes but share more coarsely.
DEFAULT_BLOCK_S = 4.0
# A token of a block may be spent at most this long after it fell due; later it is dropped.
DEFAULT_HOLD_S = 2.0


class RateBudget(Protocol):
    """What the transport needs from a budget."""

    async def acquire(self, deadline: Deadline | None = None) -> None:
        """Wait for one request's worth; DeadlineExceededError if it won't come in time."""
        ...

    async def on_rate_limited(self) -> None:
        """Pleo answered 429: slow down."""
        ...


def _recovering_rate(
    configured: float,
    recovery_s: float,
    lowered_rate: float | None,
    lowered_at: float,
    now: float,
) -> float:
    """The rate at `now`: the configured one, or a lowered one on its linear way back."""
    if lowered_rate is None:
        return configured
    progress = min(max((now - lowered_at) / recovery_s, 0.0), 1.0)
    return lowered_rate + (configured - lowered_rate) * progress


@dataclass
class _RateState:
    """The in-process bucket's state."""

    tokens: float
    updated_at: float
    lowered_rate: float | None = None
    lowered_at: float = 0.0

    def rate_per_min(self, configured: float, recovery_s: float, now: float) -> float:
        return _recovering_rate(configured, recovery_s, self.lowered_rate, self.lowered_at, now)

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
            "Pleo rate limit hit: request budget lowered",
            extra={"rate_per_min": round(self._state.lowered_rate or 0.0)},
        )


@dataclass(frozen=True, slots=True)
class _SharedView:
    """The bucket item as this worker last saw it: in the answer to its own write, or to a lost
    condition (DynamoDB returns the item then), so no write needs a read before it."""

    full_at: float | None = None
    version: int = 0
    rate_version: int = 0
    lowered_rate: float | None = None
    lowered_at: float = 0.0

    @classmethod
    def of(cls, item: Mapping[str, Any] | None) -> _SharedView:
        if not item:
            return cls()
        return cls(
            full_at=get_n(item, "full_at"),
            version=get_int(item, "version"),
            rate_version=get_int(item, "rate_version"),
            lowered_rate=get_n(item, "lowered_rate"),
            lowered_at=get_n(item, "lowered_at") or 0.0,
        )


@dataclass(slots=True)
class _Block:
    """Consecutive slots of the shared schedule, reserved by this worker in one write.

    Slot i falls due at `first_due + i * interval`, never before the reservation (the bucket's
    burst makes the first slots due at once), and may be spent until `hold_s` after that.
    """

    first_due: float
    interval: float
    count: int
    reserved_at: float
    taken: int = 0
    skipped: int = 0

    def due(self, index: int) -> float:
        return max(self.reserved_at, self.first_due + index * self.interval)

    def usable(self, now: float, hold_s: float) -> int | None:
        """The first slot neither taken nor expired, or None when the block is spent."""
        index = self.taken
        if self.reserved_at + hold_s < now:
            # Due times are ordered: skip to the first one that is still within its hold.
            expired = math.ceil(round((now - hold_s - self.first_due) / self.interval, 9))
            index = max(index, expired)
        return index if index < self.count else None

    def take(self, index: int) -> None:
        self.skipped += index - self.taken
        self.taken = index + 1

    def next_size(self) -> int:
        """A block spent in full asks for twice as much next time; one that partly expired, for
        what was spent of it (a slow worker stops reserving slots it cannot use)."""
        if self.skipped == 0 and self.taken >= self.count:
            return 2 * self.count
        return max(1, self.taken - self.skipped)


def _num(value: float) -> dict[str, str]:
    """Times and rates to the microsecond (the store's `n` keeps milliseconds)."""
    return {"N": f"{value:.6f}"}


class DynamoDBTokenBucket(_BucketSettings):
    """A token bucket in the app's DynamoDB table, shared by every worker of the app.

    The bucket is the item `BUDGET#<name>`/`BUDGET`, kept as the time `full_at` at which it will
    be full again (a GCRA schedule: taking k tokens moves it k intervals on from now, or from
    where it already is). A worker reserves a block of consecutive slots with one UpdateItem:
    - while the bucket is busy (`full_at` ahead of now), `full_at = full_at + cost`: additions
      commute, so workers reserving at once never conflict;
    - when it is idle, `full_at = now + cost` on the condition that it is still behind now.
    Which of the two applies is known from the last answer, so a reservation is one call; a wrong
    guess costs one more (the lost condition returns the item).

    The worker then spends its slots locally, each no earlier than it falls due (as if taken one
    by one from the shared bucket) and no later than `hold_s` after. A slot not spent by then is
    dropped: the shared schedule has moved on and does not give it back, which is what bounds the
    total. Over any window of W seconds, all workers together send at most
    `rate/60 * (W + hold_s) + burst + 1` requests (`max_requests_in`): at 500/min with the
    defaults, 528 in any minute. That holds for clocks in step; workers whose clocks differ by d
    seconds may add `rate/60 * d`.

    A block is `block_s` of the current rate at most (33 tokens at 500/min) and at least one
    token. A worker's first block is the size of the burst; one that spends whole blocks doubles
    the next up to the most, one that lets slots expire asks next for what it spent: a worker
    that needs few requests, or sends them slower than the rate, does not hold slots it wastes
    while the others wait.

    A 429 drops the worker's own block, halves the shared rate and empties the bucket in one
    conditional write on `version`. Every reservation checks `rate_version`, so the next block of
    any worker is priced at the lowered rate; blocks already reserved elsewhere run out within
    `block_s`.
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
        block_s: float = DEFAULT_BLOCK_S,
        hold_s: float = DEFAULT_HOLD_S,
        client: Any = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(rate_per_min, burst, min_rate_per_min, recovery_s)
        if block_s <= 0:
            raise ValueError("block_s must be positive")
        if hold_s < 0:
            raise ValueError("hold_s must not be negative")
        self.block_s = float(block_s)
        self.hold_s = float(hold_s)
        self.table_name = table_name
        self.key = {"pk": {"S": f"BUDGET#{name}"}, "sk": {"S": "BUDGET"}}
        self._table = DynamoTable(table_name, client)
        self._clock = clock
        self._sleep = sleep
        self._view = _SharedView()
        self._block: _Block | None = None
        # A worker starts with a block of the burst's size and grows from there, so one that
        # needs a few requests does not hold seconds of everybody's schedule.
        self._next_size = max(1, int(self.burst))
        self._reserving = asyncio.Lock()

    @property
    def current_rate_per_min(self) -> float:
        """The shared rate as of this worker's last answer from the table."""
        return self._rate(self._view, self._clock())

    def max_requests_in(self, window_s: float) -> float:
        """The most requests all workers together may send in any `window_s` seconds."""
        return self.rate_per_min / 60.0 * (window_s + self.hold_s) + self.burst + 1

    def block_size(self, rate_per_min: float) -> int:
        """The largest block at `rate_per_min`: `block_s` of it, at least one token."""
        return max(1, int(rate_per_min / 60.0 * self.block_s))

    async def acquire(self, deadline: Deadline | None = None) -> None:
        while True:
            block = self._block
            now = self._clock()
            if block is not None:
                index = block.usable(now, self.hold_s)
                if index is not None:
                    wait = block.due(index) - now
                    if wait > 0:
                        _check_deadline(wait, deadline)
                    block.take(index)
                    if wait > 0:
                        await self._sleep(wait)
                    return
            async with self._reserving:
                if self._block is block:  # nobody reserved while this caller waited
                    await self._reserve(block, deadline)

    async def on_rate_limited(self) -> None:
        self._block = None
        for _ in range(self.MAX_CONFLICTS):
            now = self._clock()
            view = self._view
            lowered = max(self.min_rate_per_min, self._rate(view, now) / 2.0)
            full_at = max(view.full_at or now, now + self.burst * 60.0 / lowered)
            try:
                item = await asyncio.to_thread(self._lower, view, now, lowered, full_at)
            except WriteConflictError as error:
                self._view = _SharedView.of(error.current)
                continue
            self._view = _SharedView.of(item)
            logger.warning(
                "Pleo rate limit hit: shared request budget lowered",
                extra={"rate_per_min": round(lowered)},
            )
            return
        logger.warning("Pleo rate limit hit: the shared budget kept changing; not lowered")

    def _rate(self, view: _SharedView, now: float) -> float:
        return _recovering_rate(
            self.rate_per_min, self.recovery_s, view.lowered_rate, view.lowered_at, now
        )

    async def _reserve(self, spent: _Block | None, deadline: Deadline | None) -> None:
        if spent is not None:
            self._next_size = spent.next_size()
        conflicts = 0
        while True:
            now = self._clock()
            view = self._view
            rate = self._rate(view, now)
            interval = 60.0 / rate
            count = min(self._next_size, self.block_size(rate))
            if deadline is not None:  # no slots past the deadline
                count = min(count, max(1, math.ceil(deadline.remaining() / interval)))
            # The first slot's wait, as far as this worker knows (the real one is no shorter).
            wait = max(view.full_at or now, now) + (1 - self.burst) * interval - now
            if wait > 0:
                _check_deadline(wait, deadline)
            cost = round(count * interval, 6)
            try:
                item = await asyncio.to_thread(self._take, view, now, cost)
            except WriteConflictError as error:
                self._view = _SharedView.of(error.current)
                conflicts += 1
                if conflicts % self.MAX_CONFLICTS == 0:
                    await self._pause(0.05, deadline)
                continue
            self._view = view = _SharedView.of(item)
            start = (view.full_at or now + cost) - cost
            self._block = _Block(
                first_due=start + (1 - self.burst) * interval,
                interval=interval,
                count=count,
                reserved_at=now,
            )
            return

    async def _pause(self, wait: float, deadline: Deadline | None) -> None:
        _check_deadline(wait, deadline)
        await self._sleep(wait)

    def _take(self, view: _SharedView, now: float, cost: float) -> dict[str, Any]:
        """Reserve `cost` seconds of the schedule; the item afterwards."""
        metrics.budget_call()
        values: dict[str, Any] = {":now": _num(now), ":one": n(1), ":rv": n(view.rate_version)}
        if view.full_at is not None and view.full_at >= now:
            values[":cost"] = _num(cost)
            update = "SET full_at = full_at + :cost, #version = #version + :one"
            condition = "full_at >= :now AND rate_version = :rv"
        else:
            values[":full"] = _num(now + cost)
            values[":zero"] = n(0)
            update = (
                "SET full_at = :full, rate_version = if_not_exists(rate_version, :zero), "
                "#version = if_not_exists(#version, :zero) + :one"
            )
            condition = "attribute_not_exists(full_at) OR (full_at < :now AND rate_version = :rv)"
        return self._table.update(
            self.key,
            update=update,
            condition=condition,
            names={"#version": "version"},
            values=values,
            return_old_on_conflict=True,
        )

    def _lower(
        self, view: _SharedView, now: float, lowered: float, full_at: float
    ) -> dict[str, Any]:
        """Store the lowered rate and the emptied bucket if nobody wrote since `view`."""
        metrics.budget_call()
        values: dict[str, Any] = {
            ":full": _num(full_at),
            ":lowered": _num(lowered),
            ":now": _num(now),
            ":one": n(1),
            ":zero": n(0),
        }
        if view.version == 0:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "#version = :seen"
            values[":seen"] = n(view.version)
        return self._table.update(
            self.key,
            update=(
                "SET full_at = :full, lowered_rate = :lowered, lowered_at = :now, "
                "rate_version = if_not_exists(rate_version, :zero) + :one, "
                "#version = if_not_exists(#version, :zero) + :one"
            ),
            condition=condition,
            names={"#version": "version"},
            values=values,
            return_old_on_conflict=True,
        )


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
