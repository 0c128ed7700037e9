"""A Hypothesis state machine over the whole sync: the planner and the applier against the Pleo
emulator, while the source changes, a person edits in Pleo, Pleo fails and runs are cut short.

How Pleo runs here: the emulator's application (`local.pleo_emulator.app.Emulator`) is called in
this process through an httpx transport (`tests.support.inprocess_emulator`), so the real
`PleoClient`, its transport (retries, outcome-unknown creates, the deadline), the emulator's
OpenAPI validation of every request, its state, its rules (409s, the account batch) and its fault
rules all run; only the socket is skipped. That makes a request cost about a millisecond instead
of a round trip to another process, and lets the machine live in the unit tier (it opens no
socket). Faults are set through the emulator's control routes, called the same way. Ownership is
an in-memory store that follows the `OwnershipStore` port. One emulator serves every example;
each starts from an empty company with no faults.

Moves: the source adds, removes, renames, changes the case of codes, archives and reactivates
records of all four kinds and tags in groups; the customer picks up to 5 tag groups and switches
kinds on and off; a person creates records by hand in Pleo (with a code the source has, or one it
does not), renames what this installation owns or gives it a code of their own, and archives or
unarchives anything; faults are injected (409, 429, 5xx, timeouts, some after Pleo committed the
write), once, a few times or at a rate; a run reads, plans and applies, perhaps cut short by a
deadline that falls after a number of requests (a clock that counts requests).

After every step: nothing was deleted in Pleo; nothing was created twice (no kind holds one key
twice, and no create met a record Pleo has: Pleo refuses a second one, so a duplicate would show
there); nothing a person made that this installation has not adopted was changed, and a record
is adopted only while a selected source record has its key. After a run that met no fault, Pleo
refused nothing it was sent. After every completed run (faults cleared, a run to completion;
also at the end of every example): the installation's active records in Pleo are exactly the
source's selection, key by key and field by field, and the next run plans nothing and sends
reads only.

Examples are counted as Hypothesis counts them: one example is one machine, from its start to
its final convergence, of `STEPS` steps. CI runs it derandomized (the "ci" profile of
tests/conftest.py) with at least `CI_EXAMPLES` of them, and checks that it did; `make fuzz` runs
the "fuzz" profile's count, at random.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from local.pleo_emulator.http import Request, Response
from local.pleo_emulator.state import DEFAULT_COMPANY_ID, public
from pleo_connector import aio
from pleo_connector.adapters.records import (
    SourceAccount,
    SourceTag,
    SourceTagGroup,
    SourceTaxCode,
    SourceVendor,
    TaxCodeKind,
)
from pleo_connector.installation_config import MAX_TAG_GROUPS, SyncChoices
from pleo_connector.pleo.auth import ApiKeyAuth
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.errors import PleoError
from pleo_connector.pleo.models import Tag, VendorState
from pleo_connector.pleo.resources.accounts import AccountInput
from pleo_connector.pleo.resources.tags import Tags
from pleo_connector.pleo.retry import Deadline, Decision, RetryPolicy
from pleo_connector.sync import applier, normalise, planner
from pleo_connector.sync.applier import ApplyResult, apply_plan
from pleo_connector.sync.model import Action, Kind, Plan, match_key, tag_key
from pleo_connector.sync.planner import plan_sync
from pleo_connector.sync.pleo_state import read_pleo_entries
from tests.support.inprocess_emulator import BASE_URL, EmulatorTransport, Exchange, FastEmulator
from tests.unit.sync.planner_support import ListReader

pytestmark = pytest.mark.unit

CI_EXAMPLES = 500
STEPS = 20
COMPANY = DEFAULT_COMPANY_ID
INSTALLATION = "inst-machine"

# Few codes, so that the source, the choices and a person's records collide often. Codes have
# letters, so a change of case is a change. A person also uses codes the source never has.
POOLS: dict[Kind, tuple[str, ...]] = {
    Kind.TAG_GROUP: ("G1", "G2", "G3", "G4", "G5", "G6"),
    Kind.TAG: ("T1", "T2", "T3"),
    Kind.TAX_CODE: ("S25", "R12", "Z0"),
    Kind.VENDOR: ("V1", "V2", "V3"),
    Kind.ACCOUNT: ("A1", "A2", "A3"),
}
HAND_CODES = ("H1", "h2")
NAMES = ("One", "Two", "Three")
HAND_NAME = "Named by hand"
RATES = ("0.25", "0.125", "0", "1")
CURRENCIES = ("DKK", "SEK", "EUR")
COUNTRIES = (None, "DK", "SE")
KINDS = st.sampled_from(list(Kind))

# Operations a fault may target (or else any API path): reads and writes of every kind.
OPERATIONS = (
    "GET /v0/tag-groups",
    "POST /v0/tag-groups",
    "PUT /v0/tag-groups/{groupId}",
    "POST /v0/tag-groups/{groupId}/tags",
    "GET /v0/tag-groups/{groupId}/tags",
    "POST /v0/tags:search",
    "PUT /v0/tags/{tagId}",
    "POST /v0/tags/archive",
    "POST /v0/tax-codes",
    "POST /v0/tax-codes:search",
    "PUT /v0/tax-codes/{taxCodeId}",
    "POST /v1/vendors",
    "POST /v1/vendors:search",
    "PUT /v1/vendors/{id}",
    "POST /v1/vendors/{id}:archive",
    "POST /v1/vendors/{id}:activate",
    "POST /v1/chart-of-accounts/batch",
    "POST /v1/chart-of-accounts",
    "POST /v1/chart-of-accounts:search",
    "PUT /v1/chart-of-accounts/{accountId}",
)
# What an injected answer looks like (local/pleo_emulator/app.py `_fault_response`): never a
# refusal of what was sent.
INJECTED = frozenset({"injected_fault", "too_many_requests"})
CREATES = re.compile(
    r"/v0/tag-groups(/[^/]+/tags)?|/v0/tax-codes|/v1/vendors|/v1/chart-of-accounts(/batch)?"
)


FAILURES = st.sampled_from([409, 429, 500, 502, 503, 504, "timeout"])
OPERATION = st.sampled_from(OPERATIONS)
TIMES = st.sampled_from([1, 2, 3, None])
FAULT_RATES = st.sampled_from([0.5, 0.25, 0.1])
ONE_IN_FIVE = st.integers(0, 4).map(lambda n: n == 0)
BOOL = st.booleans()


@st.composite
def faults(draw: st.DrawFn) -> dict[str, Any]:
    """A fault rule for the emulator's control API: an error status or a dropped answer, on one
    operation or any, once, a few times or at a rate; perhaps after Pleo committed the write."""
    failure = draw(FAILURES)
    fault: dict[str, Any] = {}
    if failure == "timeout":
        fault.update(kind="timeout", hang_ms=0)
    else:
        fault.update(kind="error", status=failure)
        if failure == 503 and draw(BOOL):
            fault["retry_after"] = 0  # "come back now"
    # A 429, or a 503 with Retry-After, says that Pleo did not process the request (the client
    # resends a create after it): Pleo never answers so after it committed.
    refused_unprocessed = failure == 429 or "retry_after" in fault
    fault["commit"] = not refused_unprocessed and draw(BOOL)
    # One in five anywhere; else one operation (writes outnumber reads there, and a run that
    # fails its first read gets no further).
    if draw(ONE_IN_FIVE):
        fault["path_prefix"] = "/v"
    else:
        fault["operation"] = draw(OPERATION)
    times = draw(TIMES)
    if times is None:
        fault["rate"] = draw(FAULT_RATES)
    else:
        fault["count"] = times
    return fault


FAULTS = faults()
T = TypeVar("T")


class MemoryOwnership:
    """The ownership port in memory: only ever added to."""

    def __init__(self) -> None:
        self.items: set[tuple[str, Kind, str]] = set()

    def owned(self, installation_id: str) -> set[tuple[Kind, str]]:
        return {(kind, pleo_id) for inst, kind, pleo_id in self.items if inst == installation_id}

    def record(self, installation_id: str, entries: Iterable[tuple[Kind, str]]) -> None:
        self.items.update((installation_id, kind, pleo_id) for kind, pleo_id in entries)


@functools.cache
def shared_emulator() -> tuple[FastEmulator, str]:
    """One emulator for every example (its OpenAPI documents load once), and an API key of the
    default company: the credential the installation and the person both use."""
    emulator = FastEmulator()
    answer = control(emulator, "POST", "/_emulator/api-keys", {"company_id": COMPANY})
    return emulator, str(answer["api_key"])


def control(emulator: FastEmulator, method: str, path: str, body: Any = None) -> Any:
    """A call of the emulator's control API, straight to its application."""
    content = b"" if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if body is not None else {}
    served = emulator.handle(Request(method, path, [], headers, content))
    assert isinstance(served, Response), f"{method} {path}: no answer"
    assert 200 <= served.status < 300, f"{method} {path}: {served.status} {served.body!r}"
    return json.loads(served.body) if served.body else None


