"""App Marketplace installations: the calling credential's own installation (`/me`)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from pleo_connector.pleo.models import Installation
from pleo_connector.vocabulary import InstallationErrorCode, InstallationStatus

if TYPE_CHECKING:
    from collections.abc import Callable

    from pleo_connector.pleo.transport import Transport

PATH = "/v1/installations/me"
ACTIVATE_PATH = "/v1/installations/me:activate"

Metadata = dict[str, Any]


class Installations:
    """`/v1/installations/me`. Responses are the installation itself, not wrapped in `data`."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def get(self, company_id: str | None = None) -> Installation:
        """The credential's installation (`company_id` picks one company of an organisation)."""
        return await self._transport.request_model(
            Installation,
            "GET",
            PATH,
            operation="getClientInstallation",
            params={"company_id": company_id},
            wrapped=False,
        )

    async def create(
        self,
        status: InstallationStatus | str | None = None,
        metadata: Metadata | None = None,
    ) -> Installation:
        """Create it: needed with API keys (OAuth creates it during the consent).

        Not retried once it may have reached Pleo: `OutcomeUnknownError`, and the caller reads
        the installation back (`get`) to learn whether it exists."""
        body: dict[str, Any] = {}
        if status is not None:
            body["status"] = str(status)
        if metadata is not None:
            body["metadata"] = metadata
        return await self._transport.request_model(
            Installation,
            "POST",
            PATH,
            operation="createClientInstallation",
            body=body,
            wrapped=False,
            retry_safe=False,
        )

    async def update(
        self,
        status: InstallationStatus | str,
        error_code: InstallationErrorCode | str | None = None,
        metadata: Metadata | None = None,
    ) -> Installation:
        """Set the status (and error code). A PUT replaces metadata: pass it to keep it."""
        body: dict[str, Any] = {"status": str(status)}
        if error_code is not None:
            body["errorCode"] = str(error_code)
        if metadata is not None:
            body["metadata"] = metadata
        return await self._transport.request_model(
            Installation,
            "PUT",
            PATH,
            operation="updateClientInstallation",
            body=body,
            wrapped=False,
        )

    async def update_metadata(self, mutate: Callable[[Metadata], Metadata]) -> Installation:
        """Read, change a copy of the metadata with `mutate`, and PUT it back with the status.

        Needed because a PUT replaces the whole metadata map. Pleo offers no version check, so
        callers serialise writers to one installation (the sync lease does).
        """
        current = await self.get()
        metadata = mutate(copy.deepcopy(current.metadata))
        error_code = current.error_code if str(current.status) == InstallationStatus.ERROR else None
        return await self.update(current.status, error_code=error_code, metadata=metadata)

    async def delete(self) -> None:
        """Delete it; Pleo revokes every access and refresh token of the client with it."""
        await self._transport.request(
            "DELETE", PATH, operation="deleteClientInstallation", expect=(200, 204)
        )

    async def activate(self) -> Installation:
        """Mark it ACTIVATED after the first successful sync."""
        return await self._transport.request_model(
            Installation,
            "POST",
            ACTIVATE_PATH,
            operation="activateMyInstallation",
            wrapped=False,
            retry_safe=True,  # sets the status: twice is the same as once
        )
