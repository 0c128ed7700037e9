"""The GnuCash adapter on generated books: the mapping of docs/adapters.md record by record, the
names cleaned and said so, the tax tables left out, each way a book is unreadable, and where a
book may be read from (a path where allowed, S3 with its ETag kept, never a URL)."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from local import gnucash_books as books
from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.gnucash import GnuCashAdapter, GnuCashSettings
from pleo_connector.adapters.gnucash_book import BookCache, GnuCashReader, clean_name
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
from pleo_connector.adapters.registry import load_adapter
from pleo_connector.adapters.sources import Revision, SourceOpener, SourcePolicy
from pleo_connector.installation_config import SyncChoices
from pleo_connector.sync.planner import plan_sync
from pleo_connector.vocabulary import Action, Kind

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.unit

LOCAL = SourceOpener(SourcePolicy(allow_local=True))
BUCKET = "acme-books"


@pytest.fixture(scope="module")
def demo_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return books.write_demo_book(tmp_path_factory.mktemp("demo") / "demo.gnucash")


@pytest.fixture(scope="module")
def awkward_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return books.write_awkward_book(tmp_path_factory.mktemp("awkward") / "awkward.gnucash")


@pytest.fixture
def own_demo(demo_book: Path, tmp_path: Path) -> Path:
    """A copy of the demo book this test may change."""
    return shutil.copyfile(demo_book, tmp_path / "demo.gnucash")


def reader(path: Path | str, opener: SourceOpener = LOCAL) -> GnuCashReader:
    return GnuCashAdapter(opener).open_reader(GnuCashSettings(book=str(path)))


def read_all(path: Path) -> dict[str, list[Any]]:
    with reader(path) as book:
        return {
            "tag_groups": list(book.tag_groups()),
            "tags": list(book.tags()),
            "tax_codes": list(book.tax_codes()),
            "vendors": list(book.vendors()),
            "accounts": list(book.accounts()),
            "notices": list(book.notices()),
        }


def guid_of(path: Path, code: str) -> str:
    """An account's GUID, read from the book's table directly."""
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        rows = connection.execute("SELECT guid FROM accounts WHERE code = ?", (code,)).fetchall()
    assert len(rows) == 1
    return str(rows[0][0])


# --- the mapping -----------------------------------------------------------------------------


def test_the_adapter_is_built_in_and_offers_jobs_and_customers_without_a_book() -> None:
    adapter = load_adapter("gnucash")

    assert adapter.name == "gnucash"
    assert adapter.offered_tag_groups(None) == (("JOBS", "Jobs"), ("CUSTOMERS", "Customers"))


def test_the_demo_book_maps_as_the_table_says(demo_book: Path) -> None:
    read = read_all(demo_book)

    assert read["tag_groups"] == [
        SourceTagGroup("JOBS", "Jobs"),
        SourceTagGroup("CUSTOMERS", "Customers"),
    ]
    assert read["tags"] == [
        SourceTag("JOBS", "J001", "Ny hjemmeside"),
        SourceTag("JOBS", "J002", "Skiltning i haven"),
        SourceTag("JOBS", "J003", "Årsrapport 2026"),
        SourceTag("CUSTOMERS", "C001", "Aarhus Kommune"),
        SourceTag("CUSTOMERS", "C002", "Carlsberg Danmark A/S"),
        SourceTag("CUSTOMERS", "C003", "Tivoli A/S"),
        SourceTag("CUSTOMERS", "C004", "Bolig Nord ApS", archived=True),
    ]
    assert read["tax_codes"] == [
        SourceTaxCode("Moms 25", "Moms 25", Decimal("0.25"), TaxCodeKind.INCLUSIVE),
        SourceTaxCode("Momsfri", "Momsfri", Decimal(0), TaxCodeKind.INCLUSIVE),
    ]
    assert read["vendors"][:4] == [
        SourceVendor("V001", "Kontorland A/S", "DKK", code="V001"),
        SourceVendor("V002", "Ørsted Salg & Service A/S", "DKK", code="V002"),
        SourceVendor("V003", "TDC Erhverv", "DKK", code="V003"),
        SourceVendor("V004", "Adobe Systems Software Ireland Ltd", "EUR", code="V004"),
    ]
    assert len(read["vendors"]) == 6
    # Placeholders (1000, 3000) and the account without a code are left out.
    codes = [account.code for account in read["accounts"]]
    assert codes == [
        "1010", "1020", "3010", "3020", "3100", "3110", "3200", "3210", "3300", "3400", "3500",
        "3600", "5820", "6900",
    ]  # fmt: skip
    assert read["accounts"][2] == SourceAccount(guid_of(demo_book, "3010"), "Husleje", "3010")
    assert read["notices"] == []


def test_the_demo_changes_show_in_the_next_read(own_demo: Path) -> None:
    books.rename_vendor(own_demo, "V003", "TDC Erhverv A/S")
    books.hide_account(own_demo, "3300")
    books.add_job(own_demo, "J004", "Forårskampagne", "C002")

    read = read_all(own_demo)

    assert SourceVendor("V003", "TDC Erhverv A/S", "DKK", code="V003") in read["vendors"]
    [hidden] = [account for account in read["accounts"] if account.code == "3300"]
    assert hidden.archived
    assert SourceTag("JOBS", "J004", "Forårskampagne") in read["tags"]


def test_the_awkward_book_maps_its_odd_records_as_the_table_says(awkward_book: Path) -> None:
    read = read_all(awkward_book)

    accounts = [(a.code, a.name, a.archived) for a in read["accounts"]]
    assert (
        accounts
        == [
            ("4000", "Lokaleomkostninger", False),
            ("4000", "Lokaleomkostninger (kopi)", False),  # GUIDs differ: both are accounts
            ("4100", "Gamle udgifter", True),  # hidden
            ("4300", "Café Müller", False),
            ("4310", "東京 事務所 Kontor", False),
            ("4320", "Linje skift og klokke", False),
            ("4330", books.LONG_NAME[:MAX_TEXT].rstrip(), False),
            ("4340", "Søren's Bøger", False),
        ]
    )  # no placeholder (4200), no empty or blank code
    assert len({a.external_id for a in read["accounts"]}) == 8
    assert [(v.external_id, v.name, v.currency, v.archived) for v in read["vendors"]] == [
        ("V1", "Første leverandør", "DKK", False),
        ("V1", "Samme id igen", "DKK", False),  # the planner keeps the first
        ("V2", "Lukket leverandør ApS", "DKK", True),
        ("V3", "Zürich Versicherung", "CHF", False),
        ("V4", "東京 Trading 株式会社", "JPY", False),
    ]
    assert [(t.code, t.name, t.rate, t.archived) for t in read["tax_codes"]] == [
        ("Moms 25", "Moms 25", Decimal("0.25"), False),  # the visible one first
        ("Split moms", "Split moms", Decimal("0.25"), False),  # 12.5 % + 12.5 %
        ("Moms 25", "Moms 25", Decimal("0.25"), True),
        ("Gammel moms", "Gammel moms", Decimal("0.22"), True),
    ]
    assert {t.kind for t in read["tax_codes"]} == {TaxCodeKind.INCLUSIVE}
    assert [(t.group_code, t.code, t.archived) for t in read["tags"]] == [
        ("JOBS", "P1", False),
        ("JOBS", "P1", False),
        ("JOBS", "P2", True),
        ("CUSTOMERS", "K1", False),
        ("CUSTOMERS", "K2", True),
        ("CUSTOMERS", "K3", False),
    ]


def test_cleaned_names_and_skipped_tax_tables_are_told_as_notices(awkward_book: Path) -> None:
    notices = read_all(awkward_book)["notices"]

    skipped = [(n.kind, n.reference) for n in notices if n.skipped]
    assert skipped == [(Kind.TAX_CODE, "Miljøafgift"), (Kind.TAX_CODE, "Blandet")]
    assert all("amount entry" in n.message for n in notices if n.skipped)
    cleaned = {(n.kind, n.reference): n.message for n in notices if not n.skipped}
    assert set(cleaned) == {
        (Kind.TAG, "CUSTOMERS/K3"),
        (Kind.VENDOR, "V3"),
        (Kind.ACCOUNT, "4300"),
        (Kind.ACCOUNT, "4310"),
        (Kind.ACCOUNT, "4320"),
        (Kind.ACCOUNT, "4330"),
    }
    assert "cut to 255 characters" in cleaned[(Kind.ACCOUNT, "4330")]
    assert "control characters removed" in cleaned[(Kind.ACCOUNT, "4320")]


def test_notices_are_told_once_however_often_a_stream_is_read(awkward_book: Path) -> None:
    with reader(awkward_book) as book:
        list(book.vendors())
        list(book.vendors())
        assert list(book.notices()) == [
            SourceNotice(
                Kind.VENDOR,
                "V3",
                "its name was cleaned: tabs and line breaks made spaces, leading or trailing"
                " spaces removed",
            )
        ]


@pytest.mark.parametrize(
    ("raw", "clean", "changed"),
    [
        ("Kontorland A/S", "Kontorland A/S", ()),
        ("  Café  ", "Café", ("leading or trailing spaces removed",)),
        ("a\tb", "a b", ("tabs and line breaks made spaces",)),
        ("a\x00b\x7fc\x9bd", "abcd", ("control characters removed",)),
        ("東京 ø ü", "東京 ø ü", ()),
        ("x" * 300, "x" * 255, ("cut to 255 characters",)),
        ("", "", ()),
        (None, "", ()),
    ],
)
def test_a_name_is_cleaned_to_what_pleo_takes(
    raw: str | None, clean: str, changed: tuple[str, ...]
) -> None:
    result = clean_name(raw)

    assert (result.text, result.changes) == (clean, changed)
    assert clean_name(result.text).changes == ()  # cleaning a clean name changes nothing


def test_the_planner_reports_the_awkward_books_duplicates_and_creates_the_rest(
    awkward_book: Path,
) -> None:
    choices = SyncChoices(tag_groups=["JOBS", "CUSTOMERS"], tax_codes=True, vendors=True)
    with reader(awkward_book) as book:
        plan = plan_sync(book, [], frozenset(), choices)

    reported = {(p.kind, p.reference) for p in plan.problems}
    assert {(Kind.VENDOR, "V1"), (Kind.TAG, "P1"), (Kind.TAX_CODE, "Moms 25")} <= reported
    created = plan.counts()
    assert created[(Kind.TAG_GROUP, Action.CREATE)] == 2
    assert created[(Kind.TAG, Action.CREATE)] == 3  # P1, K1, K3: archived ones are not created
    assert created[(Kind.TAX_CODE, Action.CREATE)] == 2  # Moms 25, Split moms
    assert created[(Kind.VENDOR, Action.CREATE)] == 3  # V1, V3, V4
    assert created[(Kind.ACCOUNT, Action.CREATE)] == 7  # all but the hidden 4100


def test_a_large_book_streams_every_record(tmp_path: Path) -> None:
    path = books.write_large_book(tmp_path / "large.gnucash", 2500)
    counts = books.large_counts(2500)

    with reader(path) as book:
        assert sum(1 for _ in book.accounts()) == counts["accounts"]
        assert sum(1 for _ in book.vendors()) == counts["vendors"]
        tags = [tag.group_code for tag in book.tags()]
        assert (tags.count("JOBS"), tags.count("CUSTOMERS")) == (
            counts["jobs"],
            counts["customers"],
        )
        assert len(list(book.tax_codes())) == 3


# --- unreadable books ------------------------------------------------------------------------


def unreadable(path: Path | str) -> SourceError:
    with pytest.raises(SourceError) as raised, reader(path):
        pass
    return raised.value


def test_a_missing_book_says_so(tmp_path: Path) -> None:
    error = unreadable(tmp_path / "nowhere.gnucash")

    assert error.problem is SourceProblem.NOT_FOUND
    assert "missing" in error.user_message


def test_a_file_that_is_not_sqlite_is_not_a_book(tmp_path: Path) -> None:
    (tmp_path / "notes.gnucash").write_text("regnskab 2026\n", encoding="utf-8")

    error = unreadable(tmp_path / "notes.gnucash")

    assert error.problem is SourceProblem.INVALID
    assert "not a GnuCash book: it is not an SQLite database" in error.user_message


def test_another_sqlite_database_is_not_a_book(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "other.sqlite")) as connection, connection:
        connection.execute("CREATE TABLE accounts (id INTEGER)")

    error = unreadable(tmp_path / "other.sqlite")

    assert error.problem is SourceProblem.INVALID
    assert "an SQLite database but not a GnuCash book" in error.user_message


def test_a_book_saved_as_xml_is_told_to_be_saved_as_sqlite(tmp_path: Path) -> None:
    (tmp_path / "book.gnucash").write_bytes(b"\x1f\x8b\x08\x00compressed xml")

    error = unreadable(tmp_path / "book.gnucash")

    assert error.problem is SourceProblem.INVALID
    assert "saved as XML" in error.user_message


def test_a_locked_book_says_gnucash_has_it_open(own_demo: Path) -> None:
    books.make_unreadable(own_demo, "locked")

    error = unreadable(own_demo)

    assert error.problem is SourceProblem.LOCKED
    assert "locked" in error.user_message
    books.restore_readable(own_demo)
    assert len(read_all(own_demo)["vendors"]) == 6


def test_a_book_from_a_newer_gnucash_says_so(own_demo: Path) -> None:
    books.make_newer(own_demo)

    error = unreadable(own_demo)

    assert error.problem is SourceProblem.UNSUPPORTED
    assert "from a newer GnuCash (5.1) than this connector reads (up to 4.1)" in error.user_message


@pytest.mark.parametrize("how", ["missing", "not_a_book"])
def test_the_demos_unreadable_book_is_restored(own_demo: Path, how: str) -> None:
    books.make_unreadable(own_demo, how)
    assert unreadable(own_demo).problem in (SourceProblem.NOT_FOUND, SourceProblem.INVALID)

    books.restore_readable(own_demo)

    assert len(read_all(own_demo)["vendors"]) == 6


# --- where a book is read from ---------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://erp.example/book.gnucash", "http://erp.example/b"])
def test_a_url_is_no_kind_of_book_source(url: str) -> None:
    with pytest.raises(ValidationError, match="not read from a URL"):
        GnuCashSettings(book=url)


def test_a_relative_path_is_refused_by_the_form() -> None:
    with pytest.raises(ValidationError, match="not an address"):
        GnuCashSettings(book="books/demo.gnucash")


def test_a_path_is_read_only_where_the_deployment_allows_local_sources(demo_book: Path) -> None:
    error = unreadable_with(str(demo_book), SourceOpener(SourcePolicy(allow_local=False)))

    assert error.problem is SourceProblem.REFUSED
    assert "does not read files from its own disk" in error.user_message
    assert "https" not in error.user_message


def unreadable_with(source: str, opener: SourceOpener) -> SourceError:
    with pytest.raises(SourceError) as raised, reader(source, opener):
        pass
    return raised.value


@pytest.fixture
def s3(demo_book: Path) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        client.put_object(Bucket=BUCKET, Key="books/demo.gnucash", Body=demo_book.read_bytes())
        yield client


class CountingS3:
    """moto's client, counting the objects whose body was sent."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.bodies = 0

    def get_object(self, **parameters: Any) -> Any:
        answer = self.client.get_object(**parameters)
        self.bodies += 1
        return answer


