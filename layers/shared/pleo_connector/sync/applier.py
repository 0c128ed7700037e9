"""STUB (sync engine, run part): stands in for the applier part's module until it is merged;
replace this file with theirs. Only the agreed signatures: `ApplyResult`, and `apply_plan`
raising NotImplementedError."""

from __future__ import annotations

from dataclasses import dataclass

from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.retry import Deadline
from pleo_connector.sync.model import Plan, RecordProblem
from pleo_connector.sync.ports import OwnershipStore
from pleo_connector.vocabulary import Action, Kind


@dataclass
class ApplyResult:
    applied: dict[tuple[Kind, Action], int]
    failed: list[RecordProblem]
    complete: bool
    requests: int
    rate_limited: int


async def apply_plan(
    plan: Plan,
    pleo: PleoClient,
    company_id: str,
    ownership: OwnershipStore,
    installation_id: str,
    *,
    deadline: Deadline | None = None,
) -> ApplyResult:
    raise NotImplementedError("STUB: the applier is not merged yet")
