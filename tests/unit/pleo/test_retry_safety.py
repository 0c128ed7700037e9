"""Retry safety: a create is sent again only when Pleo certainly did not act on it.

Pleo has no idempotency keys, so a create resent after a timeout or a 502 may duplicate a record.
The decision table: each kind of failure against a retry-safe operation (a read, a search) and
against a create.
"""

from __future__ import annotations

import ast
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pleo_connector.pleo import errors
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.resources.accounts import AccountInput
from pleo_connector.pleo.retry import Decision, RetryPolicy
from tests.unit.pleo.conftest import API_KEY, FakeClock, Recorder, installation_json

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

MakeClient = Callable[..., PleoClient]
COMPANY = "0b5c3b8e-8d7e-4f7a-9f3e-333333333333"
CLIENT_SOURCES = Path(__file__).resolve().parents[3] / "layers/shared/pleo_connector/pleo"

Failure = Callable[[], httpx.Response | Exception]

# Each kind of failure, and whether it proves that Pleo did not act on the request.
FAILURES: list[tuple[str, Failure, bool]] = [
    ("connect error", lambda: httpx.ConnectError("connection refused"), True),
    ("connect timeout", lambda: httpx.ConnectTimeout("connect timed out"), True),
    ("pool timeout", lambda: httpx.PoolTimeout("no free connection"), True),
    ("read timeout", lambda: httpx.ReadTimeout("read timed out"), False),
    ("write timeout", lambda: httpx.WriteTimeout("write timed out"), False),
    ("read error", lambda: httpx.ReadError("connection reset by peer"), False),
    ("write error", lambda: httpx.WriteError("broken pipe"), False),
    (
        "disconnected after sending",
        lambda: httpx.RemoteProtocolError("Server disconnected without sending a response."),
        False,
    ),
    ("deadline cut the exchange", lambda: TimeoutError(), False),
    ("408", lambda: httpx.Response(408), True),
    ("429", lambda: httpx.Response(429), True),
    ("429 with Retry-After", lambda: httpx.Response(429, headers={"Retry-After": "3"}), True),
    ("500", lambda: httpx.Response(500), False),
    ("502", lambda: httpx.Response(502), False),
    ("503", lambda: httpx.Response(503), False),
    ("503 with Retry-After", lambda: httpx.Response(503, headers={"Retry-After": "3"}), True),
    (
        "503, Retry-After no time",
        lambda: httpx.Response(503, headers={"Retry-After": "soon"}),
        False,
    ),
    ("504", lambda: httpx.Response(504), False),
]
FAILURE_IDS = [name for name, _, _ in FAILURES]


def vendor_json(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": "5f0d8a36-1f6b-4a8e-9a57-444444444444",
        "companyId": COMPANY,
        "name": "Acme",
        "defaultCurrency": "DKK",
        "state": "ACTIVE",
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
    }
    body.update(overrides)
    return body


def empty_page() -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "data": [],
            "pagination": {
                "hasNextPage": False,
                "hasPreviousPage": False,
                "currentRequestPagination": {"parameters": {}},
            },
        },
    )


async def create_vendor(pleo: PleoClient) -> Any:
    return await pleo.vendors.create(COMPANY, name="Acme", default_currency="DKK", code="V1")


# The decision table ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "failure", "not_processed"), FAILURES, ids=FAILURE_IDS)
async def test_a_read_is_retried_after_every_transient_failure(
    make_client: MakeClient, name: str, failure: Failure, not_processed: bool
) -> None:
    recorder = Recorder([failure(), httpx.Response(200, json=installation_json())])

    async with make_client(recorder) as pleo:
        installation = await pleo.installations.get()

    assert installation.status == "ACTIVATED"
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(("name", "failure", "not_processed"), FAILURES, ids=FAILURE_IDS)
async def test_a_search_post_is_retried_after_every_transient_failure(
    make_client: MakeClient, name: str, failure: Failure, not_processed: bool
) -> None:
    recorder = Recorder([failure(), empty_page()])

    async with make_client(recorder) as pleo:
        found = [vendor async for vendor in pleo.vendors.search(COMPANY, codes=["V1"])]

    assert found == []
    assert [request.method for request in recorder.requests] == ["POST", "POST"]


