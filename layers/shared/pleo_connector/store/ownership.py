"""Which of a company's records in Pleo this installation owns: those it created or adopted.

The planner touches (updates, archives) only owned records, so a record a person made in Pleo
is never archived. The record lives in the installation's partition, one item per record:
`INST#<id>` / `OWN#<kind>#<pleo id>`, so `InstallationRepository.delete_all` forgets it with
the installation. Items are only ever added (an archived record stays owned: it may come back),
with batch writes of 25, and the whole set is read back with one paginated query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pleo_connector.store.dynamodb import DynamoTable, Item, need_s, s
from pleo_connector.store.installations import installation_pk
from pleo_connector.vocabulary import Kind, parse_stored

if TYPE_CHECKING:
    from collections.abc import Iterable

OWNED_PREFIX = "OWN#"


def owned_sk(kind: Kind, pleo_id: str) -> str:
    return f"{OWNED_PREFIX}{kind}#{pleo_id}"


class OwnershipRepository:
    """The installation's owned records, as (kind, Pleo id) pairs."""

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def owned(self, installation_id: str) -> set[tuple[Kind, str]]:
        """Every record recorded as owned (a consistent read: what the last run wrote counts)."""
        found: set[tuple[Kind, str]] = set()
        for item in self._table.query(
            key_condition="pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": s(installation_pk(installation_id)), ":prefix": s(OWNED_PREFIX)},
            consistent=True,
        ):
            found.add(_parse(item))
        return found

    def record(self, installation_id: str, entries: Iterable[tuple[Kind, str]]) -> None:
        """Add `entries` to the owned set (recording one twice is harmless)."""
        pk = s(installation_pk(installation_id))
        keys = {owned_sk(kind, pleo_id) for kind, pleo_id in entries}
        self._table.put_many([{"pk": pk, "sk": s(sk)} for sk in sorted(keys)])


def _parse(item: Item) -> tuple[Kind, str]:
    _, kind, pleo_id = need_s(item, "sk").split("#", 2)
    return parse_stored(Kind, kind, field="owned record kind"), pleo_id