async def no_wait(seconds: float) -> None:
    """Retries wait for nothing: the emulator answers at once and time is not under test."""
    await asyncio.sleep(0)


def client(emulator: FastEmulator, api_key: str, retry: RetryPolicy) -> PleoClient:
    transport = EmulatorTransport(emulator)
    return PleoClient(
        BASE_URL,
        ApiKeyAuth(api_key),
        http=httpx.AsyncClient(transport=transport),
        retry=retry,
        sleep=no_wait,
    )


def transport_of(pleo: PleoClient) -> EmulatorTransport:
    http = pleo.transport._http
    assert isinstance(http._transport, EmulatorTransport)
    return http._transport


# -- what Pleo holds, read from the emulator's state --------------------------------------------

TABLES = {
    Kind.TAG_GROUP: "tag_groups",
    Kind.TAG: "tags",
    Kind.TAX_CODE: "tax_codes",
    Kind.VENDOR: "vendors",
    Kind.ACCOUNT: "accounts",
}


def records(emulator: FastEmulator, kind: Kind) -> dict[str, dict[str, Any]]:
    """The company's records of `kind` by id, without the emulator's private fields."""
    table: dict[str, dict[str, Any]] = getattr(emulator.world, TABLES[kind])
    company_field = "_company" if kind is Kind.TAG else "companyId"
    return {pid: public(rec) for pid, rec in table.items() if rec.get(company_field) == COMPANY}


