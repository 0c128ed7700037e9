"""Master data: tag groups, tags, tax codes, vendors, chart of accounts, companies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.support.emulator import DEFAULT_COMPANY_ID, RunningEmulator

if TYPE_CHECKING:
    import httpx

    from tests.integration.emulator.conftest import ApiFactory

pytestmark = pytest.mark.integration

COMPANY = DEFAULT_COMPANY_ID


@pytest.fixture
def client(emulator: RunningEmulator, api: ApiFactory) -> httpx.Client:
    return api(api_key=emulator.control.issue_api_key())


def follow_pages(client: httpx.Client, method: str, path: str, **kwargs: Any) -> list[list[str]]:
    """Every page's ids, following endCursor while hasNextPage."""
    pages: list[list[str]] = []
    params = dict(kwargs.pop("params", {}))
    while True:
        body = client.request(method, path, params=params, **kwargs).json()
        pages.append([item["id"] for item in body["data"]])
        if not body["pagination"]["hasNextPage"]:
            return pages
        params["after"] = body["pagination"]["endCursor"]


# -- tag groups and tags ----------


def test_tag_group_lifecycle_and_duplicate_code(client: httpx.Client) -> None:
    created = client.post(
        "/v0/tag-groups",
        params={"company_id": COMPANY},
        json={"code": "DEPT", "name": "Department", "archived": False, "metadata": {"k": "v"}},
    )
    assert created.status_code == 200
    group = created.json()["data"]

    duplicate = client.post(
        "/v0/tag-groups",
        params={"company_id": COMPANY},
        json={"code": "dept", "name": "Again", "archived": False},
    )
    archived = client.put(
        f"/v0/tag-groups/{group['id']}",
        json={"code": "DEPT", "name": "Department", "archived": True, "metadata": {}},
    )
    active_only = client.get("/v0/tag-groups", params={"company_id": COMPANY}).json()["data"]
    with_archived = client.get(
        "/v0/tag-groups", params={"company_id": COMPANY, "include_archived": "true"}
    ).json()["data"]

    assert duplicate.status_code == 409
    assert archived.json()["data"]["archived"] is True
    assert active_only == []
    assert [g["id"] for g in with_archived] == [group["id"]]


def test_tag_groups_need_a_company_or_organization(client: httpx.Client, api: ApiFactory) -> None:
    assert client.get("/v0/tag-groups").status_code == 400


def test_tags_paginate_by_cursor(emulator: RunningEmulator, client: httpx.Client) -> None:
    seeded = emulator.control.seed(
        tag_groups=[{"code": "PRJ", "tags": [{"code": f"P{i}"} for i in range(5)]}]
    )
    group_id = seeded["tag_groups"][0]

    pages = follow_pages(client, "GET", f"/v0/tag-groups/{group_id}/tags", params={"limit": 2})

    assert pages == [seeded["tags"][0:2], seeded["tags"][2:4], seeded["tags"][4:5]]
    last = client.get(f"/v0/tag-groups/{group_id}/tags", params={"limit": 2, "offset": 4}).json()
    assert last["pagination"]["hasNextPage"] is False
    assert last["pagination"]["hasPreviousPage"] is True
    assert last["pagination"]["total"] == 5


