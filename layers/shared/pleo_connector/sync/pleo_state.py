"""STUB (sync engine, run part): stands in for the Pleo-side reader's module until it is merged;
replace this file with theirs. Only the agreed signature, raising NotImplementedError."""

from __future__ import annotations

from pleo_connector.installation_config import SyncChoices
from pleo_connector.pleo.client import PleoClient
from pleo_connector.sync.model import Entry


async def read_pleo_entries(pleo: PleoClient, company_id: str, choices: SyncChoices) -> list[Entry]:
    raise NotImplementedError("STUB: the Pleo-side reader is not merged yet")
