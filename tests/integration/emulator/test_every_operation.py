"""One pass over every operation the emulator serves, each exchange checked against Pleo's
documents: the emulator's whole API surface conforms, not only the parts other tests touch."""

from __future__ import annotations

import httpx
import pytest

from local.pleo_emulator.app import Emulator
from tests.support.emulator import DEFAULT_COMPANY_ID, RunningEmulator
from tests.support.openapi_contract import assert_conforms

pytestmark = pytest.mark.integration

C = DEFAULT_COMPANY_ID
SEARCH_ACCOUNTS = {
    "companyId": C,
    "excludeIfAssignedToCategory": False,
    "excludeIfAssignedToContraAccount": False,
}


def test_every_served_operation_conforms(emulator: RunningEmulator) -> None:
    checked: set[str] = set()

    def check(response: httpx.Response) -> None:
        response.read()
        assert response.status_code < 400, (response.request.url.path, response.text)
        checked.add(assert_conforms(response).name)

    seeded = emulator.control.seed(tag_groups=[{"code": "OLD", "tags": [{"code": "T0"}]}])
    key = emulator.control.issue_api_key()
    with httpx.Client(
        base_url=emulator.url, auth=(key, ""), event_hooks={"response": [check]}
    ) as c:
        c.post("/v1/installations/me", json={"status": "PENDING_INTEGRATION"})
        c.get("/v1/installations/me")
        c.put("/v1/installations/me", json={"status": "PENDING_INTEGRATION", "metadata": {}})
        c.post("/v1/installations/me:activate")
        c.get("/v1/introspect")

        group = c.post(
            "/v0/tag-groups",
            params={"company_id": C},
            json={"code": "G", "name": "G", "archived": False},
        ).json()["data"]
        c.get("/v0/tag-groups", params={"company_id": C, "include_tags_count": "true"})
        c.get(f"/v0/tag-groups/{group['id']}")
        c.put(
            f"/v0/tag-groups/{group['id']}",
            json={"code": "G", "name": "Group", "archived": False, "metadata": {}},
        )
        tag = c.post(
            f"/v0/tag-groups/{group['id']}/tags",
            json={"code": "T1", "name": "T", "archived": False},
        ).json()["data"]
        c.get(f"/v0/tag-groups/{group['id']}/tags", params={"limit": 1})
        c.get(f"/v0/tags/{tag['id']}")
        c.put(f"/v0/tags/{tag['id']}", json={"code": "T1", "name": "Tag", "archived": False})
        c.post("/v0/tags/archive", json={"archived": True, "companyId": C, "tagIds": [tag["id"]]})
        c.post("/v0/tags:search", params={"company_id": C}, json={"includeArchived": True})
        c.get("/v0/tags", params={"company_id": C})
        c.request("DELETE", "/v0/tags", json={"companyId": C, "tagIds": seeded["tags"]})
        c.delete(f"/v0/tags/{tag['id']}")
        c.delete(f"/v0/tag-groups/{group['id']}")

        tax_body = {
            "companyId": C,
            "name": "VAT",
            "rate": 0.25,
            "type": "inclusive",
            "archived": False,
            "code": "S25",
        }
        tax = c.post("/v0/tax-codes", json=tax_body).json()["data"]
        c.get(f"/v0/tax-codes/{tax['id']}")
        c.put(f"/v0/tax-codes/{tax['id']}", json={**tax_body, "name": "VAT 25"})
        c.post("/v0/tax-codes:search", params={"company_id": C}, json={})

        vendor_body = {"companyId": C, "name": "V", "defaultCurrency": "EUR", "externalId": "V1"}
        vendor = c.post("/v1/vendors", json=vendor_body).json()["data"]
        c.get(f"/v1/vendors/{vendor['id']}")
        c.put(f"/v1/vendors/{vendor['id']}", json={**vendor_body, "state": "ACTIVE"})
        c.post(f"/v1/vendors/{vendor['id']}:archive")
        c.post(f"/v1/vendors/{vendor['id']}:activate", json={"externalId": "V1", "code": "V1"})
        c.post("/v1/vendors:search", params={"company_id": C, "limit": 1}, json={"codes": ["V1"]})

        account = c.post(
            "/v1/chart-of-accounts",
            json={
                "companyId": C,
                "externalId": "1",
                "name": "Cash",
                "archived": False,
                "taxCodeExternalId": "S25",
            },
        ).json()["data"]
        c.post(
            "/v1/chart-of-accounts/batch",
            json={
                "companyId": C,
                "items": [{"externalId": "2", "name": "Bank", "archived": False}],
            },
        )
        c.get(f"/v1/chart-of-accounts/{account['id']}")
        c.put(f"/v1/chart-of-accounts/{account['id']}", json={"name": "Cash", "archived": True})
        c.post("/v1/chart-of-accounts:search", json=SEARCH_ACCOUNTS)
        c.delete(f"/v1/chart-of-accounts/{account['id']}")
        c.delete(f"/v0/tax-codes/{tax['id']}")

        c.get("/v1/companies", params={"limit": 5})
        c.get(f"/v1/companies/{C}")
        c.delete("/v1/installations/me")

    served = {r.operation for r in Emulator("http://127.0.0.1:1").router._routes if r.kind == "api"}
    assert checked == served
