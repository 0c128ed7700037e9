"""Clients for the emulator that hold every exchange to Pleo's OpenAPI documents."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.openapi_contract import assert_conforms, operation_of, response_errors

if TYPE_CHECKING:
    from tests.support.emulator import RunningEmulator

ApiFactory = Callable[..., httpx.Client]


def _check_contract(strict_request: bool) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        if operation_of(response.request) is None:
            return  # OAuth and control paths: Pleo publishes no document for them
        response.read()
        if strict_request:
            assert_conforms(response)
        else:
            errors = response_errors(response)
            assert not errors, errors

    return check


@pytest.fixture
def api(emulator: RunningEmulator) -> Iterator[ApiFactory]:
    """`api(bearer=...)` or `api(api_key=...)`: an httpx client whose every /v0 and /v1 exchange
    is validated, request and response, against Pleo's documents. `lenient=True` checks only the
    response (for tests that send a broken request on purpose)."""
    clients: list[httpx.Client] = []

    def make(
        *, bearer: str | None = None, api_key: str | None = None, lenient: bool = False
    ) -> httpx.Client:
        auth: httpx.Auth | None = None
        headers = {}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if api_key is not None:
            auth = httpx.BasicAuth(api_key, "")
        client = httpx.Client(
            base_url=emulator.url,
            auth=auth,
            headers=headers,
            timeout=10,
            event_hooks={"response": [_check_contract(strict_request=not lenient)]},
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
