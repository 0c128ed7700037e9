"""The two halves of an adapter, as typed ports.

`AdapterDescriptor` is what the pages need: a name, the pydantic model of the connection settings
(the settings page renders its form from it; `SecretStr` fields are password inputs and are stored
encrypted), and the tag groups a customer may pick. `SourceReader` is what the sync needs: it is
opened once per run, streams the four kinds of records, and is closed. A reader may also have
`notices()` (`NoticeSource`): what it changed or left out while it streamed, for the run to show.

Two optional parts let a scheduled run skip a source that has not changed (`sync.engine`): a
reader's `revision` (`adapters.sources.Revision`, what it read), and the descriptor's
`source_unchanged(settings, known)`. An adapter without them is always read in full.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, Self

from pleo_connector.errors import ConnectorError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from types import TracebackType

    from pydantic import BaseModel

    from pleo_connector.adapters.records import (
        SourceAccount,
        SourceNotice,
        SourceTag,
        SourceTagGroup,
        SourceTaxCode,
        SourceVendor,
    )
    from pleo_connector.adapters.sources import Revision


class SourceError(ConnectorError):
    """The accounting system could not be read, or what it gave is not valid. Adapters raise a
    subclass; the failure policy counts it against the installation, and nothing from that run
    is written to Pleo. The message says what is wrong in words a customer can act on: it is kept
    on the installation and shown on the settings page, so it never holds a secret."""

    http_status: ClassVar[int] = 502
    user_message: str = "The accounting system could not be read."


class SourceReader(Protocol):
    """One open source. Each method streams, so a large source never has to fit in memory."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def tag_groups(self) -> Iterator[SourceTagGroup]: ...

    def tags(self) -> Iterator[SourceTag]: ...

    def tax_codes(self) -> Iterator[SourceTaxCode]: ...

    def vendors(self) -> Iterator[SourceVendor]: ...

    def accounts(self) -> Iterator[SourceAccount]: ...


class NoticeSource(Protocol):
    """The optional part of a reader: `notices()` yields what it changed or left out of the
    records streamed so far, so it is asked after the streams are read. A reader without it
    has nothing to say."""

    def notices(self) -> Iterator[SourceNotice]: ...


def reader_notices(reader: object) -> list[SourceNotice]:
    """The reader's notices, or none when it has no `notices()`."""
    notices = getattr(reader, "notices", None)
    return list(notices()) if callable(notices) else []


def reader_revision(reader: object) -> Revision | None:
    """The revision the reader read, when it names one (a file's status, an ETag, a date)."""
    revision = getattr(reader, "revision", None)
    return revision if getattr(revision, "known", False) else None


def source_unchanged(adapter: object, settings: BaseModel, known: Revision) -> bool:
    """Whether the adapter's source is still at `known`; False when it cannot tell."""
    check = getattr(adapter, "source_unchanged", None)
    return bool(check(settings, known)) if callable(check) else False


class AdapterDescriptor(Protocol):
    """The light half, safe to import in every function."""

    @property
    def name(self) -> str: ...

    @property
    def settings_model(self) -> type[BaseModel]: ...

    def offered_tag_groups(self, settings: BaseModel | None) -> Sequence[tuple[str, str]]:
        """(code, name) of the dimensions a customer may pick; `settings` is None before the
        connection is configured."""
        ...

    def open_reader(self, settings: BaseModel) -> SourceReader:
        """Open the source; the reader's own (possibly heavy) imports happen here, not before."""
        ...
