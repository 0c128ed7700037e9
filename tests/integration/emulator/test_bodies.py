"""A body the emulator cannot read is a 400 with a JSON error, whatever is wrong with it: not JSON,
or not even UTF-8 text (openapi-core cannot quote such a body in its own error message)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.emulator import DEFAULT_COMPANY_ID, RunningEmulator

if TYPE_CHECKING:
    import httpx

    from tests.integration.emulator.conftest import ApiFactory

pytestmark = pytest.mark.integration

BODY_TAKING = [
    ("POST", "/v1/vendors", {}),
    ("POST", "/v0/tag-groups", {"company_id": DEFAULT_COMPANY_ID}),
    ("POST", "/v0/tax-codes:search", {"company_id": DEFAULT_COMPANY_ID}),
    ("POST", "/v1/chart-of-accounts", {}),
    ("PUT", "/v1/installations/me", {}),
]


@pytest.fixture
def client(emulator: RunningEmulator, api: ApiFactory) -> httpx.Client:
    # lenient: the request is broken on purpose; the response is still checked.
    return api(api_key=emulator.control.issue_api_key(), lenient=True)


@pytest.mark.parametrize(("method", "path", "params"), BODY_TAKING)
@pytest.mark.parametrize(
    ("body", "reason"), [(b"\xff", "not UTF-8"), (b"{", "Failed to deserialize")]
)
def test_an_unreadable_body_is_a_400_with_a_json_error(
    client: httpx.Client,
    method: str,
    path: str,
    params: dict[str, str],
    body: bytes,
    reason: str,
) -> None:
    response = client.request(
        method, path, params=params, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "bad_request"
    assert reason in error["message"]