def key_of(emulator: FastEmulator, kind: Kind, record: dict[str, Any]) -> str:
    if kind is Kind.TAG:
        group = emulator.world.tag_groups[record["groupId"]]
        return tag_key(group["code"], record["code"])
    if kind in (Kind.VENDOR, Kind.ACCOUNT):
        return match_key(record.get("externalId") or "")
    return match_key(record.get("code") or "")


def is_archived(kind: Kind, record: dict[str, Any]) -> bool:
    if kind is Kind.VENDOR:
        return bool(record["state"] != VendorState.ACTIVE)
    return bool(record["archived"])


def as_synced(kind: Kind, record: dict[str, Any]) -> dict[str, Any]:
    """The fields this app writes, as Pleo holds them (an external id compares without case:
    Pleo cannot change an account's)."""
    if kind in (Kind.TAG_GROUP, Kind.TAG):
        return {"code": record["code"], "name": record["name"]}
    if kind is Kind.TAX_CODE:
        return {
            "code": record["code"],
            "name": record["name"],
            "rate": float(record["rate"]),
            "type": record["type"],
        }
    if kind is Kind.VENDOR:
        return {
            "externalId": str(record["externalId"]).casefold(),
            "code": record.get("code"),
            "name": record["name"],
            "defaultCurrency": record["defaultCurrency"],
            "country": record.get("country"),
        }
    return {
        "externalId": str(record["externalId"]).casefold(),
        "code": record.get("code"),
        "name": record["name"],
        "taxCodeExternalId": record.get("taxCodeExternalId"),
    }


def refusals(exchanges: Iterable[Exchange], *, duplicates_only: bool = False) -> list[str]:
    """What Pleo refused of what was sent (an injected fault is no refusal). `duplicates_only`:
    the creates Pleo refused because it has the key (a 409, or an account batch's failed item),
    which would be a record created twice were Pleo not to check."""
    found = []
    for exchange in exchanges:
        request, response = exchange.request, exchange.response
        if response is None or response.status_code >= 500:
            continue
        where = f"{request.method} {request.url.path}"
        create = request.method == "POST" and CREATES.fullmatch(request.url.path) is not None
        body = response.json() if response.content else {}
        if 400 <= response.status_code < 500 and body.get("type") not in INJECTED:
            if not duplicates_only or (create and response.status_code == 409):
                found.append(f"{where}: {response.status_code} {body}")
        elif where.endswith("/chart-of-accounts/batch") and response.status_code < 300:
            failed = body["data"]["failed"]
            if duplicates_only:
                failed = [f for f in failed if "EXTERNAL_ID_ALREADY_EXISTS" in f["reasons"]]
            if failed:
                found.append(f"{where}: {failed}")
    return found


def without_stamp(record: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name != "updatedAt"}


# -- source records ---------------------------------------------------------------------------
# Strategies are built once: one built inside a step costs more than the step.

Draw = Callable[[st.SearchStrategy[Any]], Any]
NAME = st.sampled_from(NAMES)
TAG_CODE = st.sampled_from(POOLS[Kind.TAG])
RATE = st.sampled_from(RATES).map(Decimal)
TAX_KIND = st.sampled_from(list(TaxCodeKind))
CURRENCY = st.sampled_from(CURRENCIES)
COUNTRY = st.sampled_from(COUNTRIES)
REFERENCE = st.sampled_from([None, *POOLS[Kind.TAX_CODE], "s25"])
GROUP_CHOICES = st.sampled_from([*POOLS[Kind.TAG_GROUP], "g2"])
CODES = {
    kind: st.lists(st.sampled_from(codes), min_size=1, max_size=3, unique=True)
    for kind, codes in POOLS.items()
}
HAND_MADE_CODES = {kind: st.sampled_from([*codes, *HAND_CODES]) for kind, codes in POOLS.items()}
HAND_CODE = st.sampled_from(HAND_CODES)
TAGS_PER_GROUP = st.integers(0, 3)


def pick[V](draw: Draw, items: Sequence[V]) -> V:
    return items[draw(st.integers(0, len(items) - 1))]


def new_record(draw: Draw, kind: Kind, code: str) -> Any:
    """A source record of `kind` (not a tag) with `code`. A vendor's and an account's code is
    their external id: Pleo keeps vendor codes unique, and a code that two external ids shared
    would be a clash no run can resolve."""
    if kind is Kind.TAG_GROUP:
        return SourceTagGroup(code, draw(NAME))
    if kind is Kind.TAX_CODE:
        return SourceTaxCode(code, draw(NAME), draw(RATE), draw(TAX_KIND))
    if kind is Kind.VENDOR:
        return SourceVendor(code, draw(NAME), draw(CURRENCY), code=code, country=draw(COUNTRY))
    return SourceAccount(code, draw(NAME), code=code, tax_code=draw(REFERENCE))


