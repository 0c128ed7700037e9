"""The JSON snapshot adapter (`ADAPTER=json`): the accounting system publishes one document of
the snapshot format (version 1, `snapshot_v1`), and the connector reads it from the one place
its `source` setting names (`sources`).

Opening the reader reads the whole document once, in chunks, and checks every record before any
is handed out, so nothing is synced from a source that fails halfway. Valid records go to a
spool of one small file per kind in a private temporary folder (Lambda's /tmp), not into memory;
each of the reader's methods then streams its kind from there. Memory stays flat whatever the
size of the source: one chunk of text, one record at a time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_core import PydanticCustomError

from pleo_connector.adapters.errors import SourceError
from pleo_connector.adapters.records import (
    SourceAccount,
    SourceTag,
    SourceTagGroup,
    SourceTaxCode,
    SourceVendor,
    TaxCodeKind,
)
from pleo_connector.adapters.snapshot_v1 import (
    AccountV1,
    TagGroupV1,
    TagV1,
    TaxCodeV1,
    VendorV1,
    read_snapshot,
)
from pleo_connector.adapters.sources import (
    MAX_SOURCE_CHARS,
    Revision,
    SourceOpener,
    SourcePolicy,
    parse_source,
)
from pleo_connector.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import TracebackType

# The settings page waits for the tag groups while it renders (its function has 15 s in all).
OFFER_TIME_LIMIT_S = 8.0
# A source without ETag or Last-Modified cannot be asked "changed?": its groups are reused this
# long before it is read again.
OFFER_REUSE_S = 60.0
OFFER_CACHE_ENTRIES = 64
_KINDS = ("tag_groups", "tags", "tax_codes", "vendors", "accounts")
# One encoder for every row (json.dumps with options builds a new one per call).
_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class JsonSnapshotSettings(BaseModel):
    """The connection setting of the JSON snapshot adapter: where the document is read."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    # A secret: an https URL may carry a token (a pre-signed URL, `?token=`). So it is stored
    # encrypted, never shown back, and never named in a message.
    source: SecretStr = Field(
        title="Snapshot source",
        min_length=1,
        max_length=MAX_SOURCE_CHARS,
        description=(
            "Where the accounting snapshot (JSON, format version 1) is read: an https:// URL,"
            " or s3://bucket/key in the bucket this deployment names."
        ),
    )

    @field_validator("source")
    @classmethod
    def _a_source(cls, value: SecretStr) -> SecretStr:
        """Only its shape: whether this deployment reads from there is checked when it is read,
        so stored settings never stop fitting the model when the deployment's rules change."""
        try:
            parse_source(value.get_secret_value())
        except SourceError as error:
            raise PydanticCustomError("source", error.user_message) from None
        return value


class JsonSnapshotReader:
    """One read of a snapshot. Entering reads and checks the whole document (SourceError when it
    cannot be read or is not valid); the methods then stream the records, as often as asked,
    until the reader is closed."""

    def __init__(self, source: str, opener: SourceOpener) -> None:
        self._source = source
        self._opener = opener
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        # The revision of the document read, once entered (None when the source names none).
        self.revision: Revision | None = None

    def __enter__(self) -> Self:
        _sweep_stale_spools()
        folder = tempfile.TemporaryDirectory(prefix=_SPOOL_PREFIX, ignore_cleanup_errors=True)
        try:
            opened = self._opener.open(self._source)
            if opened is None:  # only with a known revision, which a reader never gives
                raise RuntimeError("the source was not read")
            self.revision = opened.revision
            with opened, _Spool(Path(folder.name)) as spool:
                read_snapshot(opened.chunks(), spool)
        except BaseException:
            folder.cleanup()
            raise
        logger.info("snapshot read", extra={"records": spool.counts})
        self._folder = folder
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def tag_groups(self) -> Iterator[SourceTagGroup]:
        for code, name, archived in self._rows("tag_groups"):
            yield SourceTagGroup(code=code, name=name, archived=archived)

    def tags(self) -> Iterator[SourceTag]:
        # Tags name their group by its index: its code may follow them in the document.
        group_codes = [code for code, _, _ in self._rows("tag_groups")]
        for group, code, name, archived in self._rows("tags"):
            yield SourceTag(group_code=group_codes[group], code=code, name=name, archived=archived)

    def tax_codes(self) -> Iterator[SourceTaxCode]:
        for code, name, rate, kind, archived in self._rows("tax_codes"):
            yield SourceTaxCode(
                code=code,
                name=name,
                rate=Decimal(rate),
                kind=TaxCodeKind(kind),
                archived=archived,
            )

    def vendors(self) -> Iterator[SourceVendor]:
        for row in self._rows("vendors"):
            external_id, code, name, currency, country, registration, tax_registration, archived = (
                row
            )
            yield SourceVendor(
                external_id=external_id,
                name=name,
                currency=currency,
                code=code,
                country=country,
                registration_number=registration,
                tax_registration_number=tax_registration,
                archived=archived,
            )

    def accounts(self) -> Iterator[SourceAccount]:
        for external_id, code, name, tax_code, archived in self._rows("accounts"):
            yield SourceAccount(
                external_id=external_id,
                name=name,
                code=code,
                tax_code=tax_code,
                archived=archived,
            )

    def _rows(self, kind: str) -> Iterator[list[Any]]:
        if self._folder is None:
            raise RuntimeError("read a snapshot inside `with adapter.open_reader(...) as reader`")
        with _spool_file(Path(self._folder.name) / f"{kind}.jsonl", "r") as lines:
            for line in lines:
                yield json.loads(line)


