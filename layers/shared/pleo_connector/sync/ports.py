"""The ports the sync engine takes, beside the layer-wide ones in `pleo_connector.ports`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pleo_connector.vocabulary import Kind


class OwnershipStore(Protocol):
    """The records in Pleo this installation created or adopted, as (kind, Pleo id) pairs
    (`store.ownership.OwnershipRepository`). Only ever added to, and durable once `record`
    returns: a run cut off later still knows what it owns."""

    def owned(self, installation_id: str) -> set[tuple[Kind, str]]: ...

    def record(self, installation_id: str, entries: Iterable[tuple[Kind, str]]) -> None: ...