def test_a_book_in_s3_is_downloaded_once_while_its_etag_holds(
    s3: Any, own_demo: Path, tmp_path: Path
) -> None:
    counting = CountingS3(s3)
    opener = SourceOpener(SourcePolicy(bucket=BUCKET, prefix="books"), s3_client=lambda: counting)
    cache = BookCache(tmp_path / "cache")
    source = f"s3://{BUCKET}/books/demo.gnucash"

    for _ in range(2):
        with GnuCashReader(source, opener, cache) as book:
            assert [v.name for v in book.vendors()][2] == "TDC Erhverv"
    assert counting.bodies == 1  # the second run got a 304

    books.rename_vendor(own_demo, "V003", "TDC Erhverv A/S")
    s3.put_object(Bucket=BUCKET, Key="books/demo.gnucash", Body=own_demo.read_bytes())
    with GnuCashReader(source, opener, cache) as book:
        assert [v.name for v in book.vendors()][2] == "TDC Erhverv A/S"
    assert counting.bodies == 2


def test_a_book_in_s3_larger_than_the_cap_is_refused(s3: Any, tmp_path: Path) -> None:
    opener = SourceOpener(
        SourcePolicy(bucket=BUCKET, prefix="books", max_bytes=10_000), s3_client=lambda: s3
    )

    with pytest.raises(SourceError) as raised:
        GnuCashReader(f"s3://{BUCKET}/books/demo.gnucash", opener, BookCache(tmp_path)).__enter__()

    assert raised.value.problem is SourceProblem.TOO_LARGE
    assert "The GnuCash book is larger than this deployment reads" in raised.value.user_message
    assert list(tmp_path.iterdir()) == []


