"""Vendors (External Vendors API, `/v1/vendors`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pleo_connector.pleo.models import Vendor, VendorState
from pleo_connector.pleo.transport import Transport, api_path

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

SEARCH_LIST_LIMIT = 100


class Vendors:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def get(self, vendor_id: str) -> Vendor:
        return await self._transport.request_model(
            Vendor, "GET", api_path("/v1/vendors/{id}", id=vendor_id), operation="getVendorById"
        )

    async def create(
        self,
        company_id: str,
        *,
        name: str,
        default_currency: str,
        code: str | None = None,
        external_id: str | None = None,
        country: str | None = None,
        registration_number: str | None = None,
        tax_registration_number: str | None = None,
    ) -> Vendor:
        """Create an ACTIVE vendor; ConflictError when it already exists.

        Not retried once it may have reached Pleo: `OutcomeUnknownError`, and the caller
        searches by `external_id` or `code` to adopt the vendor if it was created."""
        body: dict[str, Any] = {
            "companyId": company_id,
            "name": name,
            "defaultCurrency": default_currency,
        }
        body.update(
            _optional(code, external_id, country, registration_number, tax_registration_number)
        )
        return await self._transport.request_model(
            Vendor,
            "POST",
            "/v1/vendors",
            operation="postVendor",
            body=body,
            expect=(200, 201),
            retry_safe=False,
        )

    async def update(
        self,
        vendor_id: str,
        *,
        company_id: str,
        name: str,
        default_currency: str,
        external_id: str,
        state: VendorState | str,
        code: str | None = None,
        country: str | None = None,
        registration_number: str | None = None,
        tax_registration_number: str | None = None,
    ) -> Vendor:
        body: dict[str, Any] = {
            "companyId": company_id,
            "name": name,
            "defaultCurrency": default_currency,
            "externalId": external_id,
            "state": str(state),
        }
        body.update(_optional(code, None, country, registration_number, tax_registration_number))
        return await self._transport.request_model(
            Vendor,
            "PUT",
            api_path("/v1/vendors/{id}", id=vendor_id),
            operation="updateVendor",
            body=body,
        )

    async def archive(self, vendor_id: str) -> None:
        await self._transport.request(
            "POST",
            api_path("/v1/vendors/{id}:archive", id=vendor_id),
            operation="archiveVendorById",
            expect=(200, 204),
            retry_safe=True,  # sets the state: twice is the same as once
        )

    async def activate(self, vendor_id: str, *, external_id: str, code: str | None = None) -> None:
        """Activate a DRAFT or ARCHIVED vendor, linking it to the accounting system's record."""
        body: dict[str, Any] = {"externalId": external_id}
        if code is not None:
            body["code"] = code
        await self._transport.request(
            "POST",
            api_path("/v1/vendors/{id}:activate", id=vendor_id),
            operation="activateVendor",
            body=body,
            expect=(200, 204),
            retry_safe=True,  # sets the state and the same ids: twice is the same as once
        )

    def search(
        self,
        company_id: str,
        *,
        ids: Sequence[str] | None = None,
        codes: Sequence[str] | None = None,
        external_ids: Sequence[str] | None = None,
        states: Sequence[VendorState | str] | None = None,
        name: str | None = None,
        page_size: int | None = None,
        pages_at_once: int = 1,
    ) -> AsyncIterator[Vendor]:
        """Vendors of the company; each list filter takes at most 100 values."""
        body: dict[str, Any] = {}
        for key, values in (("ids", ids), ("codes", codes), ("externalIds", external_ids)):
            if values is not None:
                if len(values) > SEARCH_LIST_LIMIT:
                    raise ValueError(f"{key}: at most {SEARCH_LIST_LIMIT} values per search")
                body[key] = list(values)
        if states is not None:
            body["states"] = [str(state) for state in states]
        if name is not None:
            body["name"] = name
        return self._transport.paginate(
            Vendor,
            "POST",
            "/v1/vendors:search",
            operation="searchVendors",
            params={"company_id": company_id},
            body=body,
            limit=page_size,
            pages_at_once=pages_at_once,
            retry_safe=True,  # a search only reads
        )


def _optional(
    code: str | None,
    external_id: str | None,
    country: str | None,
    registration_number: str | None,
    tax_registration_number: str | None,
) -> dict[str, str]:
    fields = {
        "code": code,
        "externalId": external_id,
        "country": country,
        "registrationNumber": registration_number,
        "taxRegistrationNumber": tax_registration_number,
    }
    return {key: value for key, value in fields.items() if value is not None}
