"""Virtual time for several concurrent tasks: a clock that moves only when every task waits on it.

`FakeClock`-style clocks add each sleep to the time, which is right for one task and wrong for
several: two workers sleeping one second at once would move it by two. Here a sleep registers a
wake-up; once every task of `run` is asleep (or done), the clock jumps to the earliest wake-up
and wakes that one task alone. Tasks may do real I/O in between (a DynamoDB call in a thread):
the clock simply waits for them. One wake-up at a time, in (time, order of sleeping) order,
makes a run deterministic whatever the I/O's real speed.
"""

from __future__ import annotations

import asyncio
import heapq
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Coroutine

# About a minute of real time with nobody asleep: a task is stuck, not slow.
_STUCK_SPINS = 120_000


class VirtualTime:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        self._order += 1
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), self._order, wake))
        await wake

    async def run(self, *coroutines: Coroutine[Any, Any, Any]) -> list[Any]:
        """Run `coroutines` as concurrent tasks to their end; their results, in order."""
        tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
        try:
            while True:
                alive = await self._until_all_asleep(tasks)
                if not alive:
                    return list(await asyncio.gather(*tasks))
                at, _, wake = heapq.heappop(self._sleepers)
                self.now = max(self.now, at)
                wake.set_result(None)
        finally:
            for task in tasks:
                task.cancel()

    async def _until_all_asleep(self, tasks: list[asyncio.Task[Any]]) -> int:
        spins = 0
        while True:
            alive = sum(1 for task in tasks if not task.done())
            if alive == len(self._sleepers):
                return alive
            if spins > _STUCK_SPINS:
                raise RuntimeError("a task waits on something other than the virtual clock")
            # A task is running or in real I/O: give it the loop (briefly, then patiently).
            await asyncio.sleep(0 if spins < 20 else 0.0005)
            spins += 1
