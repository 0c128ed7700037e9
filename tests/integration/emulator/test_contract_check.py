"""The contract check itself: it catches what breaks Pleo's documents, and the emulator serves
only documented operations."""

from __future__ import annotations

import json

import httpx
import pytest

from local.pleo_emulator.app import Emulator
from tests.integration.emulator.conftest import _check_contract
from tests.support.openapi_contract import ContractError, assert_conforms, contract

pytestmark = pytest.mark.integration

VENDOR = {
    "id": "6f1c2a9e-3b7d-4c5e-9a1f-2d8b4e6c0a11",
    "companyId": "6f1c2a9e-3b7d-4c5e-9a1f-2d8b4e6c0a11",
    "name": "Paper Co",
    "defaultCurrency": "DKK",
    "state": "ACTIVE",
}


def vendor_exchange(
    payload: object, *, status: int = 201, content_type: str = "application/json"
) -> httpx.Response:
    request = httpx.Request(
        "POST",
        "http://127.0.0.1:1/v1/vendors",
        json={"companyId": VENDOR["companyId"], "name": "Paper Co", "defaultCurrency": "DKK"},
        headers={"Authorization": "Bearer token"},
    )
    return httpx.Response(
        status,
        content=json.dumps(payload).encode(),
        headers={"Content-Type": content_type},
        request=request,
    )


def test_a_conforming_exchange_passes() -> None:
    operation = assert_conforms(vendor_exchange({"data": VENDOR}))

    assert operation.name == "POST /v1/vendors"
    assert operation.document == "vendors-34.17.0.yaml"


@pytest.mark.parametrize(
    "payload",
    [
        {"data": {**VENDOR, "state": "GONE"}},
        {"data": {k: v for k, v in VENDOR.items() if k != "name"}},
        {"data": {**VENDOR, "id": "not-a-uuid"}},
        VENDOR,
    ],
)
def test_a_response_that_breaks_the_schema_is_caught(payload: object) -> None:
    with pytest.raises(ContractError):
        assert_conforms(vendor_exchange(payload))


def test_a_wrong_media_type_is_caught() -> None:
    with pytest.raises(ContractError):
        assert_conforms(vendor_exchange({"data": VENDOR}, content_type="text/plain"))


def test_a_request_without_credentials_is_caught() -> None:
    exchange = vendor_exchange({"data": VENDOR})
    del exchange.request.headers["Authorization"]

    with pytest.raises(ContractError):
        assert_conforms(exchange)


def test_the_fixture_hook_checks_every_documented_exchange() -> None:
    with pytest.raises(ContractError):
        _check_contract(strict_request=True)(vendor_exchange({"data": {**VENDOR, "state": "?"}}))


def test_undocumented_statuses_have_no_schema_to_break() -> None:
    assert_conforms(vendor_exchange({"type": "unauthorized", "message": "no"}, status=401))


def test_every_api_route_of_the_emulator_is_a_documented_operation() -> None:
    routes = [r for r in Emulator("http://127.0.0.1:1").router._routes if r.kind == "api"]

    undocumented = []
    for route in routes:
        sample = route.template.replace("{", "x").replace("}", "")
        operation = contract().find(route.method, sample)
        if operation is None or operation.path_template != route.template:
            undocumented.append(route.operation)

    assert undocumented == []
    assert len(routes) == 39
