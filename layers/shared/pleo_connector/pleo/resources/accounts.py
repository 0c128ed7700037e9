"""Chart of accounts (bookkeeping accounts), `/v1/chart-of-accounts`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from pleo_connector.pleo.models import Account, AccountBatchResult
from pleo_connector.pleo.transport import Transport, api_path

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

BATCH_LIMIT = 1000


class AccountInput(BaseModel):
    """One account to create (alone or in a batch); `external_id` is the accounting system's id."""

    model_config = ConfigDict(frozen=True)

    external_id: str = Field(min_length=1, max_length=255)
    name: str = Field(max_length=255)
    archived: bool = False
    code: str | None = Field(default=None, max_length=255)
    tax_code_external_id: str | None = None
    metadata: dict[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "externalId": self.external_id,
            "name": self.name,
            "archived": self.archived,
        }
        if self.code is not None:
            body["code"] = self.code
        if self.tax_code_external_id is not None:
            body["taxCodeExternalId"] = self.tax_code_external_id
        if self.metadata is not None:
            body["metadata"] = self.metadata
        return body


class Accounts:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def get(self, account_id: str) -> Account:
        return await self._transport.request_model(
            Account,
            "GET",
            api_path("/v1/chart-of-accounts/{accountId}", accountId=account_id),
            operation="getAccountV1",
        )

    async def create(self, company_id: str, account: AccountInput) -> Account:
        """Create one account (200 when Pleo matched an existing one); ConflictError on a clash.

        Not retried once it may have reached Pleo (`OutcomeUnknownError`): that a second create
        with identical fields is matched rather than refused is not documented by Pleo."""
        return await self._transport.request_model(
            Account,
            "POST",
            "/v1/chart-of-accounts",
            operation="createAccountV1",
            body={"companyId": company_id, **account.to_body()},
            expect=(200, 201),
            retry_safe=False,
        )

    async def batch(self, company_id: str, accounts: Sequence[AccountInput]) -> AccountBatchResult:
        """Create many accounts, 1000 per request; Pleo reports refused items in `failed`.

        A chunk is a create, never sent again once it may have reached Pleo. On
        `OutcomeUnknownError` the chunks before it were created and that one may have been;
        the caller re-reads and adopts."""
        result = AccountBatchResult()
        for start in range(0, len(accounts), BATCH_LIMIT):
            chunk = accounts[start : start + BATCH_LIMIT]
            part = await self._transport.request_model(
                AccountBatchResult,
                "POST",
                "/v1/chart-of-accounts/batch",
                operation="createAccountsBatchV1",
                body={"companyId": company_id, "items": [item.to_body() for item in chunk]},
                expect=(200, 201),
                retry_safe=False,
            )
            result.created += part.created
            result.failed += part.failed
        return result

    async def update(
        self,
        account_id: str,
        *,
        name: str,
        archived: bool,
        code: str | None = None,
        tax_code_external_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Account:
        """Replace the account's fields (its `externalId` cannot change); archive with it."""
        body: dict[str, Any] = {
            "name": name,
            "archived": archived,
            "code": code,
            "taxCodeExternalId": tax_code_external_id,
        }
        if metadata is not None:
            body["metadata"] = metadata
        return await self._transport.request_model(
            Account,
            "PUT",
            api_path("/v1/chart-of-accounts/{accountId}", accountId=account_id),
            operation="updateAccountV1",
            body=body,
        )

    def search(
        self,
        company_id: str,
        *,
        archived: bool | None = None,
        codes: Sequence[str] | None = None,
        external_id: str | None = None,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        page_size: int | None = None,
        pages_at_once: int = 1,
    ) -> AsyncIterator[Account]:
        body: dict[str, Any] = {
            "companyId": company_id,
            "excludeIfAssignedToCategory": False,
            "excludeIfAssignedToContraAccount": False,
        }
        if archived is not None:
            body["archived"] = archived
        if codes is not None:
            body["codes"] = list(dict.fromkeys(codes))
        if external_id is not None:
            body["externalId"] = external_id
        if ids is not None:
            body["ids"] = list(dict.fromkeys(ids))
        if name is not None:
            body["name"] = name
        return self._transport.paginate(
            Account,
            "POST",
            "/v1/chart-of-accounts:search",
            operation="searchAccountsV1",
            body=body,
            limit=page_size,
            pages_at_once=pages_at_once,
            retry_safe=True,  # a search only reads
        )
