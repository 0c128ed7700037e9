"""Tables and fields for people, JSON for scripts, and progress that stays off stdout."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from pleo_connector.vocabulary import InstallationStatus
from pleo_connector_admin.render import Console, counted, fields, table, to_json, when

pytestmark = pytest.mark.unit

MOMENT = datetime(2026, 12, 2, 19, 4, 5, 123456, tzinfo=UTC)


def test_a_table_aligns_its_columns_and_shows_missing_values_as_a_dash() -> None:
    text = table(
        ["ID", "STATUS", "LAST"], [["a1", InstallationStatus.ACTIVATED, None], ["b", True, MOMENT]]
    )

    assert text.splitlines() == [
        "ID  STATUS     LAST",
        "a1  ACTIVATED  -",
        "b   yes        2026-12-02 19:04:05Z",
    ]


def test_fields_align_their_values() -> None:
    assert fields([("status", "ACTIVATED"), ("paused", False)]).splitlines() == [
        "status: ACTIVATED",
        "paused: no",
    ]


def test_json_writes_times_in_utc_and_enums_as_their_values() -> None:
    loaded = json.loads(to_json({"at": MOMENT, "status": InstallationStatus.INACTIVE}))

    assert loaded == {"at": "2026-12-02T19:04:05+00:00", "status": "INACTIVE"}
    assert when(None) == "-"


def test_progress_of_one_step_is_not_shown_and_of_several_is() -> None:
    short, long = io.StringIO(), io.StringIO()

    one = Console(short)
    one.progress("page 1")
    one.done()
    several = Console(long)
    for page in (1, 2, 3):
        several.progress(f"page {page}")
    several.done()

    assert short.getvalue() == ""
    assert long.getvalue().splitlines() == ["page 1", "page 2", "page 3"]


def test_a_count_takes_its_noun_in_the_right_number() -> None:
    assert [counted(n, "installation") for n in (0, 1, 2)] == [
        "0 installations",
        "1 installation",
        "2 installations",
    ]
    assert counted(3, "entry", "entries") == "3 entries"
