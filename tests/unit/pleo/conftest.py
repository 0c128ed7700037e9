"""Fakes for the Pleo client's unit tests: a clock that only moves when slept on, and a client
wired to an in-memory handler instead of the network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest

from pleo_connector.pleo.auth import ApiKeyAuth, PleoAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.retry import Deadline, RetryPolicy

if TYPE_CHECKING:
    from pleo_connector.pleo.ratelimit import RateBudget

API_URL = "https://pleo.test"
API_KEY = "pleo-api-key-4f1c9a7e2b"


@dataclass
class FakeClock:
    """Time that passes only through `sleep`, so waits are exact and tests take no time."""

    now: float = 1_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def deadline_in(self, seconds: float) -> Deadline:
        return Deadline.after(seconds, self)


class PinnedJitter(RetryPolicy):
    """Full jitter always picks the cap, so expected waits are exact."""

    def jitter(self, cap: float) -> float:
        return cap


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Recorder:
    """Answers requests from a list of responses (or a function) and keeps every request."""

    responses: list[httpx.Response | Exception] | None = None
    handler: Handler | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.handler is not None:
            return self.handler(request)
        assert self.responses, f"unexpected request {request.method} {request.url}"
        answer = self.responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(
    clock: FakeClock,
) -> Callable[..., PleoClient]:
    def build(
        recorder: Recorder,
        *,
        auth: PleoAuth | None = None,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        deadline: Deadline | None = None,
        wall_clock: Callable[[], float] = lambda: 4_102_444_800.0,
    ) -> PleoClient:
        return PleoClient(
            API_URL,
            auth or ApiKeyAuth(API_KEY),
            http=httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
            retry=retry or PinnedJitter(max_attempts=4, base_delay_s=1.0, max_delay_s=8.0),
            budget=budget,
            deadline=deadline,
            clock=clock,
            sleep=clock.sleep,
            wall_clock=wall_clock,
        )

    return build


def installation_json(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": "0b5c3b8e-8d7e-4f7a-9f3e-111111111111",
        "applicationId": "0b5c3b8e-8d7e-4f7a-9f3e-222222222222",
        "resource": "urn:pleo:company:0b5c3b8e-8d7e-4f7a-9f3e-333333333333",
        "status": "ACTIVATED",
        "metadata": {},
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
    }
    body.update(overrides)
    return body
