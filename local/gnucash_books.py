"""GnuCash books for the demo, the tests and the benchmarks, written as GnuCash writes SQLite books.

piecash creates each book (its schema, versions table, root account and currency); the records are
then written straight into its tables with sqlite3, so a book of 100,000 records takes a couple of
seconds rather than the minutes piecash's objects would. GUIDs come from a seeded generator: the
same call writes the same book.

Books (each function takes the path to write and returns it):
- `write_demo_book`: Nordlys Design ApS, a small Danish design studio: DKK, a chart of accounts
  with codes, a few vendors, a 25 % moms tax table and a 0 % one, customers and their jobs.
- `write_large_book(path, entities)`: `entities` records in all (accounts, vendors, jobs and
  customers, plus a few tax tables), for the benchmarks (10,000 and 100,000).
- `write_awkward_book`: the cases a reader must survive: duplicate codes and ids, hidden and
  placeholder accounts, an account without a code, inactive vendors, customers and jobs, unicode
  and odd white space in names, a name longer than Pleo takes, amount-based and invisible tax
  tables.

The demo story's three changes to a book, and the failure it shows:
- `rename_vendor(path, vendor_id, name)`, `hide_account(path, code)`,
  `add_job(path, job_id, name, customer_id)`; `DEMO_CHANGES` are the demo's arguments.
- `make_unreadable(path, how)` with `how` one of "locked" (GnuCash's lock row, as when GnuCash
  has the book open), "missing" (the file moved aside) or "not_a_book" (another file in its
  place); `restore_readable(path)` undoes any of them.
- `make_newer(path)`: the versions table of a newer GnuCash (for the tests).

CLI: `.venv/bin/python -m local.gnucash_books demo|large|awkward PATH [--entities N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import sqlite3
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

# GnuCash's owner types (gncOwner.h): a job's owner is a customer or a vendor.
OWNER_CUSTOMER = 2
ENTRY_AMOUNT = 1
ENTRY_PERCENTAGE = 2
_ASIDE = ".unreadable"


@dataclass(frozen=True, slots=True)
class Account:
    code: str
    name: str
    kind: str = "EXPENSE"
    placeholder: bool = False
    hidden: bool = False
    parent: str | None = None  # the parent's code; None: under the root


@dataclass(frozen=True, slots=True)
class Vendor:
    id: str
    name: str
    currency: str = "DKK"
    active: bool = True


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    name: str
    customer: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class TaxTable:
    name: str
    entries: tuple[tuple[int, str], ...]  # (ENTRY_PERCENTAGE or ENTRY_AMOUNT, value as text)
    invisible: bool = False


@dataclass(frozen=True, slots=True)
class BookContent:
    accounts: Sequence[Account] = ()
    vendors: Sequence[Vendor] = ()
    customers: Sequence[Customer] = ()
    jobs: Sequence[Job] = ()
    tax_tables: Sequence[TaxTable] = ()


DEMO = BookContent(
    accounts=(
        Account("1000", "Omsætning", "INCOME", placeholder=True),
        Account("1010", "Salg af designydelser", "INCOME", parent="1000"),
        Account("1020", "Salg af tryksager", "INCOME", parent="1000"),
        Account("3000", "Udgifter", placeholder=True),
        Account("3010", "Husleje", parent="3000"),
        Account("3020", "El og varme", parent="3000"),
        Account("3100", "Kontorartikler", parent="3000"),
        Account("3110", "Software og abonnementer", parent="3000"),
        Account("3200", "Rejser", parent="3000"),
        Account("3210", "Hotel og ophold", parent="3000"),
        Account("3300", "Repræsentation", parent="3000"),
        Account("3400", "Telefon og internet", parent="3000"),
        Account("3500", "Reklame og markedsføring", parent="3000"),
        Account("3600", "Revisor og rådgivning", parent="3000"),
        Account("", "Diverse", parent="3000"),  # no code: not synced
        Account("5820", "Danske Bank driftskonto", "BANK"),
        Account("6900", "Udgående moms", "LIABILITY"),
    ),
    vendors=(
        Vendor("V001", "Kontorland A/S"),
        Vendor("V002", "Ørsted Salg & Service A/S"),
        Vendor("V003", "TDC Erhverv"),
        Vendor("V004", "Adobe Systems Software Ireland Ltd", "EUR"),
        Vendor("V005", "DSB"),
        Vendor("V006", "Scandic Hotels A/S"),
    ),
    customers=(
        Customer("C001", "Aarhus Kommune"),
        Customer("C002", "Carlsberg Danmark A/S"),
        Customer("C003", "Tivoli A/S"),
        Customer("C004", "Bolig Nord ApS", active=False),
    ),
    jobs=(
        Job("J001", "Ny hjemmeside", "C002"),
        Job("J002", "Skiltning i haven", "C003"),
        Job("J003", "Årsrapport 2026", "C001"),
    ),
    tax_tables=(
        TaxTable("Moms 25", ((ENTRY_PERCENTAGE, "25"),)),
        TaxTable("Momsfri", ((ENTRY_PERCENTAGE, "0"),)),
    ),
)

# The demo's three changes: (vendor id, new name), the code of the account hidden, and the job
# added (id, name, customer id).
DEMO_CHANGES = {
    "rename_vendor": ("V003", "TDC Erhverv A/S"),
    "hide_account": "3300",
    "add_job": ("J004", "Forårskampagne", "C002"),
}

LONG_NAME = "Meget lang kontonavn " * 16  # 336 characters: Pleo takes 255

AWKWARD = BookContent(
    accounts=(
        Account("4000", "Lokaleomkostninger"),
        Account("4000", "Lokaleomkostninger (kopi)"),  # the same code twice
        Account("4100", "Gamle udgifter", hidden=True),
        Account("4200", "Udgiftsgruppe", placeholder=True),
        Account("", "Uden kode"),
        Account("   ", "Kun mellemrum som kode"),
        Account("4300", "  Café Müller  "),
        Account("4310", "東京 事務所\tKontor"),
        Account("4320", "Linje\nskift og \x07klokke"),
        Account("4330", LONG_NAME),
        Account("4340", "Søren's Bøger"),
    ),
    vendors=(
        Vendor("V1", "Første leverandør"),
        Vendor("V1", "Samme id igen"),  # a duplicate vendor id
        Vendor("V2", "Lukket leverandør ApS", active=False),
        Vendor("V3", " Zürich Versicherung\t", "CHF"),
        Vendor("V4", "東京 Trading 株式会社", "JPY"),
    ),
    customers=(
        Customer("K1", "Aktiv kunde"),
        Customer("K2", "Tidligere kunde", active=False),
        Customer("K3", "\tTabulator kunde "),
    ),
    jobs=(
        Job("P1", "Projekt ét", "K1"),
        Job("P1", "Projekt ét igen", "K1"),  # a duplicate job id
        Job("P2", "Afsluttet projekt", "K1", active=False),
    ),
    tax_tables=(
        TaxTable("Moms 25", ((ENTRY_PERCENTAGE, "25"),)),
        TaxTable("Moms 25", ((ENTRY_PERCENTAGE, "25"),), invisible=True),  # GnuCash's copy
        TaxTable("Gammel moms", ((ENTRY_PERCENTAGE, "22"),), invisible=True),
        TaxTable("Split moms", ((ENTRY_PERCENTAGE, "12.5"), (ENTRY_PERCENTAGE, "12.5"))),
        TaxTable("Miljøafgift", ((ENTRY_AMOUNT, "50"),)),
        TaxTable("Blandet", ((ENTRY_PERCENTAGE, "25"), (ENTRY_AMOUNT, "10"))),
    ),
)


# --- writing --------------------------------------------------------------------------------------


def _create_schema(path: Path, currency: str) -> None:
    """An empty book as piecash (and so GnuCash) lays it out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # piecash's mappings warn under SQLAlchemy 1.4
        import piecash

        path.parent.mkdir(parents=True, exist_ok=True)
        book = piecash.create_book(str(path), currency=currency, overwrite=True)
        book.close()
        book.session.get_bind().dispose()


