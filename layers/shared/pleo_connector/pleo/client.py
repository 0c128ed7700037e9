"""`PleoClient`: Pleo's external API for one credential, resource by resource.

async with PleoClient(settings.api_url, ApiKeyAuth(key), budget=bucket) as pleo:
    installation = await pleo.installations.get()
    async for vendor in pleo.vendors.search(company_id):
        ...
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Self

from pleo_connector.pleo.models import Introspection
from pleo_connector.pleo.resources.accounts import Accounts
from pleo_connector.pleo.resources.companies import Companies
from pleo_connector.pleo.resources.installations import Installations
from pleo_connector.pleo.resources.tags import TagGroups, Tags
from pleo_connector.pleo.resources.tax_codes import TaxCodes
from pleo_connector.pleo.resources.vendors import Vendors
from pleo_connector.pleo.transport import DEFAULT_TIMEOUT, RequestCounts, Transport

if TYPE_CHECKING:
    from types import TracebackType

    import httpx

    from pleo_connector.pleo.auth import PleoAuth
    from pleo_connector.pleo.ratelimit import RateBudget, Sleep
    from pleo_connector.pleo.retry import Clock, Deadline, RetryPolicy


class PleoClient:
    """Every resource the integration uses, over one transport (budget, retries, deadline)."""

    def __init__(
        self,
        api_url: str,
        auth: PleoAuth,
        *,
        http: httpx.AsyncClient | None = None,
        budget: RateBudget | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        deadline: Deadline | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Clock = time.time,
    ) -> None:
        self.transport = Transport(
            api_url,
            auth,
            http=http,
            budget=budget,
            retry=retry,
            timeout=timeout,
            deadline=deadline,
            clock=clock,
            sleep=sleep,
            wall_clock=wall_clock,
        )
        self.installations = Installations(self.transport)
        self.tag_groups = TagGroups(self.transport)
        self.tags = Tags(self.transport)
        self.tax_codes = TaxCodes(self.transport)
        self.vendors = Vendors(self.transport)
        self.accounts = Accounts(self.transport)
        self.companies = Companies(self.transport)

    @property
    def request_counts(self) -> RequestCounts:
        return self.transport.counts

    @property
    def deadline(self) -> Deadline | None:
        """No request, wait or retry starts after it (the worker sets it from Lambda's time)."""
        return self.transport.deadline

    @deadline.setter
    def deadline(self, value: Deadline | None) -> None:
        self.transport.deadline = value

    async def introspect(self) -> Introspection:
        """Who the credential is: auth method, client, scopes and subject (the company URN)."""
        return await self.transport.request_model(
            Introspection, "GET", "/v1/introspect", operation="introspect"
        )

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
