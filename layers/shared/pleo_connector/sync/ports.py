"""STUB (sync engine, run part): stands in for the ownership part's module until it is merged;
replace this file with theirs. It holds only the Protocol with the agreed signature."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from pleo_connector.vocabulary import Kind


class OwnershipStore(Protocol):
    """Which Pleo records this installation created or adopted: (kind, pleo_id)."""

    def owned(self, installation_id: str) -> set[tuple[Kind, str]]: ...

    def record(self, installation_id: str, entries: Iterable[tuple[Kind, str]]) -> None: ...