class _Writer:
    def __init__(self, connection: sqlite3.Connection, seed: int) -> None:
        self.db = connection
        self._random = random.Random(seed)
        self._currencies: dict[str, str] = {
            mnemonic: guid
            for guid, mnemonic in connection.execute(
                "SELECT guid, mnemonic FROM commodities WHERE namespace = 'CURRENCY'"
            )
        }
        self.root = connection.execute(
            "SELECT guid FROM accounts WHERE account_type = 'ROOT' AND name = 'Root Account'"
        ).fetchone()[0]
        self._account_by_code: dict[str, str] = {}
        self.customer_by_id: dict[str, str] = {}

    def guid(self) -> str:
        return uuid.UUID(int=self._random.getrandbits(128), version=4).hex

    def currency(self, mnemonic: str) -> str:
        if mnemonic not in self._currencies:
            guid = self.guid()
            self.db.execute(
                "INSERT INTO commodities (guid, namespace, mnemonic, fullname, cusip, fraction,"
                " quote_flag, quote_source, quote_tz) VALUES (?, 'CURRENCY', ?, ?, '', 100, 1,"
                " 'currency', '')",
                (guid, mnemonic, mnemonic),
            )
            self._currencies[mnemonic] = guid
        return self._currencies[mnemonic]

    def accounts(self, accounts: Iterator[Account] | Sequence[Account], currency: str) -> None:
        commodity = self.currency(currency)
        rows = []
        for account in accounts:
            guid = self.guid()
            parent = self._account_by_code.get(account.parent or "", self.root)
            if account.code.strip():
                self._account_by_code.setdefault(account.code, guid)
            rows.append(
                (
                    guid,
                    account.name,
                    account.kind,
                    commodity,
                    parent,
                    account.code,
                    int(account.hidden),
                    int(account.placeholder),
                )
            )
        self.db.executemany(
            "INSERT INTO accounts (guid, name, account_type, commodity_guid, commodity_scu,"
            " non_std_scu, parent_guid, code, description, hidden, placeholder)"
            " VALUES (?, ?, ?, ?, 100, 0, ?, ?, '', ?, ?)",
            rows,
        )

    def vendors(self, vendors: Iterator[Vendor] | Sequence[Vendor]) -> None:
        self.db.executemany(
            "INSERT INTO vendors (guid, active, id, addr_name, name, notes, tax_override,"
            " tax_inc, currency) VALUES (?, ?, ?, ?, ?, '', 0, '2', ?)",
            (
                (self.guid(), int(v.active), v.id, v.name, v.name, self.currency(v.currency))
                for v in vendors
            ),
        )

    def customers(self, customers: Iterator[Customer] | Sequence[Customer], currency: str) -> None:
        commodity = self.currency(currency)
        rows = []
        for customer in customers:
            guid = self.guid()
            self.customer_by_id.setdefault(customer.id, guid)
            rows.append((guid, int(customer.active), customer.id, customer.name, commodity))
        self.db.executemany(
            "INSERT INTO customers (guid, active, id, name, notes, discount_num,"
            " discount_denom, credit_num, credit_denom, tax_override, currency)"
            " VALUES (?, ?, ?, ?, '', 0, 1, 0, 1, 0, ?)",
            rows,
        )

    def jobs(self, jobs: Iterator[Job] | Sequence[Job]) -> None:
        self.db.executemany(
            "INSERT INTO jobs (guid, id, name, reference, active, owner_type, owner_guid)"
            " VALUES (?, ?, ?, '', ?, ?, ?)",
            (
                (
                    self.guid(),
                    job.id,
                    job.name,
                    int(job.active),
                    OWNER_CUSTOMER,
                    self.customer_by_id.get(job.customer),
                )
                for job in jobs
            ),
        )

    def tax_tables(self, tables: Sequence[TaxTable]) -> None:
        account = next(iter(self._account_by_code.values()), self.root)
        for table in tables:
            guid = self.guid()
            self.db.execute(
                "INSERT INTO taxtables (guid, name, refcount, invisible, parent)"
                " VALUES (?, ?, 0, ?, NULL)",
                (guid, table.name, int(table.invisible)),
            )
            for kind, value in table.entries:
                numerator, denominator = _fraction(value)
                self.db.execute(
                    "INSERT INTO taxtable_entries (taxtable, account, amount_num, amount_denom,"
                    " type) VALUES (?, ?, ?, ?, ?)",
                    (guid, account, numerator, denominator, kind),
                )


