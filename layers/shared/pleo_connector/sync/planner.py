"""STUB (sync engine, run part): stands in for the planner part's module until it is merged;
replace this file with theirs. Only the agreed signature, raising NotImplementedError."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from pleo_connector.adapters.base import SourceReader
from pleo_connector.installation_config import SyncChoices
from pleo_connector.sync.model import Entry, Plan
from pleo_connector.vocabulary import Kind


def plan_sync(
    reader: SourceReader,
    pleo: Iterable[Entry],
    owned: Collection[tuple[Kind, str]],
    choices: SyncChoices,
) -> Plan:
    raise NotImplementedError("STUB: the planner is not merged yet")
