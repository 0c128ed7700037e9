"""The GnuCash adapter (`ADAPTER=gnucash`): reads a GnuCash book saved as SQLite, read-only.

This is the light half, imported by every function: the settings form and the two fixed tag
groups, so the settings page never opens a book. The reader (`gnucash_book`) needs piecash and
SQLAlchemy 1.4, which ship in a layer of their own attached to the sync worker alone; it is
imported inside `open_reader`, never before. The mapping is in docs/adapters.md.

The connection setting `book` is where the book is read:
- an absolute path, where the deployment allows local sources (`ALLOW_LOCAL_SOURCES`);
- `s3://bucket/key`, in the stack's source bucket and under its prefix (`SOURCE_BUCKET`,
  `SOURCE_PREFIX`): downloaded to /tmp under the size cap, and kept across warm invocations
  while its ETag stays the same.
A URL is not a kind of book source: SQLite needs the whole file on disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.sources import MAX_SOURCE_CHARS, check_allowed, parse_source

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pleo_connector.adapters.gnucash_book import GnuCashReader
    from pleo_connector.adapters.sources import Revision, SourceLocation, SourceOpener, SourcePolicy

JOBS = "JOBS"
CUSTOMERS = "CUSTOMERS"
# The dimensions a GnuCash book has for Pleo's tags: its jobs and its customers.
TAG_GROUPS: tuple[tuple[str, str], ...] = ((JOBS, "Jobs"), (CUSTOMERS, "Customers"))

NOT_A_BOOK_SOURCE = (
    "A GnuCash book is not read from a URL: give s3://bucket/key in the bucket this deployment"
    " names (or an absolute path where this deployment reads local files)."
)


def parse_book_source(text: str) -> SourceLocation:
    """Where `text` says the book is, by its shape alone (`sources.parse_source`), refusing the
    https kind: a book is a database file, not a document read in one pass."""
    if text.strip().lower().startswith(("https://", "http://")):
        raise SourceError(NOT_A_BOOK_SOURCE, problem=SourceProblem.REFUSED)
    return parse_source(text)


def allowed_book_location(text: str, policy: SourcePolicy) -> SourceLocation:
    """Where the book is, when this deployment reads books from there (SourceError if not):
    the one rule for reading a book and for asking whether it changed."""
    location = parse_book_source(text)
    check_allowed(location, policy, what="book", https=False)
    return location


class GnuCashSettings(BaseModel):
    """The connection setting of the GnuCash adapter: where the book is."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    book: str = Field(
        title="GnuCash book",
        min_length=1,
        max_length=MAX_SOURCE_CHARS,
        description=(
            "The GnuCash book, saved as SQLite: s3://bucket/key in the bucket this deployment"
            " names, or an absolute path where this deployment reads local files."
        ),
    )

    @field_validator("book")
    @classmethod
    def _a_book_source(cls, value: str) -> str:
        """Only its shape: whether this deployment reads from there is checked when read."""
        try:
            parse_book_source(value)
        except SourceError as error:
            raise PydanticCustomError("book", error.user_message) from None
        return value


class GnuCashAdapter:
    """The descriptor (`ADAPTER=gnucash`). `opener` is injected by tests; by default it follows
    the deployment's settings (`config.AdapterSettings`), read on first use."""

    name = "gnucash"
    settings_model: type[BaseModel] = GnuCashSettings

    def __init__(self, opener: SourceOpener | None = None) -> None:
        self._opener = opener

    @property
    def opener(self) -> SourceOpener:
        if self._opener is None:
            from pleo_connector.adapters.sources import SourceOpener, SourcePolicy
            from pleo_connector.config import AdapterSettings, load_settings

            self._opener = SourceOpener(SourcePolicy.from_settings(load_settings(AdapterSettings)))
        return self._opener

    def offered_tag_groups(self, settings: BaseModel | None) -> Sequence[tuple[str, str]]:
        """Always the same two: the page offers them without opening the book."""
        return TAG_GROUPS

    def open_reader(self, settings: BaseModel) -> GnuCashReader:
        from pleo_connector.adapters.gnucash_book import GnuCashReader

        return GnuCashReader(_book_of(settings), self.opener)

    def source_unchanged(self, settings: BaseModel, known: Revision) -> bool:
        """Whether the book is still at `known`, by the same rules as a read (a file's status,
        S3's ETag), without opening it: piecash is not imported for this."""
        book = _book_of(settings)
        allowed_book_location(book, self.opener.policy)
        return self.opener.unchanged_since(book, known)


def _book_of(settings: BaseModel) -> str:
    if not isinstance(settings, GnuCashSettings):
        raise TypeError(f"the gnucash adapter reads GnuCashSettings, not {type(settings)}")
    return settings.book
