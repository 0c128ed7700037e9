"""The transport's failure handling: retries, Retry-After, the deadline, errors, pagination."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from pleo_connector.pleo import errors
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.models import Page, Tag
from pleo_connector.pleo.transport import follow_cursor
from tests.unit.pleo.conftest import FakeClock, PinnedJitter, Recorder, installation_json

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

MakeClient = Callable[..., PleoClient]


def ok_installation() -> httpx.Response:
    return httpx.Response(200, json=installation_json())


# Retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retryable_status_is_retried_until_success(
    make_client: MakeClient, clock: FakeClock, status: int
) -> None:
    recorder = Recorder([httpx.Response(status), httpx.Response(status), ok_installation()])

    async with make_client(recorder) as pleo:
        installation = await pleo.installations.get()

    assert installation.status == "ACTIVATED"
    assert len(recorder.requests) == 3
    assert clock.sleeps == [1.0, 2.0]  # full jitter pinned to its cap: 1 s, then 2 s


async def test_every_attempt_is_counted_and_each_429_among_them(make_client: MakeClient) -> None:
    recorder = Recorder(
        [httpx.Response(429), httpx.ConnectError("refused"), httpx.Response(503), ok_installation()]
    )

    async with make_client(recorder) as pleo:
        await pleo.installations.get()
        counts = (pleo.transport.counts.sent, pleo.transport.counts.rate_limited)

    assert counts == (4, 1)


async def test_connection_error_is_retried(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.ConnectError("refused"), ok_installation()])

    async with make_client(recorder) as pleo:
        await pleo.installations.get()

    assert len(recorder.requests) == 2


async def test_retries_stop_after_max_attempts(make_client: MakeClient, clock: FakeClock) -> None:
    recorder = Recorder([httpx.Response(503)] * 4)

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.InternalServerError):
            await pleo.installations.get()

    assert len(recorder.requests) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_connection_errors_exhausted_raise_connection_error(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.ConnectError("refused")] * 4)

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.APIConnectionError):
            await pleo.installations.get()

    assert len(recorder.requests) == 4


async def test_timeout_maps_to_timeout_error(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.ReadTimeout("slow")])

    async with make_client(recorder, retry=PinnedJitter(max_attempts=1)) as pleo:
        with pytest.raises(errors.APITimeoutError):
            await pleo.installations.get()


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
async def test_client_errors_are_not_retried(make_client: MakeClient, status: int) -> None:
    recorder = Recorder([httpx.Response(status)])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.APIStatusError):
            await pleo.installations.get()

    assert len(recorder.requests) == 1


def test_backoff_is_exponential_and_capped() -> None:
    policy = PinnedJitter(max_attempts=10, base_delay_s=0.5, max_delay_s=4.0)

    assert [policy.delay(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_jitter_stays_within_the_cap() -> None:
    from pleo_connector.pleo.retry import RetryPolicy

    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    delays = [policy.delay(4) for _ in range(200)]

    assert all(0.0 <= delay <= 8.0 for delay in delays)
    assert len(set(delays)) > 1  # jittered, not a fixed schedule


# Retry-After -----------------------------------------------------------------------------------


async def test_retry_after_seconds_is_honoured(make_client: MakeClient, clock: FakeClock) -> None:
    recorder = Recorder([httpx.Response(429, headers={"Retry-After": "7"}), ok_installation()])

    async with make_client(recorder) as pleo:
        await pleo.installations.get()

    assert clock.sleeps == [7.0]


async def test_retry_after_http_date_is_honoured(make_client: MakeClient, clock: FakeClock) -> None:
    when = format_datetime(datetime.fromtimestamp(4_102_444_800 + 30, UTC), usegmt=True)
    recorder = Recorder([httpx.Response(503, headers={"Retry-After": when}), ok_installation()])

    async with make_client(recorder, wall_clock=lambda: 4_102_444_800.0) as pleo:
        await pleo.installations.get()

    assert clock.sleeps == [30.0]


def test_parse_retry_after_forms() -> None:
    from pleo_connector.pleo.retry import parse_retry_after

    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_rate_limit_error_carries_retry_after(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.Response(429, headers={"Retry-After": "3"})])

    async with make_client(recorder, retry=PinnedJitter(max_attempts=1)) as pleo:
        with pytest.raises(errors.RateLimitError) as caught:
            await pleo.installations.get()

    assert caught.value.retry_after == 3.0


# The deadline ----------------------------------------------------------------------------------


async def test_no_sleep_past_the_deadline(make_client: MakeClient, clock: FakeClock) -> None:
    recorder = Recorder([httpx.Response(429, headers={"Retry-After": "30"}), ok_installation()])

    async with make_client(recorder, deadline=clock.deadline_in(10)) as pleo:
        with pytest.raises(errors.DeadlineExceededError) as caught:
            await pleo.installations.get()

    assert clock.sleeps == []
    assert len(recorder.requests) == 1
    assert isinstance(caught.value.__cause__, errors.RateLimitError)


async def test_retries_stop_when_the_backoff_would_cross_the_deadline(
    make_client: MakeClient, clock: FakeClock
) -> None:
    recorder = Recorder([httpx.Response(503)] * 4)

    async with make_client(recorder, deadline=clock.deadline_in(2.5)) as pleo:
        with pytest.raises(errors.DeadlineExceededError):
            await pleo.installations.get()

    assert clock.sleeps == [1.0]  # the next wait (2 s) would end past the deadline
    assert len(recorder.requests) == 2


async def test_no_request_after_the_deadline(make_client: MakeClient, clock: FakeClock) -> None:
    recorder = Recorder([ok_installation()])
    deadline = clock.deadline_in(1)
    clock.now += 2

    async with make_client(recorder, deadline=deadline) as pleo:
        with pytest.raises(errors.DeadlineExceededError):
            await pleo.installations.get()

    assert recorder.requests == []


async def test_request_timeout_is_capped_by_the_time_left(
    make_client: MakeClient, clock: FakeClock
) -> None:
    recorder = Recorder([ok_installation()])

    async with make_client(recorder, deadline=clock.deadline_in(3)) as pleo:
        await pleo.installations.get()

    timeouts = recorder.requests[0].extensions["timeout"]
    assert max(timeouts.values()) == 3.0


# Error mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (422, errors.UnprocessableEntityError),
        (429, errors.RateLimitError),
        (500, errors.InternalServerError),
        (503, errors.InternalServerError),
        (418, errors.APIStatusError),
    ],
)
def test_error_from_response_picks_the_type(status: int, kind: type[errors.APIStatusError]) -> None:
    response = httpx.Response(
        status,
        json={"type": "Oops", "message": "code already exists"},
        headers={"X-Request-Id": "req-123"},
        request=httpx.Request("GET", "https://pleo.test/v1/vendors"),
    )

    error = errors.error_from_response(response, "postVendor")

    assert type(error) is kind
    assert error.status_code == status
    assert error.request_id == "req-123"
    assert error.operation == "postVendor"
    assert error.body == {"type": "Oops", "message": "code already exists"}
    assert "req-123" in str(error)
    assert "code already exists" in str(error)


async def test_request_id_reaches_the_raised_error(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.Response(409, headers={"x-request-id": "abc-42"})])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.ConflictError) as caught:
            await pleo.vendors.create("c", name="Acme", default_currency="DKK")

    assert caught.value.request_id == "abc-42"
    assert "postVendor" in str(caught.value)


async def test_success_without_json_is_a_malformed_response(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.Response(200, text="<html>maintenance</html>")])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.MalformedResponseError):
            await pleo.installations.get()


async def test_missing_data_envelope_is_a_malformed_response(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.Response(200, json={"id": "v1", "name": "x"})])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.MalformedResponseError):
            await pleo.vendors.get("v1")


# Pagination ------------------------------------------------------------------------------------


def page(ids: list[str], *, next_cursor: str | None) -> dict[str, object]:
    return {
        "data": [{"id": tag_id, "code": tag_id, "archived": False} for tag_id in ids],
        "pagination": {
            "hasNextPage": next_cursor is not None,
            "hasPreviousPage": False,
            "endCursor": next_cursor,
            "currentRequestPagination": {"parameters": {}},
        },
    }


async def test_pagination_follows_end_cursor(make_client: MakeClient) -> None:
    recorder = Recorder(
        [
            httpx.Response(200, json=page(["a", "b"], next_cursor="C1")),
            httpx.Response(200, json=page(["c"], next_cursor="C2")),
            httpx.Response(200, json=page(["d"], next_cursor=None)),
        ]
    )

    async with make_client(recorder) as pleo:
        ids = [tag.id async for tag in pleo.tags.list("g1", page_size=2)]

    assert ids == ["a", "b", "c", "d"]
    assert [request.url.params.get("after") for request in recorder.requests] == [None, "C1", "C2"]
    assert all(request.url.params["limit"] == "2" for request in recorder.requests)


async def test_pagination_raises_on_a_repeated_cursor(make_client: MakeClient) -> None:
    recorder = Recorder(
        [
            httpx.Response(200, json=page(["a"], next_cursor="C1")),
            httpx.Response(200, json=page(["b"], next_cursor="C2")),
            httpx.Response(200, json=page(["a"], next_cursor="C1")),
        ]
    )

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.PaginationLoopError):
            _ = [tag async for tag in pleo.tags.list("g1")]

    assert len(recorder.requests) == 3


async def test_pagination_raises_when_the_same_cursor_comes_back() -> None:
    async def fetch(after: str | None) -> Page[Tag]:
        return Page[Tag].model_validate(page(["x"], next_cursor="SAME"))

    with pytest.raises(errors.PaginationLoopError):
        _ = [tag async for tag in follow_cursor(fetch)]


async def test_pagination_raises_on_next_page_without_cursor() -> None:
    async def fetch(after: str | None) -> Page[Tag]:
        body = page(["x"], next_cursor="C")
        body["pagination"] = {"hasNextPage": True, "hasPreviousPage": False}
        return Page[Tag].model_validate(body)

    with pytest.raises(errors.PaginationLoopError):
        _ = [tag async for tag in follow_cursor(fetch)]