@pytest.mark.parametrize(("name", "failure", "not_processed"), FAILURES, ids=FAILURE_IDS)
async def test_a_create_is_resent_only_when_pleo_certainly_did_not_act_on_it(
    make_client: MakeClient, name: str, failure: Failure, not_processed: bool
) -> None:
    recorder = Recorder([failure(), httpx.Response(201, json={"data": vendor_json()})])

    async with make_client(recorder) as pleo:
        if not_processed:
            vendor = await create_vendor(pleo)
            assert vendor.name == "Acme"
            assert len(recorder.requests) == 2
            return
        with pytest.raises(errors.OutcomeUnknownError) as caught:
            await create_vendor(pleo)

    assert len(recorder.requests) == 1
    assert caught.value.operation == "postVendor"
    assert isinstance(caught.value.cause, errors.APIConnectionError | errors.InternalServerError)
    assert caught.value.__cause__ is caught.value.cause
    assert "postVendor" in str(caught.value)


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (lambda: httpx.Response(429, headers={"Retry-After": "1"}), errors.RateLimitError),
        (lambda: httpx.Response(408), errors.APIStatusError),
        (lambda: httpx.ConnectError("refused"), errors.APIConnectionError),
    ],
    ids=["429", "408", "connect error"],
)
async def test_a_create_whose_retries_run_out_unsent_raises_the_failure_not_outcome_unknown(
    make_client: MakeClient, failure: Failure, kind: type[errors.PleoError]
) -> None:
    recorder = Recorder([failure() for _ in range(4)])

    async with make_client(recorder) as pleo:
        with pytest.raises(kind) as caught:
            await create_vendor(pleo)

    assert not isinstance(caught.value, errors.OutcomeUnknownError)
    assert len(recorder.requests) == 4  # every attempt of the policy


async def test_a_create_after_an_unsent_attempt_still_stops_at_an_unknown_outcome(
    make_client: MakeClient, clock: FakeClock
) -> None:
    recorder = Recorder([httpx.ConnectError("refused"), httpx.Response(429), httpx.ReadTimeout("")])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.OutcomeUnknownError):
            await create_vendor(pleo)

    assert len(recorder.requests) == 3
    assert clock.sleeps == [1.0, 2.0]


async def test_a_create_refused_by_pleo_raises_its_own_error(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.Response(409, json={"type": "conflict", "message": "code exists"})])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.ConflictError):
            await create_vendor(pleo)

    assert len(recorder.requests) == 1


async def test_outcome_unknown_carries_the_answer_and_no_credential(
    make_client: MakeClient,
) -> None:
    recorder = Recorder(
        [
            httpx.Response(
                502,
                json={"message": f"upstream failed for key {API_KEY}"},
                headers={"x-request-id": "req-502"},
            )
        ]
    )

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.OutcomeUnknownError) as caught:
            await create_vendor(pleo)

    assert caught.value.status_code == 502
    assert caught.value.request_id == "req-502"
    assert API_KEY not in f"{caught.value} {caught.value!r} {caught.value.cause}"
    assert "[redacted]" in str(caught.value)


async def test_outcome_unknown_without_an_answer_has_no_status(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.ReadTimeout("read timed out")])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.OutcomeUnknownError) as caught:
            await create_vendor(pleo)

    assert caught.value.status_code is None
    assert caught.value.request_id is None
    assert isinstance(caught.value.cause, errors.APITimeoutError)
    assert isinstance(caught.value.cause.__cause__, httpx.ReadTimeout)


# The declaration: by method, overridden per call ---------------------------------------------


async def send(pleo: PleoClient, method: str, retry_safe: bool | None) -> httpx.Response:
    return await pleo.transport.request(
        method, "/v1/things", operation="someOperation", retry_safe=retry_safe
    )


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
async def test_idempotent_methods_are_retry_safe_by_default(
    make_client: MakeClient, method: str
) -> None:
    recorder = Recorder([httpx.Response(502), httpx.Response(200)])

    async with make_client(recorder) as pleo:
        await send(pleo, method, None)

    assert len(recorder.requests) == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_post_that_declares_nothing_is_not_resent(
    make_client: MakeClient, method: str
) -> None:
    recorder = Recorder([httpx.Response(502), httpx.Response(200)])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.OutcomeUnknownError):
            await send(pleo, method, None)

    assert len(recorder.requests) == 1


async def test_a_post_declared_retry_safe_is_retried(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.Response(504), httpx.Response(200)])

    async with make_client(recorder) as pleo:
        await send(pleo, "POST", True)

    assert len(recorder.requests) == 2


async def test_a_get_declared_unsafe_is_not_resent(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.Response(504), httpx.Response(200)])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.OutcomeUnknownError):
            await send(pleo, "GET", False)

    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("status", "retry_safe", "retry_after", "decision"),
    [
        (408, False, None, Decision.RETRY),
        (429, False, None, Decision.RETRY),
        (503, False, 0.0, Decision.RETRY),
        (503, False, None, Decision.OUTCOME_UNKNOWN),
        (502, False, 5.0, Decision.OUTCOME_UNKNOWN),
        (502, True, None, Decision.RETRY),
        (404, False, None, Decision.FAIL),
        (404, True, None, Decision.FAIL),
    ],
)
def test_decide_for_answers(
    status: int, retry_safe: bool, retry_after: float | None, decision: Decision
) -> None:
    policy = RetryPolicy(max_attempts=3)

    assert policy.decide(1, status, retry_safe=retry_safe, retry_after=retry_after) is decision


