"""Books that GnuCash itself saved, synced through the real worker: what this project's own
writer makes of the format proves little about what GnuCash writes, so here GnuCash's engine
(Debian's `python3-gnucash`, under Debian's Python: `tests/support/gnucash_engine.py`) writes the
book, makes the edits, holds the book open, and saves it in its default XML format.

The book (`tests/support/gnucash_engine_book.json`) has what a real one has and the demo book
lacks: nested placeholder accounts (one with a code), accounts without codes, a stock account,
posted transactions, a vendor in another currency, the same ID for a vendor and a customer (GnuCash
numbers each kind on its own), a tax table of two percentages and one of a fixed amount."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pleo_connector.vocabulary import Kind, SyncOutcome
from tests.integration.sync.engine_world import EngineWorld, sync_once, worker
from tests.integration.sync.gnucash_world import (
    assert_counted_source_failure,
    expected_pleo,
    pleo_now,
    writes,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.sync.engine_world import InstallWorld
    from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.integration

# Debian's Python, where Debian's GnuCash bindings are installed (never the project's venv).
DEBIAN_PYTHON = "/usr/bin/python3"
ENGINE = Path(__file__).parents[2] / "support" / "gnucash_engine.py"
BOOK = json.loads(ENGINE.with_name("gnucash_engine_book.json").read_text(encoding="utf-8"))
CHANGES = BOOK["changes"]


def engine(command: str, path: Path) -> None:
    """One command of GnuCash's engine on `path`; its own log lines are shown only on failure."""
    done = subprocess.run(
        [DEBIAN_PYTHON, str(ENGINE), command, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"GnuCash's engine failed to {command} {path}:\n{done.stderr}"


@contextlib.contextmanager
def open_in_gnucash(path: Path) -> Iterator[None]:
    """The book open in GnuCash's engine, as while someone works in it, until the block ends."""
    with subprocess.Popen(
        [DEBIAN_PYTHON, str(ENGINE), "hold", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as holder:
        assert holder.stdin is not None
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        try:
            yield
        finally:
            holder.stdin.close()
            assert holder.wait(timeout=60) == 0


@pytest.fixture(scope="module", autouse=True)
def gnucash_engine() -> None:
    """GnuCash's engine must be there: `make deps` installs it (`local/bootstrap.sh gnucash`)."""
    found = subprocess.run(
        [DEBIAN_PYTHON, "-c", "import gnucash"], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        pytest.fail(
            "GnuCash's Python bindings are missing: run `local/bootstrap.sh gnucash`"
            f" (make deps)\n{found.stderr}"
        )


@pytest.fixture
def world(install_world: InstallWorld, tmp_path: Path) -> EngineWorld:
    """An activated installation whose settings name a book GnuCash saved as SQLite."""
    book = tmp_path / "havblik.gnucash"
    engine("write", book)
    return install_world(book, "gnucash")


def test_a_book_gnucash_saved_syncs_as_mapped_then_nothing_then_exactly_its_three_edits(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    deps, _ = worker(world.env)

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED
    synced = pleo_now(emulator, world)
    assert synced == expected_pleo(world.source)
    # The book's own facts, beside the mapping: what a reader that misread GnuCash would miss.
    assert {code for _, code, _ in synced["accounts"]} == {
        "5800", "5900", "7200", "7210", "1000", "1010", "2100", "2200", "2300"
    }  # fmt: skip
    assert ("000002", "000002", "Atlassian", "EUR") in synced["vendors"]
    assert {("JOBS", "000001", "Harbour study"), ("CUSTOMERS", "000001", "Fjordline Shipping")} == (
        synced["tags"]
    )
    assert {(code, rate) for code, _, rate, _ in synced["tax_codes"]} == {
        ("Moms 25%", Decimal("0.25")),
        ("Moms + levy", Decimal("0.265")),
    }
    first = world.runs.last_run(world.installation_id)
    assert first is not None
    assert [(p.kind, p.reference) for p in first.problems] == [(Kind.TAX_CODE, "Fixed levy")]

    emulator.control.clear_request_log()
    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED
    assert writes(emulator) == Counter()

    engine("change", world.source)
    emulator.control.clear_request_log()
    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED

    assert sum(writes(emulator).values()) == 3
    now = pleo_now(emulator, world)
    assert now == expected_pleo(world.source)
    vendor_id, vendor_name = CHANGES["rename_vendor"]
    assert (vendor_id, vendor_id, vendor_name, "DKK") in now["vendors"]
    assert CHANGES["hide_account"] not in {code for _, code, _ in now["accounts"]}
    job_id, job_name, _ = CHANGES["add_job"]
    assert ("JOBS", job_id, job_name) in now["tags"]


def test_a_book_open_in_gnucash_is_locked_and_syncs_once_it_is_closed(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    deps, _ = worker(world.env)

    with open_in_gnucash(world.source):
        assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SOURCE_FAILED
        assert_counted_source_failure(world, emulator, "locked")

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SYNCED
    assert world.record().failure_count == 0
    assert pleo_now(emulator, world) == expected_pleo(world.source)


def test_a_book_in_gnucashs_default_xml_format_is_told_to_be_saved_as_sqlite(
    world: EngineWorld, emulator: RunningEmulator
) -> None:
    world.source.unlink()
    engine("write-xml", world.source)
    deps, _ = worker(world.env)

    assert sync_once(deps, world.installation_id, 120) == SyncOutcome.SOURCE_FAILED

    assert_counted_source_failure(world, emulator, "SQLite")
