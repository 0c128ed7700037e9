"""Fire the template's EventBridge Scheduler schedules (`ScheduleV2` events) locally.

moto keeps schedules but never fires them, so the local world does: at the schedule's rate, and on
demand (`python -m local.world fire-schedule`). The event has the shape of a scheduled event from
EventBridge Scheduler; a handler should need nothing from it beyond "it is time".
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from local.services import LOCAL_REGION

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.function_spec import FunctionSpec
    from local.invoker import Invocation, Invoker

ACCOUNT_ID = "123456789012"
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Schedule:
    """One ScheduleV2 event of the template."""

    function_name: str
    name: str
    expression: str

    @property
    def rate_seconds(self) -> int | None:
        """The period of a `rate(...)` expression; None for cron/at expressions."""
        match = _RATE.match(self.expression.strip())
        if match is None:
            return None
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]

    @property
    def arn(self) -> str:
        return f"arn:aws:scheduler:{LOCAL_REGION}:{ACCOUNT_ID}:schedule/default/{self.name}"


def schedules(specs: dict[str, FunctionSpec]) -> list[Schedule]:
    """Every ScheduleV2 event of the template."""
    found = []
    for spec in specs.values():
        for event_name, event in spec.events_of_type("ScheduleV2").items():
            expression = str(event.get("Properties", {}).get("ScheduleExpression", ""))
            found.append(Schedule(spec.name, f"{spec.name}{event_name}", expression))
    return found


def scheduled_event(schedule: Schedule, now: datetime | None = None) -> dict[str, object]:
    """The event a scheduled invocation receives."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": ACCOUNT_ID,
        "time": moment.isoformat().replace("+00:00", "Z"),
        "region": LOCAL_REGION,
        "resources": [schedule.arn],
        "detail": {},
    }


class Scheduler:
    """Fires one schedule at its rate (or `rate_seconds_override`), and when `fire_soon()` asks."""

    def __init__(
        self,
        invoker: Invoker,
        schedule: Schedule,
        rate_seconds_override: int | None = None,
        on_fire: Callable[[Schedule, Invocation], None] | None = None,
    ) -> None:
        self.invoker = invoker
        self.schedule = schedule
        self.period_s = rate_seconds_override or schedule.rate_seconds
        self.on_fire = on_fire
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fire(self) -> Invocation:
        invocation = self.invoker.invoke(
            self.schedule.function_name, scheduled_event(self.schedule)
        )
        if self.on_fire is not None:
            self.on_fire(self.schedule, invocation)
        return invocation

    def fire_soon(self) -> None:
        """Ask the background loop to fire now (safe from a signal handler)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"scheduler-{self.schedule.name}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.period_s)  # None: only on demand (cron expressions)
            if self._stop.is_set():
                return
            self._wake.clear()
            with contextlib.suppress(
                Exception
            ):  # the world is stopping; or the next period retries
                self.fire()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
