"""STUB (sync engine, run part): stands in for the ownership part's module until it is merged;
replace this file with theirs. Only the agreed signatures, each raising NotImplementedError."""

from __future__ import annotations

from collections.abc import Iterable

from pleo_connector.store.dynamodb import DynamoTable
from pleo_connector.vocabulary import Kind


class OwnershipRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def owned(self, installation_id: str) -> set[tuple[Kind, str]]:
        raise NotImplementedError("STUB: the ownership store is not merged yet")

    def record(self, installation_id: str, entries: Iterable[tuple[Kind, str]]) -> None:
        raise NotImplementedError("STUB: the ownership store is not merged yet")