def new_tag(draw: Draw, group_code: str) -> SourceTag:
    return SourceTag(group_code, draw(TAG_CODE), draw(NAME))


def source_key(kind: Kind, record: Any) -> str:
    if kind is Kind.TAG:
        return tag_key(record.group_code, record.code)
    if kind in (Kind.VENDOR, Kind.ACCOUNT):
        return match_key(record.external_id)
    return match_key(record.code)


@st.composite
def starts(draw: st.DrawFn) -> tuple[dict[Kind, dict[str, Any]], list[str]]:
    """One to three records of every kind, one per key, up to three tags in each group; and the
    tag groups picked at first: some of the source's own, perhaps one more."""
    source: dict[Kind, dict[str, Any]] = {kind: {} for kind in Kind}
    for kind in (Kind.TAG_GROUP, Kind.TAX_CODE, Kind.VENDOR, Kind.ACCOUNT):
        for code in draw(CODES[kind]):
            source[kind][match_key(code)] = new_record(draw, kind, code)
    for group in list(source[Kind.TAG_GROUP].values()):
        for _ in range(draw(TAGS_PER_GROUP)):
            tag = new_tag(draw, group.code)
            source[Kind.TAG].setdefault(source_key(Kind.TAG, tag), tag)
    picked = [group.code for group in source[Kind.TAG_GROUP].values() if draw(BOOL)]
    if draw(BOOL):
        picked.append(draw(GROUP_CHOICES))
    return source, list({match_key(code): code for code in picked}.values())


# -- the machine ------------------------------------------------------------------------------