def _fraction(value: str) -> tuple[int, int]:
    """GnuCash keeps amounts as num/denom: "12.5" is 125/10."""
    whole, _, decimals = value.partition(".")
    denominator = 10 ** len(decimals)
    return int(whole + decimals), denominator


@contextlib.contextmanager
def _book(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path)
    try:
        with connection:
            yield connection
    finally:
        connection.close()


def write_book(path: Path | str, content: BookContent, *, currency: str = "DKK") -> Path:
    """A book holding `content` (the building block of the others)."""
    target = Path(path)
    _create_schema(target, currency)
    with _book(target) as connection:
        writer = _Writer(connection, seed=len(content.accounts) + 7 * len(content.vendors))
        writer.accounts(content.accounts, currency)
        writer.vendors(content.vendors)
        writer.customers(content.customers, currency)
        writer.jobs(content.jobs)
        writer.tax_tables(content.tax_tables)
    return target


def write_demo_book(path: Path | str) -> Path:
    return write_book(path, DEMO)


def write_awkward_book(path: Path | str) -> Path:
    return write_book(path, AWKWARD)


def large_counts(entities: int) -> dict[str, int]:
    """How a large book's records are split: accounts 40 %, vendors 30 %, jobs and customers
    15 % each (tax tables come on top: three)."""
    accounts = entities * 40 // 100
    vendors = entities * 30 // 100
    customers = entities * 15 // 100
    return {
        "accounts": accounts,
        "vendors": vendors,
        "customers": customers,
        "jobs": entities - accounts - vendors - customers,
    }


