"""The reading half of the GnuCash adapter: it opens a book with piecash, read-only, and streams
its records as the mapping in docs/adapters.md says. Imported only by `GnuCashAdapter.open_reader`
(piecash and SQLAlchemy 1.4 are in the GnuCash layer, attached to the sync worker alone).

Opening checks the file before piecash sees it, so each way a book can be unreadable is a
`SourceError` that says which: no file, not a GnuCash book (any other file, any other SQLite
database, a book saved as XML), a book GnuCash holds open (its lock table has a row), a book from
a newer GnuCash (its versions table). Records stream from Core selects over piecash's tables,
fetched in batches, so a book of 100,000 records never sits in memory; names are cleaned on the
way (`clean_name`) and each change is told as a notice (`notices()`), as is each tax table left
out.

A book in S3 is downloaded to /tmp under the deployment's size cap, and kept for the next run
in this process while its ETag stays the same (a 304 costs no body): the few most recent books
are kept, the oldest file removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import sqlite3
import stat
import tempfile
import threading
import unicodedata
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.gnucash import CUSTOMERS, JOBS, TAG_GROUPS, allowed_book_location
from pleo_connector.adapters.records import (
    MAX_TEXT,
    SourceAccount,
    SourceNotice,
    SourceTag,
    SourceTagGroup,
    SourceTaxCode,
    SourceVendor,
    TaxCodeKind,
)
from pleo_connector.adapters.sources import LocalPath, S3Object, file_revision
from pleo_connector.observability import logger
from pleo_connector.vocabulary import Kind

with warnings.catch_warnings():
    # piecash 1.2.1 maps its classes in the style SQLAlchemy 1.4 warns about (2.0 deprecations,
    # overlapping relationships); the warnings are about piecash's code, not this reader's.
    warnings.simplefilter("ignore")
    import piecash
    from piecash.core.session import version_supported
    from sqlalchemy import literal_column, select
    from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    from pleo_connector.adapters.sources import Revision, SourceOpener

BATCH_ROWS = 1000  # rows fetched from SQLite at a time
MAX_NOTICES = 500  # notices kept per run (a run stores fewer still)
CACHED_BOOKS = 4  # books from S3 kept in /tmp between runs of one process
_SQLITE_MAGIC = b"SQLite format 3\x00"
_GZIP_MAGIC = b"\x1f\x8b"
_GNUCASH_TABLES = frozenset({"versions", "gnclock", "books", "accounts", "vendors", "taxtables"})
_PERCENTAGE = 2  # GnuCash's type of a tax table entry that is a percentage (1 is an amount)
_SPACES = {"\t": " ", "\n": " ", "\r": " ", "\v": " ", "\f": " "}


# --- names ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CleanName:
    """A name as Pleo gets it, and what was done to it (empty when nothing)."""

    text: str
    changes: tuple[str, ...] = ()


def clean_name(raw: str | None) -> CleanName:
    """Leading and trailing space removed, control characters removed (tab, newline and the
    other white-space controls become a space), cut to Pleo's `MAX_TEXT` characters. Every other
    character stays as it is: ø, ü, 東京."""
    original = raw or ""
    changes: list[str] = []
    spaced = "".join(_SPACES.get(char, char) for char in original)
    if spaced != original:
        changes.append("tabs and line breaks made spaces")
    kept = "".join(char for char in spaced if unicodedata.category(char) != "Cc")
    if kept != spaced:
        changes.append("control characters removed")
    stripped = kept.strip()
    if stripped != kept:
        changes.append("leading or trailing spaces removed")
    if len(stripped) > MAX_TEXT:
        stripped = stripped[:MAX_TEXT].rstrip()
        changes.append(f"cut to {MAX_TEXT} characters")
    return CleanName(stripped, tuple(changes))


def _flag(value: Any) -> bool:
    return bool(value) and str(value) not in ("0", "")


# --- opening a book -------------------------------------------------------------------------------


def _newer(version: int) -> str:
    """GnuCash's own version number (3000000 is 3.0) in words."""
    major, minor = divmod(version // 10000, 100)
    return f"{major}.{minor}"


def check_book(path: str) -> None:
    """SourceError when `path` is no GnuCash SQLite book this connector reads, saying why."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise SourceError(
            "There is no GnuCash book at that path: the file is missing.",
            problem=SourceProblem.NOT_FOUND,
        ) from None
    except OSError:
        raise SourceError(
            "The GnuCash book's file cannot be opened.", problem=SourceProblem.REFUSED
        ) from None
    if not stat.S_ISREG(status.st_mode):
        raise SourceError(
            "The GnuCash book's path is not a regular file.", problem=SourceProblem.REFUSED
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError:
        raise SourceError(
            "The GnuCash book's file cannot be read.", problem=SourceProblem.UNREACHABLE
        ) from None
    if head.startswith(_GZIP_MAGIC) or head.lstrip().startswith(b"<?xml"):
        raise SourceError(
            "The file is a GnuCash book saved as XML: save it as SQLite (in GnuCash: File, Save"
            " As, Data Format sqlite3) and give that file.",
            problem=SourceProblem.INVALID,
        )
    if head != _SQLITE_MAGIC:
        raise SourceError(
            "The file is not a GnuCash book: it is not an SQLite database.",
            problem=SourceProblem.INVALID,
        )
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
        ) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables >= _GNUCASH_TABLES:
                raise SourceError(
                    "The file is an SQLite database but not a GnuCash book.",
                    problem=SourceProblem.INVALID,
                )
            locks = connection.execute("SELECT count(*) FROM gnclock").fetchone()[0]
            versions = {
                str(name): int(version)
                for name, version in connection.execute(
                    "SELECT table_name, table_version FROM versions"
                )
            }
    except sqlite3.Error:
        raise SourceError(
            "The file is not a GnuCash book: SQLite cannot read it.",
            problem=SourceProblem.INVALID,
        ) from None
    if locks:
        raise SourceError(
            "The GnuCash book is locked: GnuCash has it open (or was closed without releasing"
            " it). Close the book in GnuCash, then sync again.",
            problem=SourceProblem.LOCKED,
        )
    _check_versions(versions)


def _check_versions(versions: dict[str, int]) -> None:
    tables = {name: version for name, version in versions.items() if "Gnucash" not in name}
    known = [
        {name: version for name, version in supported.items() if "Gnucash" not in name}
        for supported in version_supported.values()
    ]
    if any(tables == supported for supported in known):
        return
    label, newest = max(version_supported.items(), key=lambda item: item[1]["Gnucash"])
    saved_by = versions.get("Gnucash", 0)
    newer_tables = any(version > newest.get(name, version) for name, version in tables.items())
    if saved_by > newest["Gnucash"] or newer_tables:
        raise SourceError(
            f"The GnuCash book is from a newer GnuCash ({_newer(saved_by)}) than this connector"
            f" reads (up to {label}): its tables have a newer format.",
            problem=SourceProblem.UNSUPPORTED,
        )
    raise SourceError(
        "The GnuCash book's format (its versions table) is not one this connector reads.",
        problem=SourceProblem.UNSUPPORTED,
    )


def _open_book(path: str) -> Any:
    """piecash's book, read-only; the checks above have passed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return piecash.open_book(
                path,
                readonly=True,
                open_if_lock=False,
                do_backup=False,
                check_same_thread=False,
            )
    except piecash.GnucashException as error:
        locked = "lock" in str(error).lower()
        raise SourceError(
            "The GnuCash book is locked: GnuCash has it open. Close it there, then sync again."
            if locked
            else "The GnuCash book could not be opened.",
            problem=SourceProblem.LOCKED if locked else SourceProblem.INVALID,
        ) from None
    except (SQLAlchemyError, sqlite3.Error, ValueError, AssertionError) as error:
        logger.warning("book not opened", extra={"error_type": type(error).__name__})
        raise SourceError(
            "The GnuCash book could not be read: its tables are not as GnuCash writes them.",
            problem=SourceProblem.INVALID,
        ) from None


