"""The transport's failure handling: retries, Retry-After, the deadline, errors, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from pleo_connector.pleo import errors
from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.models import Page, Tag
from pleo_connector.pleo.transport import follow_cursor
from tests.unit.pleo.conftest import (
    API_KEY,
    API_URL,
    FakeClock,
    PinnedJitter,
    Recorder,
    installation_json,
)

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


# Pages at once, by offset ----------------------------------------------------------------------


class Listing:
    """A list as Pleo serves it: pages by `offset` or after a cursor (a record's id), with the
    `total`. `then` runs once, after the first page: the list changing while it is read."""

    def __init__(
        self,
        ids: list[str],
        *,
        with_total: bool = True,
        then: Callable[[list[str]], None] | None = None,
        refuse_offset: int | None = None,
    ) -> None:
        self.ids = ids
        self.with_total = with_total
        self.then = then
        self.refuse_offset = refuse_offset
        self.in_flight = 0
        self.most_in_flight = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = int(params["limit"])
        after = params.get("after")
        start = self.ids.index(after) + 1 if after else int(params.get("offset", 0))
        if start == self.refuse_offset:
            return httpx.Response(404, json={"type": "not_found", "message": "gone"})
        chunk = self.ids[start : start + limit]
        info: dict[str, object] = {
            "hasNextPage": start + len(chunk) < len(self.ids),
            "hasPreviousPage": start > 0,
            "endCursor": chunk[-1] if chunk else None,
            "currentRequestPagination": {"parameters": {}},
        }
        if self.with_total:
            info["total"] = len(self.ids)
        body = {
            "data": [{"id": i, "code": i, "archived": False} for i in chunk],
            "pagination": info,
        }
        if self.then is not None:
            then, self.then = self.then, None
            then(self.ids)
        return httpx.Response(200, json=body)

    async def answer(self, request: httpx.Request) -> httpx.Response:
        """As `__call__`, but handing the loop back a few times, so requests sent together are
        seen in flight together."""
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        self.in_flight -= 1
        return self(request)


def paging(recorder: Recorder) -> list[tuple[str | None, str | None]]:
    """(after, offset) of every request, in the order sent."""
    return [(r.url.params.get("after"), r.url.params.get("offset")) for r in recorder.requests]


async def test_pages_at_once_reads_the_pages_after_the_first_by_offset_one_request_each(
    make_client: MakeClient,
) -> None:
    ids = [f"t{n}" for n in range(9)]
    recorder = Recorder(handler=Listing(list(ids)))

    async with make_client(recorder) as pleo:
        read = [tag.id async for tag in pleo.tags.search("c1", page_size=2, pages_at_once=3)]

    assert read == ids
    assert paging(recorder) == [(None, None), (None, "2"), (None, "4"), (None, "6"), (None, "8")]


async def test_pages_at_once_keeps_that_many_pages_in_flight_and_no_more() -> None:
    listing = Listing([f"t{n}" for n in range(20)])
    http = httpx.AsyncClient(transport=httpx.MockTransport(listing.answer))

    async with PleoClient(API_URL, ApiKeyAuth(API_KEY), http=http) as pleo:
        read = [tag.id async for tag in pleo.tags.search("c1", page_size=2, pages_at_once=3)]
    await http.aclose()

    assert read == listing.ids
    assert listing.most_in_flight == 3


async def test_without_pages_at_once_the_pages_follow_the_cursor(make_client: MakeClient) -> None:
    recorder = Recorder(handler=Listing([f"t{n}" for n in range(5)]))

    async with make_client(recorder) as pleo:
        read = [tag.id async for tag in pleo.tags.search("c1", page_size=2)]

    assert read == [f"t{n}" for n in range(5)]
    assert paging(recorder) == [(None, None), ("t1", None), ("t3", None)]


async def test_a_list_without_a_total_is_read_on_by_cursor_from_the_first_page(
    make_client: MakeClient,
) -> None:
    recorder = Recorder(handler=Listing([f"t{n}" for n in range(5)], with_total=False))

    async with make_client(recorder) as pleo:
        read = [tag.id async for tag in pleo.tags.search("c1", page_size=2, pages_at_once=4)]

    assert read == [f"t{n}" for n in range(5)]
    assert paging(recorder) == [(None, None), ("t1", None), ("t3", None)]


def added_first(ids: list[str]) -> None:
    ids.insert(0, "new")


def added_first_and_last_removed(ids: list[str]) -> None:
    ids.insert(0, "new")
    ids.pop()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # The total moves: every later page is dropped, the cursor goes on after t1.
        (added_first, [f"t{n}" for n in range(9)]),
        # The total stays, but t1 comes again at offset 2: dropped all the same.
        (added_first_and_last_removed, [f"t{n}" for n in range(8)]),
    ],
)
async def test_a_list_that_moves_while_read_goes_on_by_cursor_with_no_record_twice(
    make_client: MakeClient, change: Callable[[list[str]], None], expected: list[str]
) -> None:
    recorder = Recorder(handler=Listing([f"t{n}" for n in range(9)], then=change))

    async with make_client(recorder) as pleo:
        read = [tag.id async for tag in pleo.tags.search("c1", page_size=2, pages_at_once=2)]

    assert read == expected
    # The pages fetched ahead by offset are dropped; the read goes on after the first page.
    assert paging(recorder)[:3] == [(None, None), (None, "2"), (None, "4")]
    assert paging(recorder)[3] == ("t1", None)


async def test_a_page_that_fails_fails_the_read_with_its_own_error(
    make_client: MakeClient,
) -> None:
    recorder = Recorder(handler=Listing([f"t{n}" for n in range(12)], refuse_offset=4))

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.NotFoundError):
            _ = [tag async for tag in pleo.tags.search("c1", page_size=2, pages_at_once=3)]
