"""When to retry, how long to wait, and how much time is left: small pure pieces.

The transport asks `RetryPolicy.decide` and `RetryPolicy.delay`; the random part of the
backoff lives alone in `RetryPolicy.jitter`, so tests pin it by overriding one method.

Pleo has no idempotency keys, so whether a failed attempt may be sent again depends on the
operation. A retry-safe one (a read, a PUT or DELETE, a search, a state change such as archive)
is retried after any transient failure. Any other (a create) is sent again only when the failure
proves that Pleo did not act on it:

- the connection was never made (connect error or timeout, no free pooled connection);
- 408: the server did not receive the complete request (RFC 9110 section 15.5.9), so there was
  nothing to act on;
- 429: refused by the rate limit before being processed;
- 503 with `Retry-After`: the service says it is unavailable and when to come back (RFC 9110
  section 15.6.4), so it refused rather than failed half-way.

After anything else (no answer in time, the connection lost once the request went out, a 500,
502 or 504, a 503 without `Retry-After`) the outcome is unknown: the create is not sent again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import Enum

Clock = Callable[[], float]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Answers that say the request was not acted on; 503 joins them only with `Retry-After`.
NOT_PROCESSED_STATUSES = frozenset({408, 429})
# Idempotent by definition (RFC 9110 section 9.2.2); POST and PATCH are not, unless declared.
RETRY_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def retry_safe_by_default(method: str) -> bool:
    """What an operation that declares nothing is taken to be: only idempotent methods are safe."""
    return method.upper() in RETRY_SAFE_METHODS


class Decision(Enum):
    """What to do after a failed attempt."""

    RETRY = "retry"  # send it again after a wait
    FAIL = "fail"  # raise the failure as it is: Pleo's final answer, or retries used up
    OUTCOME_UNKNOWN = "outcome unknown"  # it may have been applied: raise, never send again


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

    def decide(
        self,
        attempt: int,
        status_code: int | None,
        *,
        retry_safe: bool,
        sent: bool = True,
        retry_after: float | None = None,
    ) -> Decision:
        """After attempt `attempt` (from 1) failed with `status_code`, or with no answer (None).

        `sent` False means the request certainly never left (the connection was not made);
        `retry_after` is Pleo's parsed hint, when it gave one.
        """
        if status_code is not None and status_code not in RETRYABLE_STATUSES:
            return Decision.FAIL
        if not retry_safe and not _not_processed(status_code, sent, retry_after):
            return Decision.OUTCOME_UNKNOWN
        return Decision.RETRY if attempt < self.max_attempts else Decision.FAIL

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


def _not_processed(status_code: int | None, sent: bool, retry_after: float | None) -> bool:
    """True when the failure proves Pleo did not act on the request."""
    if status_code is None:
        return not sent
    if status_code == 503:
        return retry_after is not None
    return status_code in NOT_PROCESSED_STATUSES


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