def test_a_missing_book_in_s3_says_so(s3: Any) -> None:
    opener = SourceOpener(SourcePolicy(bucket=BUCKET, prefix="books"), s3_client=lambda: s3)

    error = unreadable_with(f"s3://{BUCKET}/books/gone.gnucash", opener)

    assert error.problem is SourceProblem.NOT_FOUND
    assert error.user_message == "There is no GnuCash book at that S3 address."


def test_a_book_outside_the_bucket_or_prefix_is_refused(s3: Any) -> None:
    opener = SourceOpener(SourcePolicy(bucket=BUCKET, prefix="books"), s3_client=lambda: s3)

    for source in (f"s3://{BUCKET}/other/demo.gnucash", "s3://another-bucket/books/demo.gnucash"):
        error = unreadable_with(source, opener)
        assert error.problem is SourceProblem.REFUSED
        assert f"reads S3 books only from s3://{BUCKET}/books/" in error.user_message


def test_a_book_in_s3_where_no_bucket_is_named_is_refused() -> None:
    error = unreadable_with("s3://acme-books/books/demo.gnucash", SourceOpener(SourcePolicy()))

    assert error.problem is SourceProblem.REFUSED
    assert "does not read books from S3" in error.user_message


# --- has the book changed since? ------------------------------------------------------------------