def test_conflicting_paging_parameters_and_bad_cursors_are_400(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    client = api(api_key=emulator.control.issue_api_key(), lenient=True)
    seeded = emulator.control.seed(tag_groups=[{"code": "PRJ"}])
    path = f"/v0/tag-groups/{seeded['tag_groups'][0]}/tags"

    assert client.get(path, params={"after": "MFRGG===", "offset": 1}).status_code == 400
    assert client.get(path, params={"after": "MFRGG==="}).status_code == 400


def test_tag_create_conflict_update_and_bulk_archive(
    emulator: RunningEmulator, client: httpx.Client
) -> None:
    group_id = emulator.control.seed(tag_groups=[{"code": "PRJ"}])["tag_groups"][0]
    created = client.post(
        f"/v0/tag-groups/{group_id}/tags", json={"code": "A1", "name": "Alpha", "archived": False}
    )
    other = client.post(
        f"/v0/tag-groups/{group_id}/tags", json={"code": "B1", "name": "Beta", "archived": False}
    )
    assert created.status_code == 201

    duplicate = client.post(
        f"/v0/tag-groups/{group_id}/tags", json={"code": "a1", "archived": False}
    )
    clash = client.put(
        f"/v0/tags/{other.json()['data']['id']}", json={"code": "A1", "archived": False}
    )
    ids = [created.json()["data"]["id"], other.json()["data"]["id"]]
    archived = client.post(
        "/v0/tags/archive", json={"archived": True, "companyId": COMPANY, "tagIds": ids}
    )
    active = client.post("/v0/tags:search", params={"company_id": COMPANY}, json={})
    only_archived = client.post(
        "/v0/tags:search", params={"company_id": COMPANY}, json={"archived": True}
    )

    assert duplicate.status_code == 409
    assert clash.status_code == 409
    assert archived.status_code == 200
    assert [t["archived"] for t in archived.json()["data"]] == [True, True]
    assert active.json()["data"] == []
    assert [t["id"] for t in only_archived.json()["data"]] == ids


def test_tag_search_filters(emulator: RunningEmulator, client: httpx.Client) -> None:
    seeded = emulator.control.seed(
        tag_groups=[
            {
                "code": "PRJ",
                "tags": [{"code": "P1", "name": "Roof"}, {"code": "P2", "name": "Door"}],
            },
            {"code": "DEP", "tags": [{"code": "D1", "name": "Roof team"}]},
        ]
    )

    by_group = client.post(
        "/v0/tags:search",
        params={"company_id": COMPANY},
        json={"tagGroupIds": [seeded["tag_groups"][1]]},
    )
    by_text = client.post(
        "/v0/tags:search", params={"company_id": COMPANY}, json={"textSearch": "roof"}
    )

    assert [t["code"] for t in by_group.json()["data"]] == ["D1"]
    assert [t["code"] for t in by_text.json()["data"]] == ["P1", "D1"]


# -- tax codes ----------


def test_tax_codes_create_search_and_duplicate_code(client: httpx.Client) -> None:
    body = {
        "companyId": COMPANY,
        "name": "VAT 25",
        "rate": 0.25,
        "type": "inclusive",
        "archived": False,
        "code": "S25",
    }
    created = client.post("/v0/tax-codes", json=body)
    duplicate = client.post("/v0/tax-codes", json={**body, "code": "s25"})
    tax_id = created.json()["data"]["id"]
    archived = client.put(f"/v0/tax-codes/{tax_id}", json={**body, "archived": True})
    found = client.post(
        "/v0/tax-codes:search", params={"company_id": COMPANY}, json={"code": "S25"}
    )
    active = client.post(
        "/v0/tax-codes:search", params={"company_id": COMPANY}, json={"archived": False}
    )

    assert created.status_code == 200
    assert created.json()["data"]["rate"] == 0.25
    assert duplicate.status_code == 409
    assert archived.json()["data"]["archived"] is True
    assert [t["id"] for t in found.json()["data"]] == [tax_id]
    assert active.json()["data"] == []


# -- vendors ----------


def test_vendor_create_conflict_update_archive_activate_search(client: httpx.Client) -> None:
    body = {
        "companyId": COMPANY,
        "name": "Paper Co",
        "defaultCurrency": "DKK",
        "code": "V100",
        "externalId": "V100",
    }
    created = client.post("/v1/vendors", json=body)
    duplicate = client.post("/v1/vendors", json={**body, "name": "Other"})
    vendor_id = created.json()["data"]["id"]
    updated = client.put(
        f"/v1/vendors/{vendor_id}",
        json={**body, "name": "Paper Company", "state": "ACTIVE", "country": "DK"},
    )
    archived = client.post(f"/v1/vendors/{vendor_id}:archive")
    state_after_archive = client.get(f"/v1/vendors/{vendor_id}").json()["data"]["state"]
    activated = client.post(f"/v1/vendors/{vendor_id}:activate", json={"externalId": "V100"})
    by_code = client.post(
        "/v1/vendors:search", params={"company_id": COMPANY}, json={"codes": ["v100"]}
    )
    archived_only = client.post(
        "/v1/vendors:search", params={"company_id": COMPANY}, json={"states": ["ARCHIVED"]}
    )

    assert created.status_code == 201
    assert created.json()["data"]["state"] == "ACTIVE"
    assert duplicate.status_code == 409
    assert updated.json()["data"]["name"] == "Paper Company"
    assert archived.status_code == 204
    assert state_after_archive == "ARCHIVED"
    assert activated.status_code == 204
    assert [v["id"] for v in by_code.json()["data"]] == [vendor_id]
    assert archived_only.json()["data"] == []
    assert client.get("/v1/vendors/00000000-0000-4000-8000-000000000000").status_code == 404


@pytest.mark.parametrize("currency", ["", "DK", "DKKK", "dkk", "D1K"])
def test_a_default_currency_that_is_not_three_letters_is_a_400_that_says_so(
    emulator: RunningEmulator, api: ApiFactory, currency: str
) -> None:
    client = api(api_key=emulator.control.issue_api_key(), lenient=True)
    vendor = {"companyId": COMPANY, "name": "Paper Co", "defaultCurrency": "DKK"}
    vendor_id = client.post("/v1/vendors", json=vendor).json()["data"]["id"]
    expected = f"defaultCurrency must be a 3-letter ISO 4217 code, got {currency!r}"

    created = client.post("/v1/vendors", json={**vendor, "defaultCurrency": currency})
    updated = client.put(
        f"/v1/vendors/{vendor_id}",
        json={**vendor, "defaultCurrency": currency, "externalId": "V1", "state": "ACTIVE"},
    )

    assert (created.status_code, created.json()["message"]) == (400, expected)
    assert (updated.status_code, updated.json()["message"]) == (400, expected)


def test_empty_strings_the_documents_allow_are_accepted(client: httpx.Client) -> None:
    """No minLength on these fields in Pleo's documents, so no "is required" for an empty one."""
    vendor = client.post(
        "/v1/vendors", json={"companyId": COMPANY, "name": "", "defaultCurrency": "EUR"}
    )
    vendor_id = vendor.json()["data"]["id"]
    vendor_update = client.put(
        f"/v1/vendors/{vendor_id}",
        json={
            "companyId": COMPANY,
            "name": "",
            "defaultCurrency": "EUR",
            "externalId": "",
            "state": "ACTIVE",
        },
    )
    activated = client.post(f"/v1/vendors/{vendor_id}:activate", json={"externalId": ""})
    group = client.post(
        "/v0/tag-groups",
        params={"company_id": COMPANY},
        json={"code": "", "name": "", "archived": False},
    )
    tag = client.post(
        f"/v0/tag-groups/{group.json()['data']['id']}/tags", json={"code": "", "archived": False}
    )
    tax_code = client.post(
        "/v0/tax-codes",
        json={
            "companyId": COMPANY,
            "name": "",
            "rate": 0.25,
            "type": "inclusive",
            "archived": False,
        },
    )

    assert vendor.status_code == 201
    assert vendor.json()["data"]["name"] == ""
    assert vendor_update.status_code == 200
    assert activated.status_code == 204
    assert (group.status_code, group.json()["data"]["code"]) == (200, "")
    assert (tag.status_code, tag.json()["data"]["code"]) == (201, "")
    assert (tax_code.status_code, tax_code.json()["data"]["name"]) == (200, "")


def test_a_required_field_of_the_wrong_type_says_so_even_unvalidated(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    emulator.control.update_settings(validate_requests=False)
    client = api(api_key=emulator.control.issue_api_key(), lenient=True)

    wrong_type = client.post(
        "/v1/vendors", json={"companyId": COMPANY, "name": 7, "defaultCurrency": "DKK"}
    )
    missing = client.post("/v1/vendors", json={"companyId": COMPANY, "defaultCurrency": "DKK"})
    empty_company = client.post(
        "/v1/vendors", json={"companyId": "", "name": "X", "defaultCurrency": "DKK"}
    )

    assert wrong_type.json() == {"type": "bad_request", "message": "name must be a string, got int"}
    assert missing.json() == {"type": "bad_request", "message": "name is required"}
    assert empty_company.json() == {"type": "bad_request", "message": "the company id is empty"}


def test_vendor_search_requires_company_id(emulator: RunningEmulator, api: ApiFactory) -> None:
    client = api(api_key=emulator.control.issue_api_key(), lenient=True)

    assert client.post("/v1/vendors:search", json={}).status_code == 400


def test_vendor_search_pages(emulator: RunningEmulator, client: httpx.Client) -> None:
    seeded = emulator.control.seed(vendors=[{"name": f"V{i}", "code": f"V{i}"} for i in range(3)])

    pages = follow_pages(
        client, "POST", "/v1/vendors:search", params={"company_id": COMPANY, "limit": 2}, json={}
    )

    assert pages == [seeded["vendors"][:2], seeded["vendors"][2:]]


# -- chart of accounts ----------


def test_account_create_matched_and_conflict(client: httpx.Client) -> None:
    body = {
        "companyId": COMPANY,
        "externalId": "4000",
        "name": "Sales",
        "archived": False,
        "code": "4000",
    }

    created = client.post("/v1/chart-of-accounts", json=body)
    matched = client.post("/v1/chart-of-accounts", json=body)
    conflicting = client.post("/v1/chart-of-accounts", json={**body, "name": "Revenue"})

    assert created.status_code == 201
    assert matched.status_code == 200
    assert matched.json()["data"]["id"] == created.json()["data"]["id"]
    assert conflicting.status_code == 409


def test_account_batch_reports_created_and_failed(client: httpx.Client) -> None:
    client.post(
        "/v1/chart-of-accounts",
        json={"companyId": COMPANY, "externalId": "1000", "name": "Cash", "archived": False},
    )

    response = client.post(
        "/v1/chart-of-accounts/batch",
        json={
            "companyId": COMPANY,
            "items": [
                {"externalId": "1000", "name": "Cash again", "archived": False},
                {"externalId": "2000", "name": "Bank", "archived": False},
                {"externalId": "3000", "name": "", "archived": False},
            ],
        },
    )

    assert response.status_code == 201
    data = response.json()["data"]
    assert [a["externalId"] for a in data["created"]] == ["2000"]
    assert [f["reasons"] for f in data["failed"]] == [
        ["EXTERNAL_ID_ALREADY_EXISTS"],
        ["NAME_EMPTY"],
    ]


def test_account_update_search_and_delete(emulator: RunningEmulator, client: httpx.Client) -> None:
    emulator.control.seed(
        tax_codes=[{"name": "VAT", "code": "S25"}],
        accounts=[{"externalId": "5000", "name": "Rent", "code": "5000", "linked": True}],
    )
    account = client.post(
        "/v1/chart-of-accounts:search",
        json={
            "companyId": COMPANY,
            "excludeIfAssignedToCategory": False,
            "excludeIfAssignedToContraAccount": False,
            "codes": ["5000"],
        },
    ).json()["data"][0]

    unknown_tax = client.put(
        f"/v1/chart-of-accounts/{account['id']}",
        json={"name": "Rent", "archived": False, "taxCodeExternalId": "NOPE"},
    )
    archived = client.put(
        f"/v1/chart-of-accounts/{account['id']}",
        json={"name": "Rent", "archived": True, "taxCodeExternalId": "S25"},
    )
    linked_delete = client.delete(f"/v1/chart-of-accounts/{account['id']}")
    search_active = client.post(
        "/v1/chart-of-accounts:search",
        json={
            "companyId": COMPANY,
            "excludeIfAssignedToCategory": False,
            "excludeIfAssignedToContraAccount": False,
            "archived": False,
        },
    )

    assert unknown_tax.status_code == 400
    assert archived.json()["data"]["archived"] is True
    assert archived.json()["data"]["externalId"] == "5000"
    assert linked_delete.status_code == 409
    assert search_active.json()["data"] == []


# -- companies and request validation ----------


def test_companies(emulator: RunningEmulator, client: httpx.Client) -> None:
    other = emulator.control.seed_company("Other ApS")

    listed = client.get("/v1/companies")
    own = client.get(f"/v1/companies/{COMPANY}")
    foreign = client.get(f"/v1/companies/{other['id']}")
    missing = client.get("/v1/companies/00000000-0000-4000-8000-000000000000")

    assert [c["id"] for c in listed.json()["data"]] == [COMPANY]
    assert listed.json()["pagination"]["hasNextPage"] is False
    assert own.json()["data"]["address"]["country"] == "DK"
    assert foreign.status_code == 403
    assert missing.status_code == 404


def test_a_request_that_breaks_the_schema_is_a_400(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    client = api(api_key=emulator.control.issue_api_key(), lenient=True)

    response = client.post("/v1/vendors", json={"companyId": COMPANY, "name": "No currency"})

    assert response.status_code == 400
    assert "defaultCurrency" in response.json()["message"]


def test_another_company_is_forbidden(emulator: RunningEmulator, client: httpx.Client) -> None:
    other = emulator.control.seed_company("Other ApS")

    response = client.post(
        "/v1/vendors", json={"companyId": other["id"], "name": "X", "defaultCurrency": "DKK"}
    )

    assert response.status_code == 403