class JsonSnapshotAdapter:
    """The descriptor (`ADAPTER=json`). `opener` is injected by tests; by default it follows
    the deployment's settings (`config.AdapterSettings`), read on first use."""

    name = "json"
    settings_model: type[BaseModel] = JsonSnapshotSettings

    def __init__(
        self, opener: SourceOpener | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._opener = opener
        self._offers = _OfferCache(clock)

    @property
    def opener(self) -> SourceOpener:
        if self._opener is None:
            from pleo_connector.config import AdapterSettings, load_settings

            self._opener = SourceOpener(SourcePolicy.from_settings(load_settings(AdapterSettings)))
        return self._opener

    def offered_tag_groups(self, settings: BaseModel | None) -> Sequence[tuple[str, str]]:
        """The document's tag groups that are not archived, as (code, name).

        Only `tagGroups` is checked, and reading stops at its end, so a large document that
        puts it first costs the page little; the sync checks the rest. The page asks on every
        view, so the answer is kept per process for each source and asked again cheaply: a file
        by its size and time, S3 and https by ETag or Last-Modified (a 304 costs no body); a
        source with neither is reused for a minute. The read has the same caps as a sync's,
        with a shorter time limit. A source that cannot be read offers nothing, so the page
        still renders and the source can be fixed there; the sync reports why it failed."""
        if not isinstance(settings, JsonSnapshotSettings):
            return ()
        try:
            return self._offers.groups(settings.source.get_secret_value(), self.opener)
        except SourceError as error:
            logger.warning(
                "tag groups not offered: the source cannot be used",
                extra={"problem": str(error.problem), "location": error.location},
            )
            return ()

    def open_reader(self, settings: BaseModel) -> JsonSnapshotReader:
        return JsonSnapshotReader(_source_of(settings), self.opener)

    def source_unchanged(self, settings: BaseModel, known: Revision) -> bool:
        """Whether the document is still at `known` (`SourceOpener.unchanged_since`)."""
        return self.opener.unchanged_since(_source_of(settings), known)


def _source_of(settings: BaseModel) -> str:
    if not isinstance(settings, JsonSnapshotSettings):
        raise TypeError(f"the json adapter reads JsonSnapshotSettings, not {type(settings)}")
    return settings.source.get_secret_value()


# --- the spool ---------------------------------------------------------------------------------

_SPOOL_PREFIX = "snapshot-"
# A spool older than this was left by a process that died mid-run (a Lambda timeout keeps /tmp):
# no run lasts this long, so it is removed rather than left to fill the disk.
STALE_SPOOL_S = 3600.0


def _sweep_stale_spools() -> None:
    root = Path(tempfile.gettempdir())
    cutoff = time.time() - STALE_SPOOL_S
    try:
        candidates = list(root.glob(f"{_SPOOL_PREFIX}*"))
    except OSError:
        return
    for folder in candidates:
        try:
            if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def _spool_file(path: Path, mode: str) -> IO[str]:
    # surrogatepass: a JSON string may hold a lone surrogate escape (`"\ud800"`); it is kept as
    # it was rather than failing the write (the planner judges the value). newline="\n": a
    # record is one line, whatever characters its strings hold.
    return path.open(mode, encoding="utf-8", errors="surrogatepass", newline="\n")


class _Spool:
    """A `SnapshotSink` that writes each kind to its own file, one JSON array per record."""

    def __init__(self, folder: Path) -> None:
        self._files = {kind: _spool_file(folder / f"{kind}.jsonl", "w") for kind in _KINDS}
        self.counts = dict.fromkeys(_KINDS, 0)

    def _write(self, kind: str, row: list[Any]) -> None:
        self._files[kind].write(_ROW_ENCODER.encode(row) + "\n")
        self.counts[kind] += 1

    def tag_group(self, index: int, group: TagGroupV1) -> None:
        self._write("tag_groups", [group.code, group.name, group.archived])

    def tag(self, group_index: int, tag: TagV1) -> None:
        self._write("tags", [group_index, tag.code, tag.name, tag.archived])

    def tax_code(self, tax_code: TaxCodeV1) -> None:
        row = [tax_code.code, tax_code.name, str(tax_code.rate), tax_code.type, tax_code.archived]
        self._write("tax_codes", row)

    def vendor(self, vendor: VendorV1) -> None:
        self._write(
            "vendors",
            [
                vendor.external_id,
                vendor.code,
                vendor.name,
                vendor.currency,
                vendor.country,
                vendor.registration_number,
                vendor.tax_registration_number,
                vendor.archived,
            ],
        )

    def account(self, account: AccountV1) -> None:
        row = [account.external_id, account.code, account.name, account.tax_code, account.archived]
        self._write("accounts", row)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for file in self._files.values():
            file.close()


# --- what the settings page offers ---------------------------------------------------------------


class _GroupCollector:
    """A `SnapshotSink` that keeps the tag groups alone (the rest is checked and let go)."""

    def __init__(self) -> None:
        self.groups: list[tuple[str, str]] = []

    def tag_group(self, index: int, group: TagGroupV1) -> None:
        if not group.archived:
            self.groups.append((group.code, group.name))

    def tag(self, group_index: int, tag: TagV1) -> None:
        return None

    def tax_code(self, tax_code: TaxCodeV1) -> None:
        return None

    def vendor(self, vendor: VendorV1) -> None:
        return None

    def account(self, account: AccountV1) -> None:
        return None


@dataclass(slots=True)
class _Offer:
    revision: Revision | None
    groups: tuple[tuple[str, str], ...]
    read_at: float


class _OfferCache:
    """Tag groups per source, for this process. Keyed by a hash: the source may be a secret."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: OrderedDict[str, _Offer] = OrderedDict()
        self._lock = threading.Lock()

    def groups(self, source: str, opener: SourceOpener) -> tuple[tuple[str, str], ...]:
        key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            entry = self._entries.get(key)
        now = self._clock()
        if entry is not None and entry.revision is None and now - entry.read_at < OFFER_REUSE_S:
            return entry.groups
        known = entry.revision if entry is not None else None
        opened = opener.open(source, known=known, time_limit_s=OFFER_TIME_LIMIT_S)
        if opened is None and entry is not None:
            fresh = _Offer(entry.revision, entry.groups, now)
        elif opened is None:  # only with a known revision, so there is an entry
            raise RuntimeError("the source was not read")
        else:
            collector = _GroupCollector()
            with opened:
                read_snapshot(opened.chunks(), collector, tag_groups_only=True)
            revision = opened.revision
            if revision is not None and not revision.known:
                revision = None
            fresh = _Offer(revision, tuple(collector.groups), now)
        with self._lock:
            self._entries[key] = fresh
            self._entries.move_to_end(key)
            while len(self._entries) > OFFER_CACHE_ENTRIES:
                self._entries.popitem(last=False)
        return fresh.groups