def test_a_local_book_is_unchanged_until_it_is_written_again(own_demo: Path) -> None:
    adapter = GnuCashAdapter(LOCAL)
    settings = GnuCashSettings(book=str(own_demo))
    with adapter.open_reader(settings) as book:
        revision = book.revision
    assert revision is not None

    assert adapter.source_unchanged(settings, revision)
    books.rename_vendor(own_demo, "V003", "TDC Erhverv A/S")
    assert not adapter.source_unchanged(settings, revision)


def test_a_book_in_s3_is_asked_by_its_etag_without_its_body(
    s3: Any, own_demo: Path, tmp_path: Path
) -> None:
    counting = CountingS3(s3)
    opener = SourceOpener(SourcePolicy(bucket=BUCKET, prefix="books"), s3_client=lambda: counting)
    adapter = GnuCashAdapter(opener)
    settings = GnuCashSettings(book=f"s3://{BUCKET}/books/demo.gnucash")
    with GnuCashReader(settings.book, opener, BookCache(tmp_path / "cache")) as book:
        revision = book.revision
    assert revision is not None
    assert revision.etag

    assert adapter.source_unchanged(settings, revision)
    assert counting.bodies == 1  # the question got a 304, no body

    books.rename_vendor(own_demo, "V003", "TDC Erhverv A/S")
    s3.put_object(Bucket=BUCKET, Key="books/demo.gnucash", Body=own_demo.read_bytes())
    assert not adapter.source_unchanged(settings, revision)


def test_the_question_follows_the_deployments_rules_for_books(tmp_path: Path) -> None:
    adapter = GnuCashAdapter(SourceOpener(SourcePolicy(allow_local=False)))
    settings = GnuCashSettings.model_construct(book=str(tmp_path / "demo.gnucash"))

    with pytest.raises(SourceError):
        adapter.source_unchanged(settings, Revision(etag="1-2-3"))
