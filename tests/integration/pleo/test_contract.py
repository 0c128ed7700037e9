"""Contract tests: every operation the Pleo client uses, driven against the emulator, with the
request and the response of every exchange validated against Pleo's published OpenAPI documents.

`SCENARIOS` holds one scenario per operation (keyed by Pleo's operationId); the last test proves
that the client calls no operation without one.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pleo_connector.pleo.auth import BearerAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.resources.accounts import AccountInput
from pleo_connector.vocabulary import InstallationStatus
from tests.integration.pleo.conftest import Exchanges, client_for
from tests.support.emulator import DEFAULT_COMPANY_ID, RunningEmulator
from tests.support.openapi_contract import assert_conforms, contract, operation_of

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

COMPANY = DEFAULT_COMPANY_ID
CLIENT_SOURCES = Path(__file__).resolve().parents[3] / "layers/shared/pleo_connector/pleo"

Scenario = Callable[[PleoClient], Awaitable[None]]


async def _installed(pleo: PleoClient) -> None:
    await pleo.installations.create(InstallationStatus.AUTHORIZED, metadata={"app": {"v": 1}})


async def get_installation(pleo: PleoClient) -> None:
    await _installed(pleo)
    installation = await pleo.installations.get()
    assert installation.company_id == COMPANY


async def create_installation(pleo: PleoClient) -> None:
    created = await pleo.installations.create(
        InstallationStatus.ACTIVATED, metadata={"connector": {"version": 1}}
    )
    assert created.status is InstallationStatus.ACTIVATED


async def update_installation(pleo: PleoClient) -> None:
    await _installed(pleo)
    await pleo.installations.update(InstallationStatus.ERROR, error_code="AUTH_ERROR")
    updated = await pleo.installations.update_metadata(
        lambda metadata: {**metadata, "settings": {"tags": ["DEPT"]}}
    )
    assert updated.status is InstallationStatus.ERROR
    assert updated.metadata == {"settings": {"tags": ["DEPT"]}}


async def activate_installation(pleo: PleoClient) -> None:
    await _installed(pleo)
    activated = await pleo.installations.activate()
    assert activated.status is InstallationStatus.ACTIVATED


async def delete_installation(pleo: PleoClient) -> None:
    await _installed(pleo)
    await pleo.installations.delete()


async def introspect(pleo: PleoClient) -> None:
    introspection = await pleo.introspect()
    assert introspection.company_id == COMPANY


async def _group(pleo: PleoClient, code: str = "DEPT") -> str:
    group = await pleo.tag_groups.create(COMPANY, code=code, name="Department", metadata={})
    return group.id


async def list_tag_groups(pleo: PleoClient) -> None:
    await _group(pleo)
    groups = await pleo.tag_groups.list(COMPANY, include_archived=True, include_tags_count=True)
    assert [group.code for group in groups] == ["DEPT"]


async def create_tag_group(pleo: PleoClient) -> None:
    await _group(pleo)


async def get_tag_group(pleo: PleoClient) -> None:
    group = await pleo.tag_groups.get(await _group(pleo))
    assert group.code == "DEPT"


async def update_tag_group(pleo: PleoClient) -> None:
    group_id = await _group(pleo)
    updated = await pleo.tag_groups.update(
        group_id, code="DEPT", name="Departments", archived=True, metadata={"source": "erp"}
    )
    assert updated.archived


async def _tags(pleo: PleoClient, count: int) -> tuple[str, list[str]]:
    group_id = await _group(pleo)
    ids = [
        (await pleo.tags.create(group_id, code=f"T{n:03}", name=f"Tag {n}")).id
        for n in range(count)
    ]
    return group_id, ids


async def list_tags(pleo: PleoClient) -> None:
    group_id, ids = await _tags(pleo, 5)
    listed = [tag.id async for tag in pleo.tags.list(group_id, page_size=2)]
    assert sorted(listed) == sorted(ids)  # three pages, followed by endCursor


async def create_tag(pleo: PleoClient) -> None:
    await _tags(pleo, 1)


async def get_tag(pleo: PleoClient) -> None:
    _, (tag_id,) = await _tags(pleo, 1)
    assert (await pleo.tags.get(tag_id)).code == "T000"


async def update_tag(pleo: PleoClient) -> None:
    _, (tag_id,) = await _tags(pleo, 1)
    updated = await pleo.tags.update(tag_id, code="T000", name="Renamed", archived=True)
    assert updated.archived


async def search_tags(pleo: PleoClient) -> None:
    group_id, ids = await _tags(pleo, 3)
    found = [
        tag.id
        async for tag in pleo.tags.search(
            COMPANY, tag_group_ids=[group_id], include_archived=True, page_size=2
        )
    ]
    assert sorted(found) == sorted(ids)


async def archive_tags(pleo: PleoClient) -> None:
    _, ids = await _tags(pleo, 3)
    archived = await pleo.tags.archive(COMPANY, ids)
    assert all(tag.archived for tag in archived)
    restored = await pleo.tags.archive(COMPANY, ids[:1], archived=False)
    assert not restored[0].archived


async def _tax_code(pleo: PleoClient) -> str:
    created = await pleo.tax_codes.create(
        COMPANY, name="VAT 25", rate=0.25, type="inclusive", code="V25"
    )
    return created.id


async def create_tax_code(pleo: PleoClient) -> None:
    await _tax_code(pleo)


async def get_tax_code(pleo: PleoClient) -> None:
    assert (await pleo.tax_codes.get(await _tax_code(pleo))).code == "V25"


async def update_tax_code(pleo: PleoClient) -> None:
    updated = await pleo.tax_codes.update(
        await _tax_code(pleo),
        company_id=COMPANY,
        name="VAT 25 %",
        rate=0.25,
        type="inclusive",
        archived=True,
        code="V25",
    )
    assert updated.archived


async def search_tax_codes(pleo: PleoClient) -> None:
    tax_code_id = await _tax_code(pleo)
    found = [t.id async for t in pleo.tax_codes.search(COMPANY, code="V25", page_size=10)]
    assert found == [tax_code_id]


async def _vendor(pleo: PleoClient) -> str:
    created = await pleo.vendors.create(
        COMPANY,
        name="Acme Supplies",
        default_currency="DKK",
        code="V-100",
        external_id="V-100",
        country="DK",
    )
    return created.id


async def create_vendor(pleo: PleoClient) -> None:
    await _vendor(pleo)


async def get_vendor(pleo: PleoClient) -> None:
    assert (await pleo.vendors.get(await _vendor(pleo))).code == "V-100"


async def update_vendor(pleo: PleoClient) -> None:
    updated = await pleo.vendors.update(
        await _vendor(pleo),
        company_id=COMPANY,
        name="Acme Supplies A/S",
        default_currency="DKK",
        external_id="V-100",
        state="ACTIVE",
        code="V-100",
    )
    assert updated.name == "Acme Supplies A/S"


async def archive_vendor(pleo: PleoClient) -> None:
    vendor_id = await _vendor(pleo)
    await pleo.vendors.archive(vendor_id)
    assert (await pleo.vendors.get(vendor_id)).state == "ARCHIVED"


async def activate_vendor(pleo: PleoClient) -> None:
    vendor_id = await _vendor(pleo)
    await pleo.vendors.archive(vendor_id)
    await pleo.vendors.activate(vendor_id, external_id="V-100", code="V-100")
    assert (await pleo.vendors.get(vendor_id)).state == "ACTIVE"


async def search_vendors(pleo: PleoClient) -> None:
    vendor_id = await _vendor(pleo)
    found = [v.id async for v in pleo.vendors.search(COMPANY, codes=["V-100"], states=["ACTIVE"])]
    assert found == [vendor_id]


async def _account(pleo: PleoClient) -> str:
    created = await pleo.accounts.create(
        COMPANY, AccountInput(external_id="4000", name="Sales", code="4000")
    )
    return created.id


async def create_account(pleo: PleoClient) -> None:
    await _account(pleo)


async def batch_accounts(pleo: PleoClient) -> None:
    result = await pleo.accounts.batch(
        COMPANY,
        [AccountInput(external_id=str(n), name=f"Account {n}", code=str(n)) for n in range(5)],
    )
    assert len(result.created) == 5


async def get_account(pleo: PleoClient) -> None:
    assert (await pleo.accounts.get(await _account(pleo))).external_id == "4000"


async def update_account(pleo: PleoClient) -> None:
    updated = await pleo.accounts.update(
        await _account(pleo), name="Sales DK", archived=True, code="4000"
    )
    assert updated.archived


async def search_accounts(pleo: PleoClient) -> None:
    account_id = await _account(pleo)
    found = [a.id async for a in pleo.accounts.search(COMPANY, codes=["4000"], page_size=5)]
    assert found == [account_id]


async def get_company(pleo: PleoClient) -> None:
    assert (await pleo.companies.get(COMPANY)).id == COMPANY


async def list_companies(pleo: PleoClient) -> None:
    assert [c.id async for c in pleo.companies.list()] == [COMPANY]


SCENARIOS: dict[str, Scenario] = {
    "getClientInstallation": get_installation,
    "createClientInstallation": create_installation,
    "updateClientInstallation": update_installation,
    "activateMyInstallation": activate_installation,
    "deleteClientInstallation": delete_installation,
    "introspect": introspect,
    "getTagGroups": list_tag_groups,
    "createTagGroup": create_tag_group,
    "getTagGroup": get_tag_group,
    "updateTagGroup": update_tag_group,
    "getTags": list_tags,
    "createTag": create_tag,
    "getTag": get_tag,
    "updateTag": update_tag,
    "searchTagsPost": search_tags,
    "bulkArchiveTags": archive_tags,
    "createTaxCode": create_tax_code,
    "getTaxCode": get_tax_code,
    "updateTaxCode": update_tax_code,
    "getTaxCodes": search_tax_codes,
    "postVendor": create_vendor,
    "getVendorById": get_vendor,
    "updateVendor": update_vendor,
    "archiveVendorById": archive_vendor,
    "activateVendor": activate_vendor,
    "searchVendors": search_vendors,
    "createAccountV1": create_account,
    "createAccountsBatchV1": batch_accounts,
    "getAccountV1": get_account,
    "updateAccountV1": update_account,
    "searchAccountsV1": search_accounts,
    "Get company by ID": get_company,
    "Search for Companies": list_companies,
}


def assert_all_conform(exchanges: Exchanges) -> dict[str, list[int]]:
    """Validate every exchange; return the statuses seen per operationId."""
    assert exchanges.responses, "the scenario made no request"
    statuses: dict[str, list[int]] = {}
    for response in exchanges.responses:
        operation = assert_conforms(response)
        statuses.setdefault(operation.operation_id, []).append(response.status_code)
    return statuses


@pytest.mark.parametrize("operation_id", list(SCENARIOS))
async def test_operation_conforms_to_pleo_openapi(
    operation_id: str, pleo: PleoClient, exchanges: Exchanges
) -> None:
    await SCENARIOS[operation_id](pleo)

    statuses = assert_all_conform(exchanges)
    assert operation_id in statuses, f"{operation_id} was not called"
    assert all(200 <= status < 300 for status in statuses[operation_id])


async def test_bearer_requests_conform(emulator: RunningEmulator, exchanges: Exchanges) -> None:
    tokens = emulator.control.obtain_tokens()

    async def provide() -> str:
        return str(tokens["access_token"])

    async with client_for(emulator, BearerAuth(provide), exchanges) as pleo:
        introspection = await pleo.introspect()
        installation = await pleo.installations.get()

    assert introspection.auth_method == "OAUTH2"
    assert installation.company_id == COMPANY
    assert set(assert_all_conform(exchanges)) == {"introspect", "getClientInstallation"}


async def test_conflicts_conform_too(pleo: PleoClient, exchanges: Exchanges) -> None:
    from pleo_connector.pleo.errors import ConflictError

    group_id, _ = await _tags(pleo, 1)
    with pytest.raises(ConflictError):
        await pleo.tags.create(group_id, code="T000")
    await _vendor(pleo)
    with pytest.raises(ConflictError):
        await _vendor(pleo)

    statuses = assert_all_conform(exchanges)
    assert 409 in statuses["createTag"]
    assert 409 in statuses["postVendor"]


def client_operation_ids() -> set[str]:
    """Every `operation="..."` the client's source passes to the transport."""
    found: set[str] = set()
    for source in CLIENT_SOURCES.rglob("*.py"):
        found.update(re.findall(r'operation="([^"]+)"', source.read_text(encoding="utf-8")))
    return found


def test_every_client_operation_has_a_scenario_and_a_document() -> None:
    documented = {operation.operation_id: operation for operation in contract().operations()}
    used = client_operation_ids()

    assert used == set(SCENARIOS)
    assert used <= set(documented), sorted(used - set(documented))


def test_operation_of_finds_documented_paths() -> None:
    import httpx

    request = httpx.Request("POST", "http://pleo.test/v0/tags/archive")

    operation = operation_of(request)

    assert operation is not None
    assert operation.operation_id == "bulkArchiveTags"