# --- books from S3, kept between runs -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cached:
    revision: Revision
    path: Path


class BookCache:
    """Books downloaded from S3 in this process, by source: a warm run asks S3 "changed?" with
    the ETag and reads the body only when it has."""

    def __init__(self, folder: Path | None = None, *, entries: int = CACHED_BOOKS) -> None:
        self._folder = folder or Path(tempfile.gettempdir()) / "gnucash-books"
        self._entries: OrderedDict[str, _Cached] = OrderedDict()
        self._max = entries
        self._lock = threading.Lock()

    def path_of(self, source: str, opener: SourceOpener) -> tuple[Path, Revision | None]:
        """The downloaded copy of `source`, and the revision it is of."""
        key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.path.is_file():
                entry = None
            opened = opener.open(source, known=entry.revision if entry else None)
            if opened is None and entry is not None:
                self._entries.move_to_end(key)
                logger.info("book unchanged in S3: the downloaded copy is read")
                return entry.path, entry.revision
            if opened is None:  # only with a known revision, so there is an entry
                raise RuntimeError("the book was not read")
            self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            target = self._folder / f"{key}.gnucash"
            partial = self._folder / f"{key}.partial"
            try:
                with opened, partial.open("wb") as out:
                    for chunk in opened.chunks():
                        out.write(chunk)
                partial.replace(target)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            revision = opened.revision
            if revision is not None and revision.etag:
                self._entries[key] = _Cached(revision, target)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    _, dropped = self._entries.popitem(last=False)
                    dropped.path.unlink(missing_ok=True)
            else:
                self._entries.pop(key, None)
            return target, revision


