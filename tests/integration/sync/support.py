"""What the applier's tests share: source records as entries, an in-memory ownership store, and a
small planner of their own, so that they do not depend on the real one.

The planner here is deliberately naive (it reports nothing and checks nothing): it compares the
wanted entries with Pleo's and the owned set by key, the way the real planner is specified to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pleo_connector.sync.model import Action, Change, Entry, Kind, Plan, match_key, tag_key

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable


def group(code: str, name: str) -> Entry:
    return Entry(Kind.TAG_GROUP, match_key(code), {"code": code, "name": name})


def tag(group_code: str, code: str, name: str) -> Entry:
    return Entry(
        Kind.TAG,
        tag_key(group_code, code),
        {"code": code, "name": name},
        parent=match_key(group_code),
    )


def tax_code(code: str, name: str, rate: str = "0.25", kind: str = "inclusive") -> Entry:
    values = {"code": code, "name": name, "rate": rate, "type": kind}
    return Entry(Kind.TAX_CODE, match_key(code), values)


def vendor(external_id: str, name: str, currency: str = "DKK", **more: str | None) -> Entry:
    values: dict[str, Any] = {
        "externalId": external_id,
        "code": external_id,
        "name": name,
        "defaultCurrency": currency,
        "country": None,
        "registrationNumber": None,
        "taxRegistrationNumber": None,
    }
    values.update(more)
    return Entry(Kind.VENDOR, match_key(external_id), values)


def account(external_id: str, name: str, tax: str | None = None) -> Entry:
    values = {
        "externalId": external_id,
        "code": external_id,
        "name": name,
        "taxCodeExternalId": tax,
    }
    return Entry(Kind.ACCOUNT, match_key(external_id), values)


def create(entry: Entry) -> Change:
    return Change(entry.kind, Action.CREATE, entry.key, entry.values, parent=entry.parent)


def change(action: Action, entry: Entry, pleo_id: str, *, values: bool = False) -> Change:
    return Change(
        entry.kind,
        action,
        entry.key,
        entry.values if values else {},
        pleo_id=pleo_id,
        parent=entry.parent,
    )


def naive_plan(
    wanted: Iterable[Entry], pleo: Iterable[Entry], owned: Collection[tuple[Kind, str]]
) -> Plan:
    """Create what Pleo lacks, adopt what it has unowned, update what differs, unarchive what
    came back and archive what is owned but no longer wanted."""
    in_pleo = {(entry.kind, entry.key): entry for entry in pleo}
    changes: list[Change] = []
    wanted_keys = set()
    for entry in wanted:
        wanted_keys.add((entry.kind, entry.key))
        found = in_pleo.get((entry.kind, entry.key))
        if found is None:
            changes.append(create(entry))
            continue
        pleo_id = str(found.pleo_id)
        if (entry.kind, pleo_id) not in owned:
            changes.append(change(Action.ADOPT, entry, pleo_id))
        if dict(found.values) != dict(entry.values):
            changes.append(change(Action.UPDATE, entry, pleo_id, values=True))
        if found.archived:
            changes.append(change(Action.UNARCHIVE, entry, pleo_id))
    for (kind, key), found in in_pleo.items():
        owned_here = (kind, str(found.pleo_id)) in owned
        if (kind, key) not in wanted_keys and owned_here and not found.archived:
            changes.append(change(Action.ARCHIVE, found, str(found.pleo_id)))
    return Plan(changes=tuple(changes))


class MemoryOwnership:
    """The ownership store in memory, counting its batched writes."""

    def __init__(self) -> None:
        self.items: set[tuple[str, Kind, str]] = set()
        self.writes: list[int] = []

    def owned(self, installation_id: str) -> set[tuple[Kind, str]]:
        return {(kind, pleo_id) for inst, kind, pleo_id in self.items if inst == installation_id}

    def record(self, installation_id: str, entries: Iterable[tuple[Kind, str]]) -> None:
        batch = [(installation_id, kind, pleo_id) for kind, pleo_id in entries]
        self.writes.append(len(batch))
        self.items.update(batch)
