"""Companies (Oberon API): to resolve the entity a credential works for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pleo_connector.pleo.models import Company
from pleo_connector.pleo.transport import Transport, api_path

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Companies:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def get(self, company_id: str) -> Company:
        return await self._transport.request_model(
            Company,
            "GET",
            api_path("/v1/companies/{companyId}", companyId=company_id),
            operation="Get company by ID",
        )

    def list(
        self, organization_id: str | None = None, *, page_size: int | None = None
    ) -> AsyncIterator[Company]:
        return self._transport.paginate(
            Company,
            "GET",
            "/v1/companies",
            operation="Search for Companies",
            params={"organization_id": organization_id},
            limit=page_size,
        )
