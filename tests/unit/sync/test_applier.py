"""The applier's pieces that need no Pleo: which failures stop a run, how ownership is batched, and
that a plan without writes sends nothing (against the emulator: tests/integration/sync)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from pleo_connector.aio import run
from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.errors import (
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DeadlineExceededError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
)
from pleo_connector.pleo.retry import Deadline
from pleo_connector.store.errors import StoreUnavailableError
from pleo_connector.sync.applier import (
    OWNERSHIP_BATCH,
    _OwnershipLog,
    _Severity,
    _severity,
    apply_plan,
)
from pleo_connector.sync.model import Action, Change, Kind, Plan

if TYPE_CHECKING:
    from collections.abc import Iterable

pytestmark = pytest.mark.unit


class Store:
    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[tuple[Kind, str]]] = []
        self.fail = fail

    def owned(self, installation_id: str) -> set[tuple[Kind, str]]:
        return {entry for batch in self.batches for entry in batch}

    def record(self, installation_id: str, entries: Iterable[tuple[Kind, str]]) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreUnavailableError("throttled")
        self.batches.append(list(entries))


def no_pleo(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.method} {request.url}")


def client() -> PleoClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(no_pleo))
    return PleoClient("https://pleo.test", ApiKeyAuth("key-123456"), http=http)


def status(kind: type[APIStatusError], code: int) -> APIStatusError:
    return kind("op: HTTP", status_code=code)


@pytest.mark.parametrize(
    ("error", "severity"),
    [
        (status(BadRequestError, 400), _Severity.RECORD),
        (status(NotFoundError, 404), _Severity.RECORD),  # the record, not the installation
        (status(ConflictError, 409), _Severity.RECORD),
        (status(PermissionDeniedError, 403), _Severity.RECORD),
        (status(APIStatusError, 422), _Severity.RECORD),
        (MalformedResponseError("op: not JSON"), _Severity.RECORD),
        (status(RateLimitError, 429), _Severity.HALT),
        (status(InternalServerError, 503), _Severity.HALT),
        (status(APIStatusError, 408), _Severity.HALT),
        (APITimeoutError("op: no answer"), _Severity.HALT),
        (DeadlineExceededError("late"), _Severity.HALT),
        (
            OutcomeUnknownError("op", operation="op", cause=APITimeoutError("t")),
            _Severity.HALT,
        ),
        (status(AuthenticationError, 401), _Severity.FATAL),
        (StoreUnavailableError("throttled"), _Severity.FATAL),
        (KeyError("code"), _Severity.FATAL),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_what_a_failure_does_to_the_run(error: BaseException, severity: _Severity) -> None:
    assert _severity(error) is severity


def test_ownership_is_written_25_at_a_time_and_the_rest_on_flush() -> None:
    store = Store()
    log = _OwnershipLog(store, "inst")

    async def add() -> None:
        for n in range(OWNERSHIP_BATCH + 3):
            await log.add([(Kind.TAG, f"t{n}")])
        assert [len(batch) for batch in store.batches] == [OWNERSHIP_BATCH]
        await log.flush()

    run(add())

    assert [len(batch) for batch in store.batches] == [OWNERSHIP_BATCH, 3]


def test_a_batch_the_store_refused_is_kept_for_the_next_flush() -> None:
    store = Store(fail=1)
    log = _OwnershipLog(store, "inst")

    async def add() -> None:
        with pytest.raises(StoreUnavailableError):
            await log.add([(Kind.TAG, f"t{n}") for n in range(OWNERSHIP_BATCH)])
        await log.flush()

    run(add())

    assert store.owned("inst") == {(Kind.TAG, f"t{n}") for n in range(OWNERSHIP_BATCH)}


ADOPTIONS = Plan(
    (
        Change(Kind.VENDOR, Action.ADOPT, "v-1", pleo_id="p1"),
        Change(Kind.ACCOUNT, Action.ADOPT, "6100", pleo_id="p2"),
    )
)


def test_a_plan_of_adoptions_records_ownership_in_one_write_and_sends_nothing() -> None:
    store = Store()

    async def apply() -> None:
        async with client() as pleo:
            result = await apply_plan(ADOPTIONS, pleo, "company", store, "inst")
        assert (result.complete, result.requests) == (True, 0)
        assert result.applied == {(Kind.VENDOR, Action.ADOPT): 1, (Kind.ACCOUNT, Action.ADOPT): 1}

    run(apply())

    assert store.batches == [[(Kind.VENDOR, "p1"), (Kind.ACCOUNT, "p2")]]


def test_past_the_deadline_nothing_is_sent_and_the_run_is_incomplete() -> None:
    store = Store()
    late = Deadline(at=0.0, clock=lambda: 1.0)
    plan = Plan((*ADOPTIONS.changes, Change(Kind.TAX_CODE, Action.CREATE, "s25", {"code": "S25"})))

    async def apply() -> None:
        async with client() as pleo:
            result = await apply_plan(plan, pleo, "company", store, "inst", deadline=late)
            assert pleo.deadline is None  # the client's own deadline is given back
        assert (result.complete, result.stopped_by, result.requests) == (False, None, 0)
        assert (Kind.TAX_CODE, Action.CREATE) not in result.applied

    run(apply())

    assert store.owned("inst") == {(Kind.VENDOR, "p1"), (Kind.ACCOUNT, "p2")}


def test_a_store_that_fails_to_record_stops_the_run_with_its_error_after_one_more_try() -> None:
    store = Store(fail=1)

    async def apply() -> None:
        async with client() as pleo:
            await apply_plan(ADOPTIONS, pleo, "company", store, "inst")

    with pytest.raises(StoreUnavailableError):
        run(apply())
    assert store.owned("inst") == {(Kind.VENDOR, "p1"), (Kind.ACCOUNT, "p2")}