def test_decide_gives_up_unsent_failures_when_attempts_run_out() -> None:
    policy = RetryPolicy(max_attempts=3)

    assert policy.decide(2, None, retry_safe=False, sent=False) is Decision.RETRY
    assert policy.decide(3, None, retry_safe=False, sent=False) is Decision.FAIL
    assert policy.decide(3, None, retry_safe=False, sent=True) is Decision.OUTCOME_UNKNOWN
    assert policy.decide(3, 502, retry_safe=True) is Decision.FAIL


# What each POST operation of the client declares -----------------------------------------------

Call = Callable[[PleoClient], Awaitable[object]]


async def drain(iterator: Any) -> list[object]:
    return [item async for item in iterator]


# operationId -> (a call of it, whether it is retry-safe). Creates are not; searches only read;
# archive and activate set a state, so twice is the same as once.
POST_OPERATIONS: dict[str, tuple[Call, bool]] = {
    "postVendor": (create_vendor, False),
    "createAccountV1": (
        lambda pleo: pleo.accounts.create(COMPANY, AccountInput(external_id="4000", name="S")),
        False,
    ),
    "createAccountsBatchV1": (
        lambda pleo: pleo.accounts.batch(COMPANY, [AccountInput(external_id="4000", name="S")]),
        False,
    ),
    "createClientInstallation": (lambda pleo: pleo.installations.create("ACTIVATED"), False),
    "createTagGroup": (lambda pleo: pleo.tag_groups.create(COMPANY, code="D", name="D"), False),
    "createTag": (lambda pleo: pleo.tags.create("group-1", code="T1"), False),
    "createTaxCode": (
        lambda pleo: pleo.tax_codes.create(COMPANY, name="VAT", rate=0.25, type="inclusive"),
        False,
    ),
    "searchVendors": (lambda pleo: drain(pleo.vendors.search(COMPANY)), True),
    "searchAccountsV1": (lambda pleo: drain(pleo.accounts.search(COMPANY)), True),
    "searchTagsPost": (lambda pleo: drain(pleo.tags.search(COMPANY)), True),
    "getTaxCodes": (lambda pleo: drain(pleo.tax_codes.search(COMPANY)), True),
    "bulkArchiveTags": (lambda pleo: pleo.tags.archive(COMPANY, ["tag-1"]), True),
    "archiveVendorById": (lambda pleo: pleo.vendors.archive("vendor-1"), True),
    "activateVendor": (lambda pleo: pleo.vendors.activate("vendor-1", external_id="E1"), True),
    "activateMyInstallation": (lambda pleo: pleo.installations.activate(), True),
}


@pytest.mark.parametrize("operation", sorted(POST_OPERATIONS))
async def test_each_post_operation_is_retried_as_far_as_it_is_safe(
    make_client: MakeClient, operation: str
) -> None:
    call, retry_safe = POST_OPERATIONS[operation]
    # A 502 first (the outcome is open), then a final 404 that ends any retrying.
    recorder = Recorder([httpx.Response(502), httpx.Response(404)])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.NotFoundError if retry_safe else errors.OutcomeUnknownError):
            await call(pleo)

    assert len(recorder.requests) == (2 if retry_safe else 1)
    assert {request.method for request in recorder.requests} == {"POST"}


def transport_calls() -> list[tuple[str, ast.Call]]:
    """Every call of a transport method in the client's source, with its file's name."""
    methods = {"request", "request_model", "request_list", "paginate", "fetch_page"}
    found = []
    for source in sorted(CLIENT_SOURCES.rglob("*.py")):
        if source.name == "transport.py":
            continue
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in methods
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr in ("_transport", "transport")
            ):
                found.append((source.name, node))
    return found


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def test_every_post_in_the_client_declares_its_retry_safety_and_is_in_the_table() -> None:
    declared: dict[str, bool] = {}
    for filename, call in transport_calls():
        if not any(isinstance(a, ast.Constant) and a.value in ("POST", "PATCH") for a in call.args):
            continue
        operation, retry_safe = keyword(call, "operation"), keyword(call, "retry_safe")
        assert isinstance(operation, ast.Constant), f"{filename}: a POST without an operation"
        assert isinstance(retry_safe, ast.Constant), (
            f"{filename}: {operation.value!r} lacks retry_safe"
        )
        declared[str(operation.value)] = bool(retry_safe.value)

    assert declared == {name: safe for name, (_, safe) in POST_OPERATIONS.items()}


def test_no_path_is_built_outside_api_path() -> None:
    calls = transport_calls()
    assert len(calls) > 30  # the scan sees the resources

    for filename, call in calls:
        index = 1 if isinstance(call.func, ast.Attribute) and call.func.attr == "request" else 2
        path = call.args[index]
        built_by_helper = (
            isinstance(path, ast.Call)
            and isinstance(path.func, ast.Name)
            and path.func.id == "api_path"
        )
        literal = isinstance(path, ast.Constant | ast.Name)
        assert built_by_helper or literal, f"{filename}:{call.lineno}: {ast.unparse(path)}"
