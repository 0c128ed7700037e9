#!/usr/bin/python3
"""Books saved by GnuCash's own engine, so that the tests read what GnuCash writes, not only what
this project's writer (`local/gnucash_books.py`, on piecash) makes of the format.

It runs under Debian's Python (`/usr/bin/python3`), where Debian's `python3-gnucash` bindings
live (`local/bootstrap.sh gnucash` installs them), and imports nothing of the project. Commands:

    write PATH      the book of Havblik Consulting ApS, saved as SQLite
    write-xml PATH  the same book in GnuCash's own default format (XML, gzip-compressed)
    change PATH     three edits made in GnuCash: a vendor renamed, an account hidden, a job added
    hold PATH       the book open in GnuCash (its lock taken) until standard input closes

What the book holds, and the edits, are in `gnucash_engine_book.json` beside it, which the tests
read too (they run under the project's Python, where this module does not import).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import gnucash
from gnucash import Account, GncNumeric, Session, SessionOpenMode, Split, Transaction
from gnucash.gnucash_business import Customer, Job, TaxTable, TaxTableEntry, Vendor

BOOK: dict[str, Any] = json.loads(
    (Path(__file__).with_name("gnucash_engine_book.json")).read_text(encoding="utf-8")
)
TYPES = {
    "ASSET": gnucash.ACCT_TYPE_ASSET,
    "BANK": gnucash.ACCT_TYPE_BANK,
    "STOCK": gnucash.ACCT_TYPE_STOCK,
    "LIABILITY": gnucash.ACCT_TYPE_LIABILITY,
    "EQUITY": gnucash.ACCT_TYPE_EQUITY,
    "INCOME": gnucash.ACCT_TYPE_INCOME,
    "EXPENSE": gnucash.ACCT_TYPE_EXPENSE,
}


def _currency(book: Any, code: str) -> Any:
    return book.get_table().lookup("CURRENCY", code)


def _add_accounts(
    book: Any, parent: Any, accounts: list[dict[str, Any]], made: dict[str, Any]
) -> None:
    for spec in accounts:
        account = Account(book)
        account.BeginEdit()
        account.SetName(spec["name"])
        account.SetType(TYPES[spec["type"]])
        if spec["type"] == "STOCK":
            table = book.get_table()
            share = gnucash.GncCommodity(
                book, spec["name"], "NASDAQ", spec["ticker"], spec["ticker"], 1
            )
            table.insert(share)
            account.SetCommodity(share)
        else:
            account.SetCommodity(_currency(book, BOOK["currency"]))
        account.SetCode(spec.get("code", ""))
        account.SetPlaceholder(spec.get("placeholder", False))
        account.SetHidden(spec.get("hidden", False))
        parent.append_child(account)
        account.CommitEdit()
        made[spec["name"]] = account
        _add_accounts(book, account, spec.get("children", []), made)


def _add_transaction(book: Any, accounts: dict[str, Any], spec: dict[str, Any]) -> None:
    currency = _currency(book, BOOK["currency"])
    transaction = Transaction(book)
    transaction.BeginEdit()
    transaction.SetCurrency(currency)
    transaction.SetDate(*spec["date"])
    transaction.SetDescription(spec["description"])
    amount = GncNumeric(spec["amount"], 100)
    for name, value in ((spec["debit"], amount), (spec["credit"], amount.neg())):
        split = Split(book)
        split.SetParent(transaction)
        split.SetAccount(accounts[name])
        split.SetValue(value)
        split.SetAmount(value)
    transaction.CommitEdit()


def _fill(book: Any) -> None:
    accounts: dict[str, Any] = {}
    _add_accounts(book, book.get_root_account(), BOOK["accounts"], accounts)
    for spec in BOOK["transactions"]:
        _add_transaction(book, accounts, spec)
    owners: dict[str, Any] = {}
    for spec in BOOK["vendors"]:
        vendor = Vendor(book, spec["id"], _currency(book, spec["currency"]), spec["name"])
        vendor.SetActive(spec.get("active", True))
        owners[spec["id"]] = vendor
    for spec in BOOK["customers"]:
        customer = Customer(book, spec["id"], _currency(book, spec["currency"]), spec["name"])
        customer.SetActive(spec.get("active", True))
        owners[spec["id"]] = customer
    for spec in BOOK["jobs"]:
        job = Job(book, spec["id"], owners[spec["owner"]], spec["name"])
        job.SetActive(spec.get("active", True))
    for spec in BOOK["tax_tables"]:
        entries = [
            TaxTableEntry(
                accounts[entry["account"]], entry["percent"], GncNumeric(entry["amount"], 100)
            )
            for entry in spec["entries"]
        ]
        table = TaxTable(book, spec["name"], entries[0])
        for entry in entries[1:]:
            table.AddEntry(entry)


def write(path: str, scheme: str) -> None:
    uri = f"{scheme}://{path}"
    if scheme == "sqlite3":
        # An SQL book is written as it is edited: create the store, then fill it once reopened
        # (filling the session that created it fails GnuCash 4's first commit of the book).
        Session(uri, SessionOpenMode.SESSION_NEW_STORE).end()
        session = Session(uri, SessionOpenMode.SESSION_NORMAL_OPEN)
    else:
        session = Session(uri, SessionOpenMode.SESSION_NEW_STORE)
    _fill(session.book)
    session.save()
    session.end()


def change(path: str) -> None:
    edits = BOOK["changes"]
    session = Session(f"sqlite3://{path}", SessionOpenMode.SESSION_NORMAL_OPEN)
    book = session.book
    vendor_id, name = edits["rename_vendor"]
    vendor = book.VendorLookupByID(vendor_id)
    vendor.SetName(name)
    account = book.get_root_account().lookup_by_code(edits["hide_account"])
    account.BeginEdit()
    account.SetHidden(True)
    account.CommitEdit()
    job_id, job_name, customer_id = edits["add_job"]
    Job(book, job_id, book.CustomerLookupByID(customer_id), job_name)
    session.save()
    session.end()


def hold(path: str) -> None:
    session = Session(f"sqlite3://{path}", SessionOpenMode.SESSION_NORMAL_OPEN)
    print("open", flush=True)
    sys.stdin.read()
    session.end()


def main(argv: list[str]) -> None:
    command, path = argv
    if command == "write":
        write(path, "sqlite3")
    elif command == "write-xml":
        write(path, "xml")
    elif command == "change":
        change(path)
    elif command == "hold":
        hold(path)
    else:
        raise SystemExit(f"unknown command: {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
