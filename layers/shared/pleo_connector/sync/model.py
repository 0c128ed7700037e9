"""The sync engine's shared types: what is compared, what the planner decides, what a run reports.

Both sides are reduced to `Entry`s, keyed the way Pleo's guidance matches records: by `code`,
case-insensitively (tag groups, tags within their group, tax codes), and by `externalId` for vendors
and accounts. `values` holds exactly the fields this app writes, normalised so that equal means
"no write needed". The planner (`sync.planner.plan_sync`) is pure; the applier
(`sync.applier`) is the only part that writes to Pleo.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pleo_connector.vocabulary import Action, Kind

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Action", "Change", "Entry", "Kind", "Plan", "RecordProblem", "match_key", "tag_key"]


def match_key(code: str) -> str:
    """The key two codes (or external ids) match by: case-insensitive, surrounding space ignored."""
    return code.strip().casefold()


def tag_key(group_code: str, code: str) -> str:
    """A tag's key: its group's key and its own (codes are unique within a group only)."""
    return f"{match_key(group_code)}\x1f{match_key(code)}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One record of either side, reduced to what the comparison needs.

    `pleo_id` is set for Pleo's side; `parent` is a tag's group key. `values` are the fields this
    app writes (name, code, rate...), `archived` is kept apart because it has its own actions.
    """

    kind: Kind
    key: str
    values: Mapping[str, Any]
    archived: bool = False
    pleo_id: str | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One write the plan asks for. `values` are the source's, all of the kind's fields (for CREATE
    and UPDATE), `pleo_id` the record's in Pleo (for every action but CREATE). An UPDATE leaves
    the record active: the planner updates only what the source has active (after an UNARCHIVE
    where needed), and leaves an archived record's fields as they are. The one exception comes
    with an ARCHIVE of the same account: Pleo's values without a tax code Pleo no longer has.

    For a tag, `parent` is its group's key and `parent_id` the group's Pleo id, None when the
    group is created by an earlier change of the same plan (the one with `key == parent`)."""

    kind: Kind
    action: Action
    key: str
    values: Mapping[str, Any] = field(default_factory=dict)
    pleo_id: str | None = None
    parent: str | None = None
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """A source record the plan leaves out (or syncs only in part), with why, in words a customer
    can act on."""

    kind: Kind
    reference: str  # the record's code or external id, as the source has it
    message: str


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...] = ()
    problems: tuple[RecordProblem, ...] = ()

    @property
    def has_writes(self) -> bool:
        """ADOPT alone writes nothing to Pleo (ownership is this app's own record)."""
        return any(change.action is not Action.ADOPT for change in self.changes)

    def counts(self) -> dict[tuple[Kind, Action], int]:
        return dict(Counter((change.kind, change.action) for change in self.changes))
