"""No credential reaches an exception message or a log line, even when Pleo echoes it."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

import httpx
import pytest

from pleo_connector.pleo import errors
from pleo_connector.pleo.auth import ApiKeyAuth, BearerAuth
from tests.unit.pleo.conftest import API_KEY, FakeClock, PinnedJitter, Recorder

if TYPE_CHECKING:
    import io
    from collections.abc import Callable

    from pleo_connector.pleo.client import PleoClient

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

ACCESS_TOKEN = "eyJhbGciOi.access-token-7c6b5a4d3e"


async def provide_token() -> str:
    return ACCESS_TOKEN


def echo_credentials(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """A server that puts the Authorization header it got into its error message."""

    def handler(request: httpx.Request) -> httpx.Response:
        header = request.headers["Authorization"]
        return httpx.Response(
            status,
            json={"message": f"credential {header} is not valid", "type": "Unauthorized"},
            headers={"x-request-id": "req-9"},
        )

    return handler


@pytest.mark.parametrize(
    ("auth", "secrets"),
    [
        (BearerAuth(provide_token), [ACCESS_TOKEN]),
        (ApiKeyAuth(API_KEY), [API_KEY, base64.b64encode(f"{API_KEY}:".encode()).decode()]),
    ],
    ids=["bearer", "api-key"],
)
@pytest.mark.parametrize("status", [401, 503])
async def test_credentials_stay_out_of_errors_and_logs(
    make_client: Callable[..., PleoClient],
    caplog: pytest.LogCaptureFixture,
    logged: io.StringIO,
    auth: BearerAuth | ApiKeyAuth,
    secrets: list[str],
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder(handler=echo_credentials(status))

    async with make_client(recorder, auth=auth, retry=PinnedJitter(max_attempts=2)) as pleo:
        with pytest.raises(errors.APIStatusError) as caught:
            await pleo.vendors.get("v-1")

    text = f"{caught.value} {caught.value!r} {caplog.text} {logged.getvalue()} {auth!r}"
    assert "req-9" in str(caught.value)
    assert '"request_id":"req-9"' in logged.getvalue().replace(" ", "")  # the keys are there
    assert recorder.requests[0].headers["Authorization"].endswith(secrets[-1])  # it was sent
    for secret in secrets:
        assert secret not in text


async def test_deadline_error_after_echoed_credential_stays_clean(
    make_client: Callable[..., PleoClient],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    logged: io.StringIO,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder(handler=echo_credentials(503))

    async with make_client(
        recorder, auth=BearerAuth(provide_token), deadline=clock.deadline_in(0.5)
    ) as pleo:
        with pytest.raises(errors.DeadlineExceededError) as caught:
            await pleo.vendors.get("v-1")

    assert "Pleo answered" in logged.getvalue()
    assert ACCESS_TOKEN not in f"{caught.value} {caplog.text} {logged.getvalue()}"


async def test_connection_errors_name_no_credential(
    make_client: Callable[..., PleoClient],
    caplog: pytest.LogCaptureFixture,
    logged: io.StringIO,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder([httpx.ConnectError("connection refused")])

    async with make_client(
        recorder, auth=BearerAuth(provide_token), retry=PinnedJitter(max_attempts=1)
    ) as pleo:
        with pytest.raises(errors.APIConnectionError) as caught:
            await pleo.installations.get()

    assert "Pleo request failed" in logged.getvalue()
    assert (
        ACCESS_TOKEN
        not in f"{caught.value} {caught.value.__cause__} {caplog.text} {logged.getvalue()}"
    )


async def test_bearer_auth_asks_the_provider_before_each_request(
    make_client: Callable[..., PleoClient],
) -> None:
    issued = iter(["token-one", "token-two"])

    async def rotating_provider() -> str:
        return next(issued)

    recorder = Recorder([httpx.Response(503), httpx.Response(200, json={"data": {"id": "v"}})])

    async with make_client(recorder, auth=BearerAuth(rotating_provider)) as pleo:
        await pleo.vendors.get("v")

    assert [r.headers["Authorization"] for r in recorder.requests] == [
        "Bearer token-one",
        "Bearer token-two",
    ]


async def test_api_key_is_basic_with_an_empty_password(
    make_client: Callable[..., PleoClient],
) -> None:
    recorder = Recorder([httpx.Response(200, json={"data": {"id": "v"}})])

    async with make_client(recorder, auth=ApiKeyAuth("my-key")) as pleo:
        await pleo.vendors.get("v")

    expected = base64.b64encode(b"my-key:").decode()
    assert recorder.requests[0].headers["Authorization"] == f"Basic {expected}"