def step[**P, R](method: Callable[P, R]) -> Callable[P, R]:
    """Mark the machine broken when a step raises, so that its teardown does not pile a second
    failure on the first."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except BaseException:
            machine = args[0]
            assert isinstance(machine, SyncMachine)
            machine.broken = True
            raise

    return run


class SyncMachine(RuleBasedStateMachine):
    examples = 0  # finished examples, counted to prove how many CI ran

    def __init__(self) -> None:
        super().__init__()
        self.broken = False
        self.emulator, api_key = shared_emulator()
        world = self.emulator.world
        for table in TABLES.values():
            getattr(world, table).clear()
        control(self.emulator, "DELETE", "/_emulator/faults")
        control(self.emulator, "DELETE", "/_emulator/requests")
        control(self.emulator, "PUT", "/_emulator/settings", {"rate_limit_per_minute": None})
        self.pleo = client(self.emulator, api_key, RetryPolicy(3, 0.0, 0.0))
        self.person = client(self.emulator, api_key, RetryPolicy(max_attempts=1))
        self.ownership = MemoryOwnership()
        self.source: dict[Kind, dict[str, Any]] = {kind: {} for kind in Kind}
        self.choices = SyncChoices(tag_groups=[], tax_codes=True, vendors=True, accounts=True)
        self.seen: dict[Kind, set[str]] = {kind: set() for kind in Kind}
        # Records a person made, as the person last left them (updatedAt aside).
        self.hand_made: dict[str, tuple[Kind, dict[str, Any]]] = {}
        self.checked_exchanges = 0

    def _await(self, awaitable: Awaitable[T]) -> T:
        """Run on the process's one event loop (a loop per example costs more than its steps)."""

        async def wrapped() -> T:
            return await awaitable

        return aio.run(wrapped())

    # -- the source and the choices ----------

    def _present(self, kind: Kind) -> list[str]:
        return sorted(self.source[kind])

    @initialize(seed=st.integers(0, 2**16), start=starts())
    @step
    def start(self, seed: int, start: tuple[dict[Kind, dict[str, Any]], list[str]]) -> None:
        """A source with some of every kind, some of its tag groups picked, every kind on."""
        control(self.emulator, "PUT", "/_emulator/settings", {"fault_seed": seed})
        self.source, groups = start
        self.choices = SyncChoices(tag_groups=groups)

    @rule(kind=KINDS, data=st.data())
    @step
    def source_adds(self, kind: Kind, data: st.DataObject) -> None:
        if kind is Kind.TAG:
            groups = [group.code for group in self.source[Kind.TAG_GROUP].values()] or ["G1"]
            tag = new_tag(data.draw, pick(data.draw, groups))
            self.source[kind].setdefault(source_key(kind, tag), tag)
            return
        absent = [code for code in POOLS[kind] if match_key(code) not in self.source[kind]]
        if absent:
            record = new_record(data.draw, kind, pick(data.draw, absent))
            self.source[kind][source_key(kind, record)] = record

    def _pick(self, kind: Kind, data: st.DataObject) -> str | None:
        present = self._present(kind)
        return pick(data.draw, present) if present else None

    @rule(kind=KINDS, data=st.data())
    @step
    def source_removes(self, kind: Kind, data: st.DataObject) -> None:
        key = self._pick(kind, data)
        if key is not None:
            del self.source[kind][key]

    @rule(kind=KINDS, data=st.data(), name=NAME)
    @step
    def source_renames(self, kind: Kind, data: st.DataObject, name: str) -> None:
        key = self._pick(kind, data)
        if key is not None:
            self.source[kind][key] = replace(self.source[kind][key], name=name)

    @rule(kind=KINDS, data=st.data())
    @step
    def source_changes_case(self, kind: Kind, data: st.DataObject) -> None:
        key = self._pick(kind, data)
        if key is None:
            return
        record = self.source[kind][key]
        if kind in (Kind.VENDOR, Kind.ACCOUNT):
            flipped = record.external_id.swapcase()
            self.source[kind][key] = replace(record, external_id=flipped, code=flipped)
        else:
            self.source[kind][key] = replace(record, code=record.code.swapcase())

    @rule(kind=KINDS, data=st.data())
    @step
    def source_archives_or_reactivates(self, kind: Kind, data: st.DataObject) -> None:
        key = self._pick(kind, data)
        if key is not None:
            record = self.source[kind][key]
            self.source[kind][key] = replace(record, archived=not record.archived)

    @rule(
        groups=st.lists(GROUP_CHOICES, max_size=MAX_TAG_GROUPS, unique_by=match_key),
        tax_codes=BOOL,
        vendors=BOOL,
        accounts=BOOL,
    )
    @step
    def customer_chooses(
        self, groups: list[str], tax_codes: bool, vendors: bool, accounts: bool
    ) -> None:
        self.choices = SyncChoices(
            tag_groups=groups, tax_codes=tax_codes, vendors=vendors, accounts=accounts
        )

    # -- a person in Pleo ----------

    @contextmanager
    def _by_hand(self) -> Iterator[None]:
        """A person's edit: whatever Pleo answers (faults hit people too), what appeared in the
        meantime is the person's, and is kept as the person left it."""
        before = {kind: set(records(self.emulator, kind)) for kind in Kind}
        with suppress(PleoError):
            yield
        for kind in Kind:
            now = records(self.emulator, kind)
            for pleo_id in now.keys() - before[kind]:
                self.hand_made[pleo_id] = (kind, without_stamp(now[pleo_id]))
            for pleo_id, record in now.items():
                if pleo_id in self.hand_made and not self._owned(kind, pleo_id):
                    self.hand_made[pleo_id] = (kind, without_stamp(record))

    def _owned(self, kind: Kind, pleo_id: str) -> bool:
        return (kind, pleo_id) in self.ownership.owned(INSTALLATION)

    @rule(kind=KINDS, data=st.data())
    @step
    def person_creates(self, kind: Kind, data: st.DataObject) -> None:
        code = data.draw(HAND_MADE_CODES[kind])
        pleo = self.person
        with self._by_hand():
            if kind is Kind.TAG_GROUP:
                self._await(pleo.tag_groups.create(COMPANY, code=code, name=HAND_NAME))
            elif kind is Kind.TAG:
                groups = list(records(self.emulator, Kind.TAG_GROUP))
                if groups:
                    group = pick(data.draw, groups)
                    self._await(pleo.tags.create(group, code=code, name=HAND_NAME))
            elif kind is Kind.TAX_CODE:
                self._await(
                    pleo.tax_codes.create(
                        COMPANY, name=HAND_NAME, rate=0.25, type="inclusive", code=code
                    )
                )
            elif kind is Kind.VENDOR:
                self._await(
                    pleo.vendors.create(
                        COMPANY,
                        name=HAND_NAME,
                        default_currency="DKK",
                        code=code,
                        external_id=code,
                    )
                )
            else:
                self._await(
                    pleo.accounts.create(COMPANY, AccountInput(external_id=code, name=HAND_NAME))
                )

    def _pick_record(
        self, kind: Kind, data: st.DataObject, *, owned: bool
    ) -> dict[str, Any] | None:
        found = records(self.emulator, kind)
        ids = [pid for pid in found if not owned or self._owned(kind, pid)]  # in creation order
        return found[pick(data.draw, ids)] if ids else None

    @rule(kind=KINDS, data=st.data(), recode=BOOL)
    @step
    def person_edits_an_owned_record(self, kind: Kind, data: st.DataObject, recode: bool) -> None:
        """A person renames a record this installation owns, or gives it a code of their own (a
        vendor's external id too; an account's external id cannot change)."""
        record = self._pick_record(kind, data, owned=True)
        if record is None:
            return
        edit: dict[str, Any] = {"name": HAND_NAME}
        if recode:
            code = data.draw(HAND_CODE)
            edit = {"code": code, "externalId": code} if kind is Kind.VENDOR else {"code": code}
        with self._by_hand():
            self._await(self._put(kind, {**record, **edit}))

    @rule(kind=KINDS, data=st.data())
    @step
    def person_archives_or_unarchives(self, kind: Kind, data: st.DataObject) -> None:
        record = self._pick_record(kind, data, owned=False)
        if record is None:
            return
        archived = not is_archived(kind, record)
        pleo = self.person
        with self._by_hand():
            if kind is Kind.TAG:
                self._await(pleo.tags.archive(COMPANY, [record["id"]], archived=archived))
            elif kind is Kind.VENDOR and archived:
                self._await(pleo.vendors.archive(record["id"]))
            elif kind is Kind.VENDOR:
                self._await(
                    pleo.vendors.activate(
                        record["id"], external_id=record["externalId"], code=record.get("code")
                    )
                )
            else:
                self._await(self._put(kind, {**record, "archived": archived}))

    async def _put(self, kind: Kind, record: dict[str, Any]) -> None:
        """A person's save of one record in Pleo's own form: every field as `record` has it."""
        pleo, pid = self.person, record["id"]
        if kind is Kind.TAG_GROUP:
            await pleo.tag_groups.update(
                pid,
                code=record["code"],
                name=record["name"],
                archived=record["archived"],
                metadata=record["metadata"],
            )
        elif kind is Kind.TAG:
            await pleo.tags.update(
                pid, code=record["code"], name=record["name"], archived=record["archived"]
            )
        elif kind is Kind.TAX_CODE:
            await pleo.tax_codes.update(
                pid,
                company_id=COMPANY,
                name=record["name"],
                rate=float(record["rate"]),
                type=record["type"],
                archived=record["archived"],
                code=record["code"],
                ingoing_tax_account=record.get("ingoingTaxAccount"),
                outgoing_tax_account=record.get("outgoingTaxAccount"),
            )
        elif kind is Kind.VENDOR:
            await pleo.vendors.update(
                pid,
                company_id=COMPANY,
                name=record["name"],
                default_currency=record["defaultCurrency"],
                external_id=record["externalId"],
                state=record["state"],
                code=record.get("code"),
                country=record.get("country"),
                registration_number=record.get("registrationNumber"),
                tax_registration_number=record.get("taxRegistrationNumber"),
            )
        else:
            await pleo.accounts.update(
                pid,
                name=record["name"],
                archived=record["archived"],
                code=record.get("code"),
                tax_code_external_id=record.get("taxCodeExternalId"),
                metadata=record.get("metadata"),
            )

    # -- Pleo failing ----------

    @rule(faults=st.lists(FAULTS, min_size=1, max_size=3))
    @step
    def pleo_fails(self, faults: list[dict[str, Any]]) -> None:
        """Rules of the emulator's fault injection, in place until a convergence clears them."""
        for fault in faults:
            control(self.emulator, "POST", "/_emulator/faults", fault)

    # -- runs ----------

    def _reader(self) -> ListReader:
        return ListReader(
            groups=list(self.source[Kind.TAG_GROUP].values()),
            tags=list(self.source[Kind.TAG].values()),
            tax_codes=list(self.source[Kind.TAX_CODE].values()),
            vendors=list(self.source[Kind.VENDOR].values()),
            accounts=list(self.source[Kind.ACCOUNT].values()),
        )

    def _plan(self) -> Plan | None:
        """Read Pleo and plan; None when the reads failed (the next run reads again)."""
        try:
            entries = self._await(read_pleo_entries(self.pleo, COMPANY, self.choices))
        except PleoError:
            return None
        return plan_sync(self._reader(), entries, self.ownership.owned(INSTALLATION), self.choices)

    def _run(self, deadline_after: int | None = None) -> ApplyResult | None:
        """One run: read, plan, apply (the deadline falls after `deadline_after` requests)."""
        owned_before = self.ownership.owned(INSTALLATION)
        plan = self._plan()
        if plan is None:
            return None
        deadline = None
        if deadline_after is not None:
            counts = self.pleo.transport.counts

            def clock() -> float:
                return float(counts.sent)

            deadline = Deadline(clock() + deadline_after, clock)
        result = self._await(
            apply_plan(plan, self.pleo, COMPANY, self.ownership, INSTALLATION, deadline=deadline)
        )
        self._check_adoptions(owned_before)
        return result

    def _check_adoptions(self, owned_before: set[tuple[Kind, str]]) -> None:
        """What a person made becomes this installation's only when the source has its key."""
        synced = self._synced()
        for kind, pleo_id in self.ownership.owned(INSTALLATION) - owned_before:
            if pleo_id in self.hand_made:
                record = records(self.emulator, kind)[pleo_id]
                key = key_of(self.emulator, kind, record)
                assert key in synced[kind], f"adopted a person's {kind} {key!r} the source lacks"

    @rule(faults=st.lists(FAULTS, max_size=2), deadline_after=st.none() | st.integers(0, 8))
    @step
    def sync_runs(self, faults: list[dict[str, Any]], deadline_after: int | None) -> None:
        """A run, perhaps with new faults and cut short by the deadline."""
        for fault in faults:
            control(self.emulator, "POST", "/_emulator/faults", fault)
        faults_before, sent_before = self._faults_applied(), len(self._exchanges())
        result = self._run(deadline_after)
        if self._faults_applied() == faults_before:  # a run that met no fault
            refused = refusals(self._exchanges()[sent_before:])
            assert not refused, f"a run with no fault: Pleo refused {refused}"
            if result is not None and result.complete:
                assert not result.failed, f"a run with no fault left records out: {result.failed}"
                self._check_follows_source()

    @rule()
    @step
    def faults_cleared_runs_converge(self) -> None:
        self._converge()

    def _faults_applied(self) -> int:
        return sum(fault["applied"] for fault in control(self.emulator, "GET", "/_emulator/faults"))

    def _exchanges(self) -> list[Exchange]:
        return transport_of(self.pleo).exchanges

    def _converge(self) -> None:
        control(self.emulator, "DELETE", "/_emulator/faults")
        sent_before = len(self._exchanges())
        result = self._run()
        assert result is not None, "the reads failed with no fault in place"
        refused = refusals(self._exchanges()[sent_before:])
        assert not refused, f"a run with no fault: Pleo refused {refused}"
        assert result.complete, f"a run with no fault stopped: {result.stopped_by}"
        assert not result.failed, f"a run with no fault left records out: {result.failed}"
        self._check_follows_source()
        self._check_next_run_writes_nothing()
        self.check_invariants_now()

    def check_invariants_now(self) -> None:
        """The checks run after every step, for a convergence in the teardown too."""
        self.nothing_is_deleted()
        self.nothing_is_created_twice()
        self.nothing_a_person_made_is_touched_until_adopted()

    def _check_next_run_writes_nothing(self) -> None:
        logged = len(self.emulator.world.request_log)
        plan = self._plan()
        assert plan is not None
        assert plan.changes == (), f"a second run plans {plan.changes}"
        result = self._await(apply_plan(plan, self.pleo, COMPANY, self.ownership, INSTALLATION))
        assert result.requests == 0
        sent = list(self.emulator.world.request_log)[logged:]
        writes = [
            entry["operation"]
            for entry in sent
            if entry["method"] != "GET" and not entry["operation"].endswith(":search")
        ]
        assert sent, "the run read nothing"
        assert writes == [], f"a run with nothing to do wrote {writes}"

    def teardown(self) -> None:
        try:
            if not self.broken:
                self._converge()
                type(self).examples += 1
        finally:
            self._await(self.pleo.aclose())
            self._await(self.person.aclose())

    # -- what the source selects, as the rules define it ----------

    def _synced(self) -> dict[Kind, dict[str, Any]]:
        """The source records the choices select, archived or not, by key."""
        chosen = {match_key(code) for code in self.choices.tag_groups}
        groups = {k: g for k, g in self.source[Kind.TAG_GROUP].items() if k in chosen}
        active_groups = {k for k, g in groups.items() if not g.archived}
        on = {
            Kind.TAX_CODE: self.choices.tax_codes,
            Kind.VENDOR: self.choices.vendors,
            Kind.ACCOUNT: self.choices.accounts,
        }
        synced: dict[Kind, dict[str, Any]] = {
            Kind.TAG_GROUP: groups,
            Kind.TAG: {
                k: t
                for k, t in self.source[Kind.TAG].items()
                if match_key(t.group_code) in active_groups
            },
        }
        for kind, enabled in on.items():
            synced[kind] = dict(self.source[kind]) if enabled else {}
        return synced

    def _wanted(self, kind: Kind, record: Any) -> dict[str, Any]:
        """The fields Pleo must hold for an active selected source record."""
        if kind in (Kind.TAG_GROUP, Kind.TAG):
            return {"code": record.code, "name": record.name}
        if kind is Kind.TAX_CODE:
            return {
                "code": record.code,
                "name": record.name,
                "rate": float(record.rate),
                "type": record.kind.value,
            }
        if kind is Kind.VENDOR:
            return {
                "externalId": record.external_id.casefold(),
                "code": record.code,
                "name": record.name,
                "defaultCurrency": record.currency,
                "country": record.country,
            }
        return {
            "externalId": record.external_id.casefold(),
            "code": record.code,
            "name": record.name,
            "taxCodeExternalId": self._reference(record.tax_code),
        }

    def _reference(self, reference: str | None) -> str | None:
        """An account's tax code as Pleo must name it: the source's spelling of a tax code that
        Pleo has (or gets), Pleo's own when tax codes are not synced, else none."""
        if reference is None:
            return None
        key = match_key(reference)
        in_pleo = [
            record
            for record in records(self.emulator, Kind.TAX_CODE).values()
            if key_of(self.emulator, Kind.TAX_CODE, record) == key
        ]
        if not self.choices.tax_codes:
            return str(in_pleo[0]["code"]) if in_pleo else None
        source = self.source[Kind.TAX_CODE].get(key)
        if source is None or (source.archived and not in_pleo):
            return None
        return str(source.code)

    def _check_follows_source(self) -> None:
        """Pleo's active records that this installation owns are the selection's active records,
        each with the source's fields."""
        synced = self._synced()
        owned = self.ownership.owned(INSTALLATION)
        for kind in Kind:
            have: dict[str, dict[str, Any]] = {}
            for pleo_id, record in records(self.emulator, kind).items():
                if (kind, pleo_id) in owned and not is_archived(kind, record):
                    have[key_of(self.emulator, kind, record)] = as_synced(kind, record)
            want = {
                key: self._wanted(kind, record)
                for key, record in synced[kind].items()
                if not record.archived
            }
            assert have == want, f"{kind}: Pleo has {have}, the source selects {want}"

    # -- after every step ----------

    @invariant()
    @step
    def nothing_is_deleted(self) -> None:
        for kind in Kind:
            now = records(self.emulator, kind).keys()
            gone = self.seen[kind] - now
            assert not gone, f"{kind} deleted: {gone}"
            self.seen[kind] = set(now)

    @invariant()
    @step
    def nothing_is_created_twice(self) -> None:
        """No kind holds one key twice, and no create met a record Pleo has (Pleo refuses a
        second one, so that is where a duplicate would show)."""
        for kind in Kind:
            keys = [key_of(self.emulator, kind, r) for r in records(self.emulator, kind).values()]
            assert len(keys) == len(set(keys)), f"{kind}: one key twice in {sorted(keys)}"
        exchanges = self._exchanges()
        again = refusals(exchanges[self.checked_exchanges :], duplicates_only=True)
        assert not again, f"created twice: Pleo has the key of {again}"
        self.checked_exchanges = len(exchanges)

    @invariant()
    @step
    def nothing_a_person_made_is_touched_until_adopted(self) -> None:
        for pleo_id, (kind, as_left) in self.hand_made.items():
            if self._owned(kind, pleo_id):
                continue
            now = records(self.emulator, kind)[pleo_id]
            assert without_stamp(now) == as_left, f"a person's {kind} was changed"


