"""`make demo`'s story end to end (`local.demo.run_demo`), in a local world of its own on free
ports, with every step but the dry run (the settings page's preview is tested on its own): the
output alone must tell the story: the first sync activates the installation, a second one writes
nothing, the book's three changes are exactly three writes, a locked book shows on the page and
recovers, and after the disconnect nothing is left."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import pytest

from local.demo import DEMO_STEPS, run_demo, step_dry_run
from local.services import PORTS, free_port
from local.world import WorldConfig

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e


def _step(output: str, number: int) -> str:
    """The lines of step `number`, up to the next step's title."""
    found = re.search(rf"^{number}\. .*?(?=^\d+\. |^Stopping everything)", output, re.S | re.M)
    assert found is not None, output
    return found.group(0)


def test_the_demo_tells_the_whole_story_from_its_output(tmp_path: Path) -> None:
    config = WorldConfig(
        ports={name: free_port() for name, *_ in PORTS}, state_dir=tmp_path / "world"
    )
    steps = [(title, step) for title, step in DEMO_STEPS if step is not step_dry_run]
    out = io.StringIO()

    code = run_demo(config, out, steps)

    output = out.getvalue()
    assert code == 0, output
    assert output.rstrip().endswith("Demo done."), output
    titles = [title for title, _ in steps]

    connect, save, first, second, change, changed, unreadable, api_key, disconnect = (
        _step(output, number) for number in range(1, len(steps) + 1)
    )
    assert "the installation in Pleo: AUTHORIZED" in connect
    assert "Pleo now shows PENDING_INTEGRATION" in save
    assert "AUTHORIZED -> PENDING_INTEGRATION -> ACTIVATED in Pleo" in first
    for count in ("2 tag groups created", "6 tags created", "2 tax codes created"):
        assert count in first
    assert "6 vendors created" in first
    assert "14 accounts created" in first
    assert "Nothing needed to change." in second
    assert re.search(r"Pleo's request log: \d+ reads, 0 writes", second), second
    assert "vendor V003 renamed" in change
    assert "account 3300 hidden" in change
    assert "job J004" in change
    assert "3 writes of records:" in changed
    assert "V003 is now 'TDC Erhverv A/S'" in changed
    assert "3300 archived" in changed
    assert "J004 'Forårskampagne' in Jobs" in changed
    assert "could not read the accounting system" in unreadable
    assert "The GnuCash book is locked" in unreadable
    assert "0 writes of records" in unreadable
    assert "The failure is gone." in unreadable
    assert "checked live, stored encrypted" in api_key
    assert "GET /settings then -> 401" in disconnect
    assert re.search(r"the table: \d+ items of the two installations before, 0 now", disconnect)
    assert "Pleo: no installation left" in disconnect

    summary = output[output.index("\nSummary\n") :]
    for number, title in enumerate(titles, start=1):
        assert f"{number}. {title}" in summary
    assert "FAILED" not in summary
    assert "no process left" in summary
    assert re.search(r"^  total\s+\d+\.\ds$", summary, re.M), summary
