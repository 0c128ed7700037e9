"""Each resource sends the documented method, path, query and body, and reads the documented
envelope (installations bare, the rest inside `data`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.models import Installation, Introspection
from pleo_connector.pleo.resources.accounts import AccountInput
from pleo_connector.vocabulary import InstallationStatus
from tests.unit.pleo.conftest import Recorder, installation_json

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

MakeClient = Callable[..., PleoClient]
COMPANY = "0b5c3b8e-8d7e-4f7a-9f3e-333333333333"


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def empty_page() -> dict[str, object]:
    return {
        "data": [],
        "pagination": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "currentRequestPagination": {"parameters": {}},
        },
    }


async def test_installation_get_reads_the_bare_object(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.Response(200, json=installation_json(status="SOMETHING_NEW"))])

    async with make_client(recorder) as pleo:
        installation = await pleo.installations.get(company_id=COMPANY)

    request = recorder.requests[0]
    assert (request.method, request.url.path) == ("GET", "/v1/installations/me")
    assert request.url.params["company_id"] == COMPANY
    assert installation.company_id == COMPANY
    assert installation.status == "SOMETHING_NEW"  # unknown status kept, not a failure


async def test_installation_create_update_activate_delete(make_client: MakeClient) -> None:
    recorder = Recorder(
        [
            httpx.Response(200, json=installation_json()),
            httpx.Response(200, json=installation_json(status="ERROR", errorCode="AUTH_ERROR")),
            httpx.Response(200, json=installation_json()),
            httpx.Response(204),
        ]
    )

    async with make_client(recorder) as pleo:
        await pleo.installations.create(InstallationStatus.ACTIVATED, metadata={"a": {"b": 1}})
        updated = await pleo.installations.update("ERROR", error_code="AUTH_ERROR")
        await pleo.installations.activate()
        await pleo.installations.delete()

    create, update, activate, delete = recorder.requests
    assert (create.method, create.url.path) == ("POST", "/v1/installations/me")
    assert body_of(create) == {"status": "ACTIVATED", "metadata": {"a": {"b": 1}}}
    assert create.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert (update.method, body_of(update)) == (
        "PUT",
        {"status": "ERROR", "errorCode": "AUTH_ERROR"},
    )
    assert updated.error_code == "AUTH_ERROR"
    assert (activate.method, activate.url.path) == ("POST", "/v1/installations/me:activate")
    assert activate.content == b""
    assert (delete.method, delete.url.path) == ("DELETE", "/v1/installations/me")


async def test_update_metadata_reads_changes_a_copy_and_keeps_the_status(
    make_client: MakeClient,
) -> None:
    stored = {"connector": {"sync": ["tags"]}, "other": {"kept": True}}
    recorder = Recorder(
        [
            httpx.Response(200, json=installation_json(status="AUTHORIZED", metadata=stored)),
            httpx.Response(200, json=installation_json(status="AUTHORIZED")),
        ]
    )
    seen: list[dict[str, object]] = []

    def mutate(metadata: dict[str, object]) -> dict[str, object]:
        seen.append(metadata)
        metadata["connector"] = {"sync": ["tags", "vendors"]}
        return metadata

    async with make_client(recorder) as pleo:
        await pleo.installations.update_metadata(mutate)

    get, put = recorder.requests
    assert (get.method, put.method) == ("GET", "PUT")
    assert body_of(put) == {
        "status": "AUTHORIZED",
        "metadata": {"connector": {"sync": ["tags", "vendors"]}, "other": {"kept": True}},
    }
    assert stored["connector"] == {"sync": ["tags"]}  # the caller's copy, not the original


async def test_introspect_unwraps_data(make_client: MakeClient) -> None:
    recorder = Recorder(
        [
            httpx.Response(
                200,
                json={
                    "data": {
                        "authMethod": "API_KEY",
                        "clientId": "c",
                        "scope": "tag-groups:read vendors:write",
                        "subjectURN": f"urn:pleo:company:{COMPANY}",
                        "somethingNew": 1,
                    }
                },
            )
        ]
    )

    async with make_client(recorder) as pleo:
        introspection = await pleo.introspect()

    assert isinstance(introspection, Introspection)
    assert introspection.company_id == COMPANY
    assert introspection.scopes == {"tag-groups:read", "vendors:write"}
    assert introspection.model_extra == {"somethingNew": 1}


async def test_tag_archive_sends_at_most_100_ids_per_request(make_client: MakeClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        ids = body_of(request)["tagIds"]
        return httpx.Response(
            200, json={"data": [{"id": i, "code": i, "archived": True} for i in ids]}
        )

    recorder = Recorder(handler=handler)
    tag_ids = [f"tag-{n}" for n in range(250)]

    async with make_client(recorder) as pleo:
        archived = await pleo.tags.archive(COMPANY, tag_ids + tag_ids[:5])

    sizes = [len(body_of(r)["tagIds"]) for r in recorder.requests]
    assert sizes == [100, 100, 50]
    assert all(r.url.path == "/v0/tags/archive" for r in recorder.requests)
    assert body_of(recorder.requests[0])["companyId"] == COMPANY
    assert body_of(recorder.requests[0])["archived"] is True
    assert [tag.id for tag in archived] == tag_ids


async def test_tag_groups_and_tags_requests(make_client: MakeClient) -> None:
    group = {"id": "g", "code": "DEPT", "name": "Dept", "archived": False, "companyId": COMPANY}
    recorder = Recorder(
        [
            httpx.Response(200, json={"data": [group]}),
            httpx.Response(200, json={"data": group}),
            httpx.Response(200, json={"data": group}),
            httpx.Response(201, json={"data": {"id": "t", "code": "A", "archived": False}}),
            httpx.Response(200, json={"data": {"id": "t", "code": "A", "archived": True}}),
            httpx.Response(200, json=empty_page()),
        ]
    )

    async with make_client(recorder) as pleo:
        groups = await pleo.tag_groups.list(COMPANY)
        await pleo.tag_groups.create(COMPANY, code="DEPT", name="Dept")
        await pleo.tag_groups.update("g", code="DEPT", name="Dept", archived=True)
        await pleo.tags.create("g", code="A", name="Alpha")
        await pleo.tags.update("t", code="A", name="Alpha", archived=True)
        _ = [tag async for tag in pleo.tags.search(COMPANY, tag_group_ids=["g"])]

    listing, create_group, update_group, create_tag, update_tag, search = recorder.requests
    assert groups[0].code == "DEPT"
    assert dict(listing.url.params) == {"company_id": COMPANY, "include_archived": "false"}
    assert create_group.url.params["company_id"] == COMPANY
    assert body_of(create_group) == {"archived": False, "code": "DEPT", "name": "Dept"}
    assert body_of(update_group) == {
        "archived": True,
        "code": "DEPT",
        "name": "Dept",
        "metadata": {},
    }
    assert (create_tag.method, create_tag.url.path) == ("POST", "/v0/tag-groups/g/tags")
    assert (update_tag.method, update_tag.url.path) == ("PUT", "/v0/tags/t")
    assert (search.method, search.url.path) == ("POST", "/v0/tags:search")
    assert body_of(search) == {"tagGroupIds": ["g"]}


async def test_tax_code_requests(make_client: MakeClient) -> None:
    tax = {"id": "x", "companyId": COMPANY, "name": "VAT", "rate": 0.25, "type": "inclusive"}
    recorder = Recorder(
        [
            httpx.Response(200, json={"data": tax}),
            httpx.Response(200, json={"data": {**tax, "type": "future-kind"}}),
            httpx.Response(200, json=empty_page()),
        ]
    )

    async with make_client(recorder) as pleo:
        await pleo.tax_codes.create(COMPANY, name="VAT", rate=0.25, type="inclusive", code="V25")
        updated = await pleo.tax_codes.update(
            "x", company_id=COMPANY, name="VAT", rate=0.25, type="inclusive", archived=True
        )
        _ = [t async for t in pleo.tax_codes.search(COMPANY, code="V25")]

    create, update, search = recorder.requests
    assert (create.method, create.url.path) == ("POST", "/v0/tax-codes")
    assert body_of(create)["companyId"] == COMPANY
    assert body_of(create)["code"] == "V25"
    assert (update.method, update.url.path) == ("PUT", "/v0/tax-codes/x")
    assert updated.type == "future-kind"
    assert search.url.path == "/v0/tax-codes:search"
    assert search.url.params["company_id"] == COMPANY
    assert body_of(search) == {"code": "V25"}


async def test_vendor_requests(make_client: MakeClient) -> None:
    vendor = {"id": "v", "companyId": COMPANY, "name": "Acme", "defaultCurrency": "DKK"}
    recorder = Recorder(
        [
            httpx.Response(201, json={"data": {**vendor, "state": "ACTIVE"}}),
            httpx.Response(200, json={"data": {**vendor, "state": "ACTIVE"}}),
            httpx.Response(204),
            httpx.Response(204),
            httpx.Response(200, json=empty_page()),
        ]
    )

    async with make_client(recorder) as pleo:
        await pleo.vendors.create(COMPANY, name="Acme", default_currency="DKK", code="V1")
        await pleo.vendors.update(
            "v",
            company_id=COMPANY,
            name="Acme",
            default_currency="DKK",
            external_id="E1",
            state="ACTIVE",
        )
        await pleo.vendors.archive("v")
        await pleo.vendors.activate("v", external_id="E1")
        _ = [v async for v in pleo.vendors.search(COMPANY, codes=["V1"], page_size=50)]

    create, update, archive, activate, search = recorder.requests
    assert body_of(create) == {
        "companyId": COMPANY,
        "name": "Acme",
        "defaultCurrency": "DKK",
        "code": "V1",
    }
    assert body_of(update)["state"] == "ACTIVE"
    assert (archive.method, archive.url.path) == ("POST", "/v1/vendors/v:archive")
    assert (activate.url.path, body_of(activate)) == (
        "/v1/vendors/v:activate",
        {"externalId": "E1"},
    )
    assert dict(search.url.params) == {"company_id": COMPANY, "limit": "50"}
    assert body_of(search) == {"codes": ["V1"]}


async def test_vendor_search_refuses_more_than_100_values(make_client: MakeClient) -> None:
    async with make_client(Recorder([])) as pleo:
        with pytest.raises(ValueError, match="100"):
            _ = [v async for v in pleo.vendors.search(COMPANY, codes=[str(n) for n in range(101)])]


async def test_account_requests(make_client: MakeClient) -> None:
    account = {"id": "a", "companyId": COMPANY, "externalId": "4000", "name": "Sales"}
    recorder = Recorder(
        [
            httpx.Response(201, json={"data": account}),
            httpx.Response(200, json={"data": {**account, "archived": True}}),
            httpx.Response(200, json=empty_page()),
        ]
    )

    async with make_client(recorder) as pleo:
        await pleo.accounts.create(COMPANY, AccountInput(external_id="4000", name="Sales"))
        await pleo.accounts.update("a", name="Sales", archived=True, code="4000")
        _ = [a async for a in pleo.accounts.search(COMPANY, codes=["4000"])]

    create, update, search = recorder.requests
    assert body_of(create) == {
        "companyId": COMPANY,
        "externalId": "4000",
        "name": "Sales",
        "archived": False,
    }
    assert (update.method, update.url.path) == ("PUT", "/v1/chart-of-accounts/a")
    assert body_of(search) == {
        "companyId": COMPANY,
        "excludeIfAssignedToCategory": False,
        "excludeIfAssignedToContraAccount": False,
        "codes": ["4000"],
    }


async def test_account_batch_sends_at_most_1000_per_request(make_client: MakeClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        items = body_of(request)["items"]
        created = [{"id": i["externalId"], **i, "companyId": COMPANY} for i in items[:-1]]
        failed = [{"reasons": ["EXTERNAL_ID_ALREADY_EXISTS"], "request": items[-1]}]
        return httpx.Response(201, json={"data": {"created": created, "failed": failed}})

    recorder = Recorder(handler=handler)
    accounts = [AccountInput(external_id=str(n), name=f"Account {n}") for n in range(2500)]

    async with make_client(recorder) as pleo:
        result = await pleo.accounts.batch(COMPANY, accounts)

    assert [len(body_of(r)["items"]) for r in recorder.requests] == [1000, 1000, 500]
    assert len(result.created) == 2497
    assert [f.reasons for f in result.failed] == [["EXTERNAL_ID_ALREADY_EXISTS"]] * 3


async def test_companies(make_client: MakeClient) -> None:
    company = {"id": COMPANY, "name": "Acme ApS", "address": {"addressLine1": "Main St 1"}}
    recorder = Recorder(
        [
            httpx.Response(200, json={"data": company}),
            httpx.Response(200, json={**empty_page(), "data": [company]}),
        ]
    )

    async with make_client(recorder) as pleo:
        one = await pleo.companies.get(COMPANY)
        listed = [c async for c in pleo.companies.list(organization_id="org")]

    assert one.address is not None
    assert one.address.address_line1 == "Main St 1"
    assert listed[0].id == COMPANY
    assert recorder.requests[1].url.params["organization_id"] == "org"


def test_models_keep_unknown_fields_and_values() -> None:
    installation = Installation.model_validate(
        installation_json(status="ACTIVATED", newField={"x": 1})
    )

    assert installation.status is InstallationStatus.ACTIVATED
    assert installation.model_extra == {"newField": {"x": 1}}