def machine_settings() -> settings:
    """The loaded profile's settings, with at least `CI_EXAMPLES` examples of `STEPS` steps."""
    base = settings.default
    assert base is not None
    return settings(
        base,
        max_examples=max(CI_EXAMPLES, base.max_examples),
        stateful_step_count=STEPS,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


@pytest.mark.hypothesis
def test_the_sync_follows_the_source_through_edits_faults_and_cut_off_runs() -> None:
    SyncMachine.examples = 0
    wanted = machine_settings()

    run_state_machine_as_test(SyncMachine, settings=wanted)

    # Hypothesis may stop early (an exhausted search space): the count is what was promised.
    assert SyncMachine.examples >= wanted.max_examples


# -- the machine catches a sync that breaks each rule --------------------------------------------


class Everything(frozenset[tuple[Kind, str]]):
    def __contains__(self, item: object) -> bool:
        return True


def archives_what_a_person_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner archives every record the selection lacks, owned or not."""
    finish = planner._Planner.finish

    def archive_all(self: Any, kind: Kind, *, held_parents: Collection[str] = ()) -> None:
        owned, self._owned = self._owned, Everything()
        try:
            finish(self, kind, held_parents=held_parents)
        finally:
            self._owned = owned

    monkeypatch.setattr(planner._Planner, "finish", archive_all)


def resends_creates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client sends a create again after Pleo may have made it."""
    decide = RetryPolicy.decide

    def resend(policy: RetryPolicy, attempt: int, status: int | None, **how: Any) -> Decision:
        return decide(policy, attempt, status, **{**how, "retry_safe": True})

    monkeypatch.setattr(RetryPolicy, "decide", resend)


def deletes_instead_of_archiving(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client deletes the tags it is asked to archive (Pleo's bulk delete)."""
    archive = Tags.archive

    async def delete(
        tags: Tags, company_id: str, tag_ids: Sequence[str], *, archived: bool = True
    ) -> list[Tag]:
        if not archived:
            return await archive(tags, company_id, tag_ids, archived=archived)
        await tags._transport.request(
            "DELETE",
            "/v0/tags",
            operation="bulkDeleteTags",
            body={"companyId": company_id, "tagIds": list(tag_ids)},
            expect=(204,),
        )
        return []

    monkeypatch.setattr(Tags, "archive", delete)


def rewrites_tax_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison finds a tax code changed even when Pleo holds what the source says."""
    differs = normalise.differs
    monkeypatch.setattr(
        normalise, "differs", lambda kind, *values: kind is Kind.TAX_CODE or differs(kind, *values)
    )


def never_archives(monkeypatch: pytest.MonkeyPatch) -> None:
    """The applier drops every archive the plan asks for."""
    apply_kind = applier._Run._apply_kind

    async def without_archives(run: Any, kind: Kind, changes: list[Any]) -> None:
        kept = [change for change in changes if change.action is not Action.ARCHIVE]
        await apply_kind(run, kind, kept)

    monkeypatch.setattr(applier._Run, "_apply_kind", without_archives)


SABOTAGES = [
    (archives_what_a_person_made, "a person's"),
    (resends_creates, "created twice"),
    (deletes_instead_of_archiving, "deleted"),
    (rewrites_tax_codes, "a second run plans"),
    (never_archives, "the source selects"),
]


@pytest.mark.parametrize(
    ("sabotage", "caught"),
    [pytest.param(sabotage, caught, id=sabotage.__name__) for sabotage, caught in SABOTAGES],
)
def test_a_sync_that_breaks_a_rule_is_caught(
    sabotage: Callable[[pytest.MonkeyPatch], None], caught: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each check above can fail: with one rule broken, the machine finds a case (first found,
    not shrunk) that breaks it."""
    sabotage(monkeypatch)
    quick = settings(
        machine_settings(),
        max_examples=CI_EXAMPLES,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        report_multiple_bugs=False,
        print_blob=False,
    )

    with pytest.raises(AssertionError, match=caught):
        run_state_machine_as_test(SyncMachine, settings=quick)