BOOKS = BookCache()


def locate_book(
    source: str, opener: SourceOpener, cache: BookCache = BOOKS
) -> tuple[str, Revision | None]:
    """The local path of the book `source` names, by the deployment's rules, and the revision
    read there (taken before the book is opened, so a book that changes meanwhile reads as
    changed next time)."""
    location = allowed_book_location(source, opener.policy)
    if isinstance(location, LocalPath):
        try:
            revision: Revision | None = file_revision(os.stat(location.path))
        except (OSError, ValueError):
            revision = None  # check_book says why it cannot be read
        return location.path, revision
    if isinstance(location, S3Object):
        try:
            path, revision = cache.path_of(source, opener)
            return str(path), revision
        except SourceError as error:
            # The opener's words are a snapshot's; the customer gave a book.
            words = error.user_message.replace("The snapshot", "The GnuCash book")
            raise SourceError(
                words.replace("snapshot", "GnuCash book"), problem=error.problem
            ) from None
    raise SourceError(  # allowed_book_location refuses the other kinds already
        "The GnuCash book's address is not supported.", problem=SourceProblem.REFUSED
    )


# --- the reader -----------------------------------------------------------------------------------


class GnuCashReader:
    """One read of a book. Entering locates, checks and opens it (SourceError when it cannot be
    read); the methods then stream its records, as often as asked, until it is closed."""

    def __init__(self, source: str, opener: SourceOpener, cache: BookCache = BOOKS) -> None:
        self._source = source
        self._opener = opener
        self._cache = cache
        # The revision of the book read, once entered (None when the source names none).
        self.revision: Revision | None = None
        self._book: Any = None
        self._notices: list[SourceNotice] = []
        self._noticed: set[tuple[Kind, str, str]] = set()

    def __enter__(self) -> Self:
        path, self.revision = locate_book(self._source, self._opener, self._cache)
        check_book(path)
        self._book = _open_book(path)
        logger.info("gnucash book opened")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        book, self._book = self._book, None
        if book is not None:
            bind = book.session.get_bind()
            book.close()
            bind.dispose()

    def notices(self) -> Iterator[SourceNotice]:
        yield from self._notices

    def tag_groups(self) -> Iterator[SourceTagGroup]:
        for code, name in TAG_GROUPS:
            yield SourceTagGroup(code=code, name=name)

    def tags(self) -> Iterator[SourceTag]:
        for group, table in ((JOBS, piecash.Job), (CUSTOMERS, piecash.Customer)):
            columns = table.__table__.c
            rows = self._rows(select(columns.id, columns.name, columns.active))
            for code, raw_name, active in rows:
                name = self._clean(Kind.TAG, f"{group}/{code}", raw_name)
                yield SourceTag(group_code=group, code=code, name=name, archived=not _flag(active))

    def tax_codes(self) -> Iterator[SourceTaxCode]:
        tables = piecash.Taxtable.__table__.c
        entries = piecash.TaxtableEntry.__table__.c
        statement = (
            select(
                tables.guid,
                tables.name,
                tables.invisible,
                # The raw integer: piecash's ChoiceType has no cache key, and SQLAlchemy warns.
                literal_column("taxtable_entries.type"),
                entries.amount_num,
                entries.amount_denom,
            )
            .select_from(
                piecash.Taxtable.__table__.outerjoin(
                    piecash.TaxtableEntry.__table__, entries.taxtable == tables.guid
                )
            )
            # Visible tables first: GnuCash keeps invisible copies under the same name, and of
            # two tax codes with one code the first is synced.
            .order_by(tables.invisible, literal_column("taxtables.rowid"), entries.id)
        )
        for _, rows in itertools.groupby(self._rows(statement), key=lambda row: row[0]):
            table = list(rows)
            _, raw_name, invisible = table[0][:3]
            cleaned = clean_name(raw_name)
            parts = [(kind, num, denom) for _, _, _, kind, num, denom in table if kind is not None]
            if any(_entry_type(kind) != _PERCENTAGE for kind, _, _ in parts):
                self._notice(
                    SourceNotice(
                        Kind.TAX_CODE,
                        cleaned.text,
                        "not synced: the tax table has an amount entry (a fixed sum), and a Pleo"
                        " tax code is a rate",
                        skipped=True,
                    )
                )
                continue
            try:
                rate = sum((Decimal(num) / Decimal(denom) for _, num, denom in parts), Decimal(0))
            except (InvalidOperation, ZeroDivisionError):
                self._notice(
                    SourceNotice(
                        Kind.TAX_CODE,
                        cleaned.text,
                        "not synced: an entry of the tax table has no valid percentage",
                        skipped=True,
                    )
                )
                continue
            self._tell(Kind.TAX_CODE, cleaned.text, cleaned)
            yield SourceTaxCode(
                code=cleaned.text,
                name=cleaned.text,
                rate=rate / 100,
                kind=TaxCodeKind.INCLUSIVE,
                archived=_flag(invisible),
            )

    def vendors(self) -> Iterator[SourceVendor]:
        vendors = piecash.Vendor.__table__
        commodities = piecash.Commodity.__table__
        statement = (
            select(vendors.c.id, vendors.c.name, vendors.c.active, commodities.c.mnemonic)
            .select_from(vendors.outerjoin(commodities, commodities.c.guid == vendors.c.currency))
            .order_by(literal_column("vendors.rowid"))
        )
        for vendor_id, raw_name, active, currency in self._rows(statement):
            yield SourceVendor(
                external_id=vendor_id,
                code=vendor_id,
                name=self._clean(Kind.VENDOR, vendor_id, raw_name),
                currency=currency or "",
                archived=not _flag(active),
            )

    def accounts(self) -> Iterator[SourceAccount]:
        columns = piecash.Account.__table__.c
        statement = (
            select(columns.guid, columns.code, columns.name, columns.hidden)
            .where(columns.code.is_not(None), columns.code != "")
            .where((columns.placeholder.is_(None)) | (columns.placeholder == 0))
            .order_by(literal_column("accounts.rowid"))
        )
        for guid, code, raw_name, hidden in self._rows(statement):
            if not code.strip():
                continue
            yield SourceAccount(
                external_id=guid,
                code=code,
                name=self._clean(Kind.ACCOUNT, code, raw_name),
                archived=_flag(hidden),
            )

    def _rows(self, statement: Any) -> Iterator[Any]:
        if self._book is None:
            raise RuntimeError("read a book inside `with adapter.open_reader(...) as reader`")
        try:
            result = self._book.session.execute(statement.execution_options(yield_per=BATCH_ROWS))
            for batch in result.partitions():
                yield from batch
        except (SQLAlchemyError, sqlite3.Error) as error:
            logger.warning("book not read", extra={"error_type": type(error).__name__})
            raise SourceError(
                "The GnuCash book could not be read: its tables are not as GnuCash writes them.",
                problem=SourceProblem.INVALID,
            ) from None

    def _clean(self, kind: Kind, reference: str, raw: str | None) -> str:
        cleaned = clean_name(raw)
        self._tell(kind, reference, cleaned)
        return cleaned.text

    def _tell(self, kind: Kind, reference: str, cleaned: CleanName) -> None:
        if cleaned.changes:
            self._notice(
                SourceNotice(kind, reference, f"its name was cleaned: {', '.join(cleaned.changes)}")
            )

    def _notice(self, notice: SourceNotice) -> None:
        # Once per record and message, however often a stream is read; a bounded number.
        seen = (notice.kind, notice.reference, notice.message)
        if seen in self._noticed or len(self._notices) >= MAX_NOTICES:
            return
        self._noticed.add(seen)
        self._notices.append(notice)


def _entry_type(kind: Any) -> int:
    """An entry's type as SQLite keeps it: 2 a percentage, anything else an amount."""
    return _PERCENTAGE if str(kind) == str(_PERCENTAGE) else 1