def write_large_book(path: Path | str, entities: int) -> Path:
    """A book of `entities` records, every one of which syncs (for the benchmarks)."""
    counts = large_counts(entities)
    target = Path(path)
    _create_schema(target, "DKK")
    with _book(target) as connection:
        writer = _Writer(connection, seed=entities)
        writer.accounts(
            (Account(f"{6000 + n}", f"Konto {n:06d}") for n in range(counts["accounts"])), "DKK"
        )
        writer.vendors(
            Vendor(f"V{n:06d}", f"Leverandør {n:06d} ApS") for n in range(counts["vendors"])
        )
        writer.customers(
            (Customer(f"C{n:06d}", f"Kunde {n:06d} A/S") for n in range(counts["customers"])), "DKK"
        )
        writer.jobs(
            Job(f"J{n:06d}", f"Sag {n:06d}", f"C{n % max(counts['customers'], 1):06d}")
            for n in range(counts["jobs"])
        )
        writer.tax_tables(
            [
                TaxTable("Moms 25", ((ENTRY_PERCENTAGE, "25"),)),
                TaxTable("Moms 12,5", ((ENTRY_PERCENTAGE, "12.5"),)),
                TaxTable("Momsfri", ((ENTRY_PERCENTAGE, "0"),)),
            ]
        )
    return target


# --- the demo's changes ---------------------------------------------------------------------------


def _change(path: Path | str, sql: str, parameters: tuple[object, ...], what: str) -> None:
    with _book(Path(path)) as connection:
        if connection.execute(sql, parameters).rowcount == 0:
            raise LookupError(f"the book has no {what}")


def rename_vendor(path: Path | str, vendor_id: str, name: str) -> None:
    """The vendor with id `vendor_id` is called `name` from now on."""
    _change(path, "UPDATE vendors SET name = ? WHERE id = ?", (name, vendor_id), "such vendor")


def hide_account(path: Path | str, code: str) -> None:
    """The account with code `code` is hidden (GnuCash's "hidden" flag), so Pleo archives it."""
    _change(path, "UPDATE accounts SET hidden = 1 WHERE code = ?", (code,), "such account")


def add_job(path: Path | str, job_id: str, name: str, customer_id: str) -> None:
    """A new active job of the customer with id `customer_id`."""
    with _book(Path(path)) as connection:
        owner = connection.execute(
            "SELECT guid FROM customers WHERE id = ?", (customer_id,)
        ).fetchone()
        if owner is None:
            raise LookupError("the book has no such customer")
        connection.execute(
            "INSERT INTO jobs (guid, id, name, reference, active, owner_type, owner_guid)"
            " VALUES (?, ?, ?, '', 1, ?, ?)",
            (uuid.uuid4().hex, job_id, name, OWNER_CUSTOMER, owner[0]),
        )


def make_unreadable(path: Path | str, how: str = "locked") -> None:
    """Make the book one the connector cannot read: "locked" (a row in GnuCash's lock table),
    "missing" (the file moved aside) or "not_a_book" (a text file in its place)."""
    book = Path(path)
    if how == "locked":
        with _book(book) as connection:
            connection.execute("INSERT INTO gnclock (hostname, pid) VALUES ('demo-laptop', 4242)")
    elif how in ("missing", "not_a_book"):
        shutil.move(book, book.with_name(book.name + _ASIDE))
        if how == "not_a_book":
            book.write_text("this is not a GnuCash book\n", encoding="utf-8")
    else:
        raise ValueError(f"unknown way to make a book unreadable: {how!r}")


def restore_readable(path: Path | str) -> None:
    """Undo `make_unreadable`, whichever way it was made."""
    book = Path(path)
    aside = book.with_name(book.name + _ASIDE)
    if aside.exists():
        shutil.move(aside, book)
    if book.exists():
        with _book(book) as connection:
            connection.execute("DELETE FROM gnclock")


def make_newer(path: Path | str) -> None:
    """The versions table of a GnuCash newer than piecash reads (5.x, with a newer table)."""
    with _book(Path(path)) as connection:
        connection.execute(
            "UPDATE versions SET table_version = 5010000 WHERE table_name = 'Gnucash'"
        )
        connection.execute("UPDATE versions SET table_version = 5 WHERE table_name = 'accounts'")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a GnuCash SQLite book.")
    parser.add_argument("which", choices=["demo", "large", "awkward"])
    parser.add_argument("path", type=Path)
    parser.add_argument("--entities", type=int, default=10_000, help="for `large`")
    arguments = parser.parse_args(argv)
    if arguments.which == "demo":
        write_demo_book(arguments.path)
    elif arguments.which == "awkward":
        write_awkward_book(arguments.path)
    else:
        write_large_book(arguments.path, arguments.entities)
    print(arguments.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
