"""STUB (sync engine, run part): stands in for the applier part's module until it is merged;
replace this file with theirs. Only the agreed signatures: `ApplyResult` (its fields as the
applier defines them: `complete` is False at the deadline, or with `stopped_by` on a transient
failure), and `apply_plan` raising NotImplementedError."""

from __future__ import annotations

from dataclasses import dataclass, field

from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.errors import PleoError
from pleo_connector.pleo.retry import Deadline
from pleo_connector.sync.model import Plan, RecordProblem
from pleo_connector.sync.ports import OwnershipStore
from pleo_connector.vocabulary import Action, Kind


@dataclass
class ApplyResult:
    applied: dict[tuple[Kind, Action], int] = field(default_factory=dict)
    failed: list[RecordProblem] = field(default_factory=list)
    complete: bool = True
    requests: int = 0
    rate_limited: int = 0
    stopped_by: PleoError | None = None


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
