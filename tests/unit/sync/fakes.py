"""Stand-ins for what a sync run orders: the accounting system's adapter and reader, and the
three steps (Pleo's side, the plan, the writes), each scripted by the test and recording what it
was asked."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Self

from pydantic import BaseModel, SecretStr

from pleo_connector.adapters.placeholder import PlaceholderConnectionSettings
from pleo_connector.adapters.records import (
    SourceAccount,
    SourceNotice,
    SourceTag,
    SourceTagGroup,
    SourceTaxCode,
    SourceVendor,
)
from pleo_connector.installation_config import SyncChoices, seal_connection
from pleo_connector.sync.applier import ApplyResult
from pleo_connector.sync.model import Change, Entry, Plan, RecordProblem
from pleo_connector.vocabulary import Action, AuthMethod, InstallationStatus, Kind
from tests.unit.connect.fakes import INSTALLATION, FakeCipher, FakeInstallationsApi, record

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Sequence
    from types import TracebackType

    from pleo_connector.adapters.base import SourceReader
    from pleo_connector.pleo.errors import PleoError
    from pleo_connector.pleo.retry import Deadline
    from pleo_connector.ports import PleoApi
    from pleo_connector.store.installations import InstallationRecord
    from pleo_connector.sync.ports import OwnershipStore

SETTINGS = PlaceholderConnectionSettings.model_validate(
    {"source_url": "https://erp.example.com/export", "api_token": SecretStr("erp-token-123")}
)
CHOICES = SyncChoices(tag_groups=["DEPT"])


def configured(
    status: InstallationStatus = InstallationStatus.ACTIVATED, **changes: object
) -> InstallationRecord:
    """An installation with its accounting system's settings saved (sealed as the page does)."""
    saved = replace(
        record(status, AuthMethod.API_KEY),
        config={"connection": seal_connection(FakeCipher(), INSTALLATION, "placeholder", SETTINGS)},
        sync_choices=CHOICES.model_dump(mode="json"),
    )
    return replace(saved, **changes)  # type: ignore[arg-type]


class FakeReader:
    """A source with one tag group; `error` is raised while its records are read."""

    def __init__(self, adapter: FakeAdapter) -> None:
        self._adapter = adapter

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._adapter.closed += 1

    def tag_groups(self) -> Iterator[SourceTagGroup]:
        if self._adapter.read_error is not None:
            raise self._adapter.read_error
        yield SourceTagGroup(code="DEPT", name="Departments")

    def tags(self) -> Iterator[SourceTag]:
        yield from ()

    def tax_codes(self) -> Iterator[SourceTaxCode]:
        yield from ()

    def vendors(self) -> Iterator[SourceVendor]:
        yield from ()

    def accounts(self) -> Iterator[SourceAccount]:
        yield from ()


class NoticingReader(FakeReader):
    """A reader with the optional `notices()`: what it said of the records it streamed."""

    def notices(self) -> Iterator[SourceNotice]:
        yield from self._adapter.notices or ()


class FakeAdapter:
    """The placeholder's settings form; `open_error` is raised when the source is opened."""

    name = "placeholder"
    settings_model: type[BaseModel] = PlaceholderConnectionSettings

    def __init__(
        self,
        open_error: Exception | None = None,
        read_error: Exception | None = None,
        notices: list[SourceNotice] | None = None,
    ) -> None:
        self.open_error = open_error
        self.read_error = read_error
        self.notices = notices
        self.opened: list[BaseModel] = []
        self.closed = 0

    def offered_tag_groups(self, settings: BaseModel | None) -> Sequence[tuple[str, str]]:
        return (("DEPT", "Departments"),)

    def open_reader(self, settings: BaseModel) -> FakeReader:
        self.opened.append(settings)
        if self.open_error is not None:
            raise self.open_error
        return FakeReader(self) if self.notices is None else NoticingReader(self)


def done(
    applied: dict[tuple[Kind, Action], int] | None = None,
    *,
    complete: bool = True,
    failed: Iterable[RecordProblem] = (),
    requests: int = 0,
    rate_limited: int = 0,
    stopped_by: PleoError | None = None,
) -> ApplyResult:
    return ApplyResult(
        applied=applied or {},
        failed=list(failed),
        complete=complete,
        requests=requests,
        rate_limited=rate_limited,
        stopped_by=stopped_by,
    )


def creates(*codes: str) -> Plan:
    return Plan(
        changes=tuple(
            Change(Kind.TAG_GROUP, Action.CREATE, code.casefold(), {"code": code, "name": code})
            for code in codes
        )
    )


@dataclass
class ScriptedSteps:
    """Pleo's side, the plan and the apply results the test gives, in order. The plan reads the
    source's tag groups (so a source failing mid-stream shows); each apply notes Pleo's status at
    that moment."""

    api: FakeInstallationsApi
    plans: list[Plan] = field(default_factory=lambda: [Plan()])
    results: list[ApplyResult] = field(default_factory=list)
    read_error: Exception | None = None
    apply_error: Exception | None = None
    calls: list[str] = field(default_factory=list)
    status_at_apply: list[str] = field(default_factory=list)
    deadlines: list[Deadline | None] = field(default_factory=list)
    owned_seen: list[Collection[tuple[Kind, str]]] = field(default_factory=list)

    async def read_pleo(self, pleo: PleoApi, company_id: str, choices: SyncChoices) -> list[Entry]:
        self.calls.append("read_pleo")
        if self.read_error is not None:
            raise self.read_error
        return []

    def plan(
        self,
        reader: SourceReader,
        pleo: Iterable[Entry],
        owned: Collection[tuple[Kind, str]],
        choices: SyncChoices,
    ) -> Plan:
        self.calls.append("plan")
        self.owned_seen.append(owned)
        list(reader.tag_groups())
        return self.plans.pop(0) if len(self.plans) > 1 else self.plans[0]

    async def apply(
        self,
        plan: Plan,
        pleo: PleoApi,
        company_id: str,
        ownership: OwnershipStore,
        installation_id: str,
        *,
        deadline: Deadline | None,
    ) -> ApplyResult:
        self.calls.append("apply")
        self.status_at_apply.append(str(self.api.installation.status))
        self.deadlines.append(deadline)
        if self.apply_error is not None:
            raise self.apply_error
        result = self.results.pop(0) if self.results else done(plan.counts())
        pleo.request_counts.sent += result.requests  # what the real steps send on the session
        pleo.request_counts.rate_limited += result.rate_limited
        return result
