"""Tax codes: Gjoll API, `/v0/tax-codes`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pleo_connector.pleo.models import TaxCode, TaxCodeType
from pleo_connector.pleo.transport import Transport, api_path

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence


class TaxCodes:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def get(self, tax_code_id: str) -> TaxCode:
        return await self._transport.request_model(
            TaxCode,
            "GET",
            api_path("/v0/tax-codes/{taxCodeId}", taxCodeId=tax_code_id),
            operation="getTaxCode",
        )

    async def create(
        self,
        company_id: str,
        *,
        name: str,
        rate: float,
        type: TaxCodeType | str,
        archived: bool = False,
        code: str | None = None,
        ingoing_tax_account: str | None = None,
        outgoing_tax_account: str | None = None,
    ) -> TaxCode:
        """Create a tax code; `rate` is a fraction (0.25 is 25 %)."""
        return await self._transport.request_model(
            TaxCode,
            "POST",
            "/v0/tax-codes",
            operation="createTaxCode",
            body=_body(
                company_id,
                name,
                rate,
                type,
                archived,
                code,
                ingoing_tax_account,
                outgoing_tax_account,
            ),
            expect=(200, 201),
            retry_safe=False,
        )

    async def update(
        self,
        tax_code_id: str,
        *,
        company_id: str,
        name: str,
        rate: float,
        type: TaxCodeType | str,
        archived: bool,
        code: str | None = None,
        ingoing_tax_account: str | None = None,
        outgoing_tax_account: str | None = None,
    ) -> TaxCode:
        """Replace the tax code (full model); archive with `archived=True`."""
        return await self._transport.request_model(
            TaxCode,
            "PUT",
            api_path("/v0/tax-codes/{taxCodeId}", taxCodeId=tax_code_id),
            operation="updateTaxCode",
            body=_body(
                company_id,
                name,
                rate,
                type,
                archived,
                code,
                ingoing_tax_account,
                outgoing_tax_account,
            ),
        )

    def search(
        self,
        company_id: str,
        *,
        archived: bool | None = None,
        code: str | None = None,
        tax_code_ids: Sequence[str] | None = None,
        type: TaxCodeType | str | None = None,
        page_size: int | None = None,
        pages_at_once: int = 1,
    ) -> AsyncIterator[TaxCode]:
        """Tax codes of the company; without `archived`, both archived and active ones."""
        body: dict[str, Any] = {}
        if archived is not None:
            body["archived"] = archived
        if code is not None:
            body["code"] = code
        if tax_code_ids is not None:
            body["taxCodeIds"] = list(dict.fromkeys(tax_code_ids))
        if type is not None:
            body["type"] = str(type)
        return self._transport.paginate(
            TaxCode,
            "POST",
            "/v0/tax-codes:search",
            operation="getTaxCodes",
            params={"company_id": company_id},
            body=body,
            limit=page_size,
            pages_at_once=pages_at_once,
            retry_safe=True,  # a search only reads
        )


def _body(
    company_id: str,
    name: str,
    rate: float,
    type: TaxCodeType | str,
    archived: bool,
    code: str | None,
    ingoing_tax_account: str | None,
    outgoing_tax_account: str | None,
) -> dict[str, Any]:
    return {
        "companyId": company_id,
        "name": name,
        "rate": rate,
        "type": str(type),
        "archived": archived,
        "code": code,
        "ingoingTaxAccount": ingoing_tax_account,
        "outgoingTaxAccount": outgoing_tax_account,
    }
