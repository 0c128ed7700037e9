"""When to retry, how long to wait, and how much time is left: small pure pieces.

The transport asks `RetryPolicy.should_retry` and `RetryPolicy.delay`; the random part of the
backoff lives alone in `RetryPolicy.jitter`, so tests pin it by overriding one method.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

Clock = Callable[[], float]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Deadline:
    """An absolute point on `clock` after which no request, wait or retry may start."""

    at: float
    clock: Clock = field(default=time.monotonic, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass(frozen=True)
class RetryPolicy:
    """Full-jitter exponential backoff, bounded in attempts and in each wait."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 120.0

    def should_retry(self, attempt: int, status_code: int | None) -> bool:
        """`attempt` counts from 1; `status_code` None means no response (a connection error)."""
        if attempt >= self.max_attempts:
            return False
        return status_code is None or status_code in RETRYABLE_STATUSES

    def backoff_cap(self, attempt: int) -> float:
        """The upper bound of the wait after attempt `attempt` (1, 2, 3...)."""
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))

    def jitter(self, cap: float) -> float:
        """A random wait in [0, cap] (full jitter spreads retrying workers apart)."""
        return random.uniform(0.0, cap)  # noqa: S311 - spreading retries, not a secret

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """How long to wait before the next attempt: Pleo's `Retry-After` wins when it gave one."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_s)
        return self.jitter(self.backoff_cap(attempt))


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date (RFC 9110 section 10.2.3).

    `now` is the wall-clock time (epoch seconds) the HTTP date is measured from.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is no hint
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    reference = time.time() if now is None else now
    return max(when.timestamp() - reference, 0.0)
