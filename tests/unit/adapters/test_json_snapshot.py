"""The JSON snapshot adapter (`ADAPTER=json`): its setting, its reader's records, streaming
from a spool whatever the size of the source, and the tag groups the settings page offers."""

from __future__ import annotations

import gc
import json
import os
import tempfile
import time
import tracemalloc
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.json_snapshot import (
    OFFER_REUSE_S,
    STALE_SPOOL_S,
    JsonSnapshotAdapter,
    JsonSnapshotSettings,
)
from pleo_connector.adapters.records import (
    SourceAccount,
    SourceTag,
    SourceTagGroup,
    SourceTaxCode,
    SourceVendor,
    TaxCodeKind,
)
from pleo_connector.adapters.registry import load_adapter
from pleo_connector.adapters.sources import OpenedSource, Revision, SourceOpener, SourcePolicy
from pleo_connector.config import clear_settings_cache
from pleo_connector.web.forms import FormError, form_fields, parse_form
from tests.support.snapshots import encoded, example

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-token"


def local_adapter(**policy: Any) -> JsonSnapshotAdapter:
    return JsonSnapshotAdapter(SourceOpener(SourcePolicy(allow_local=True, **policy)))


def settings_for(path: Path | str) -> JsonSnapshotSettings:
    return JsonSnapshotSettings.model_validate({"source": str(path)})


def write(tmp_path: Path, document: Any, name: str = "snapshot.json") -> Path:
    path = tmp_path / name
    path.write_bytes(document if isinstance(document, bytes) else encoded(document))
    return path


def test_json_is_a_built_in_adapter() -> None:
    adapter = load_adapter("json")

    assert isinstance(adapter, JsonSnapshotAdapter)
    assert adapter.name == "json"
    assert adapter.settings_model is JsonSnapshotSettings


def test_the_reader_maps_every_field_of_the_example_to_its_record(tmp_path: Path) -> None:
    adapter = local_adapter()

    with adapter.open_reader(settings_for(write(tmp_path, example()))) as reader:
        assert list(reader.tag_groups()) == [SourceTagGroup(code="DEPT", name="Departments")]
        assert list(reader.tags()) == [SourceTag(group_code="DEPT", code="D-100", name="Sales")]
        assert list(reader.tax_codes()) == [
            SourceTaxCode(
                code="S25", name="VAT 25%", rate=Decimal("0.25"), kind=TaxCodeKind.INCLUSIVE
            )
        ]
        assert list(reader.vendors()) == [
            SourceVendor(
                external_id="V-1", name="Paper Co", currency="DKK", code="V-1", country="DK"
            )
        ]
        assert list(reader.accounts()) == [
            SourceAccount(external_id="6100", name="Travel", code="6100", tax_code="S25")
        ]


def test_values_survive_the_spool_exactly(tmp_path: Path) -> None:
    document = example()
    document["tagGroups"][0]["tags"][0]["name"] = 'Salg "Nord"\n\u2028 ✓ \ud800'
    document["taxCodes"][0].update(type="reverse", archived=True)
    document["vendors"][0].update(registrationNumber="DK-1", taxRegistrationNumber="DK123")
    document["accounts"][0]["taxCode"] = None
    text = json.dumps(document).replace("0.25", "0.12500000000000000001").encode()

    with local_adapter().open_reader(settings_for(write(tmp_path, text))) as reader:
        [tag] = reader.tags()
        [tax] = reader.tax_codes()
        [vendor] = reader.vendors()
        [account] = reader.accounts()

    assert tag.name == 'Salg "Nord"\n\u2028 ✓ \ud800'
    assert (tax.rate, tax.kind, tax.archived) == (
        Decimal("0.12500000000000000001"),
        TaxCodeKind.REVERSE,
        True,
    )
    assert (vendor.registration_number, vendor.tax_registration_number) == ("DK-1", "DK123")
    assert account.tax_code is None


def test_tags_name_their_group_even_when_its_code_follows_them(tmp_path: Path) -> None:
    document = example()
    document["tagGroups"] = [
        {"tags": [{"code": "P1", "name": "Apollo"}], "name": "Projects", "code": "PROJ"},
        {"code": "DEPT", "name": "Departments", "tags": [{"code": "D1", "name": "Sales"}]},
    ]

    with local_adapter().open_reader(settings_for(write(tmp_path, document))) as reader:
        tags = [(tag.group_code, tag.code) for tag in reader.tags()]

    assert tags == [("PROJ", "P1"), ("DEPT", "D1")]


def test_records_can_be_streamed_more_than_once_while_the_reader_is_open(tmp_path: Path) -> None:
    with local_adapter().open_reader(settings_for(write(tmp_path, example()))) as reader:
        first = list(reader.vendors())
        assert list(reader.vendors()) == first


def test_an_invalid_document_is_refused_on_opening_before_any_record_is_handed_out(
    tmp_path: Path,
) -> None:
    document = example()
    document["accounts"][0]["externalId"] = 6100  # the last section: all else was valid
    reader = local_adapter().open_reader(settings_for(write(tmp_path, document)))

    with pytest.raises(SourceError) as raised, reader:
        pytest.fail("the reader opened")

    assert raised.value.location == "accounts[0].externalId"
    with pytest.raises(RuntimeError):
        list(reader.tag_groups())


def test_the_spool_is_removed_on_closing_and_on_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spools = tmp_path / "tmp"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    good = write(tmp_path, example())
    bad = write(tmp_path, b'{"version": 1, "vendors": [oops', "bad.json")
    adapter = local_adapter()

    with adapter.open_reader(settings_for(good)) as reader:
        assert list(spools.iterdir())
        list(reader.vendors())
    with pytest.raises(SourceError), adapter.open_reader(settings_for(bad)):
        pass

    assert list(spools.iterdir()) == []


def test_a_spool_left_by_a_run_that_died_is_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spools = tmp_path / "tmp"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    stale = spools / "snapshot-dead"
    stale.mkdir()
    (stale / "vendors.jsonl").write_text("[]\n")
    old = time.time() - STALE_SPOOL_S - 60
    os.utime(stale, (old, old))
    recent = spools / "snapshot-running"
    recent.mkdir()

    with local_adapter().open_reader(settings_for(write(tmp_path, example()))):
        pass

    assert sorted(path.name for path in spools.iterdir()) == ["snapshot-running"]


def test_a_source_the_deployment_refuses_fails_on_opening(tmp_path: Path) -> None:
    adapter = JsonSnapshotAdapter(SourceOpener(SourcePolicy(allow_local=False)))

    with (
        pytest.raises(SourceError) as raised,
        adapter.open_reader(settings_for(write(tmp_path, example()))),
    ):
        pass

    assert raised.value.problem is SourceProblem.REFUSED


def test_the_descriptor_follows_the_deployments_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, example())
    clear_settings_cache()
    monkeypatch.setenv("ALLOW_LOCAL_SOURCES", "true")
    try:
        with JsonSnapshotAdapter().open_reader(settings_for(path)) as reader:
            assert [group.code for group in reader.tag_groups()] == ["DEPT"]
        monkeypatch.setenv("ALLOW_LOCAL_SOURCES", "false")
        clear_settings_cache()
        with pytest.raises(SourceError), JsonSnapshotAdapter().open_reader(settings_for(path)):
            pass
    finally:
        clear_settings_cache()


def test_tags_stream_memory_stays_flat_however_many_there_are(tmp_path: Path) -> None:
    """Opening and streaming 20,000 tags holds a small part of what the same tags take when
    held all at once, which is what a reader that kept them would hold."""
    tags = [{"code": f"T-{n:06d}", "name": f"Tag number {n}"} for n in range(20_000)]
    document = example()
    document["tagGroups"][0]["tags"] = tags
    settings = settings_for(write(tmp_path, document))
    adapter = local_adapter(max_bytes=10 * 1024 * 1024)
    del document, tags
    gc.collect()

    tracemalloc.start()
    try:
        with adapter.open_reader(settings) as reader:
            count = sum(1 for _ in reader.tags())
            _, streaming_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            held = list(reader.tags())
            holding, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == len(held) == 20_000
    assert streaming_peak * 5 < holding - before


# --- the setting ---------------------------------------------------------------------------------


def test_the_source_is_a_secret_field_never_shown_back() -> None:
    saved = settings_for(f"https://erp.example/x.json?token={SECRET}")

    [field] = form_fields(JsonSnapshotSettings, saved)

    assert field.input_type == "password"
    assert field.value is None
    assert SECRET not in repr(saved)


def test_a_source_of_the_wrong_shape_is_a_form_error_that_does_not_repeat_it() -> None:
    with pytest.raises(FormError) as raised:
        parse_form(JsonSnapshotSettings, {"source": [f"http://erp.example/?token={SECRET}"]})

    assert "https://" in raised.value.errors["source"]
    assert SECRET not in raised.value.errors["source"]


def test_a_validation_error_of_the_setting_never_holds_the_source() -> None:
    with pytest.raises(ValidationError) as raised:
        JsonSnapshotSettings.model_validate({"source": f"ftp://erp.example/?token={SECRET}"})

    assert SECRET not in str(raised.value)


# --- what the settings page offers ---------------------------------------------------------------


class CountingOpener(SourceOpener):
    """Counts reads that returned a body, and asks that returned "unchanged"."""

    def __init__(self, policy: SourcePolicy) -> None:
        super().__init__(policy)
        self.bodies = 0
        self.unchanged = 0
        self.limits: list[float | None] = []

    def open(
        self, source: str, *, known: Revision | None = None, time_limit_s: float | None = None
    ) -> OpenedSource | None:
        self.limits.append(time_limit_s)
        opened = super().open(source, known=known, time_limit_s=time_limit_s)
        if opened is None:
            self.unchanged += 1
        else:
            self.bodies += 1
        return opened


def test_before_the_connection_is_configured_nothing_is_offered() -> None:
    assert JsonSnapshotAdapter(SourceOpener(SourcePolicy())).offered_tag_groups(None) == ()


def test_the_documents_groups_are_offered_without_the_archived_ones(tmp_path: Path) -> None:
    document = example()
    document["tagGroups"] += [
        {"code": "OLD", "name": "Old projects", "archived": True},
        {"code": "COST", "name": "Cost centres"},
    ]
    adapter = local_adapter()

    offered = adapter.offered_tag_groups(settings_for(write(tmp_path, document)))

    assert list(offered) == [("DEPT", "Departments"), ("COST", "Cost centres")]


def test_offered_groups_are_read_again_only_when_the_source_changed(tmp_path: Path) -> None:
    path = write(tmp_path, example())
    opener = CountingOpener(SourcePolicy(allow_local=True))
    adapter = JsonSnapshotAdapter(opener)

    adapter.offered_tag_groups(settings_for(path))
    adapter.offered_tag_groups(settings_for(path))
    assert (opener.bodies, opener.unchanged) == (1, 1)

    changed = example()
    changed["tagGroups"][0]["name"] = "Afdelinger"
    write(tmp_path, changed)

    assert list(adapter.offered_tag_groups(settings_for(path))) == [("DEPT", "Afdelinger")]
    assert opener.bodies == 2
    assert opener.limits == [8.0, 8.0, 8.0]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class UnversionedOpener(CountingOpener):
    """A source that gives no ETag or Last-Modified, as some servers do not."""

    def open(
        self, source: str, *, known: Revision | None = None, time_limit_s: float | None = None
    ) -> OpenedSource | None:
        opened = super().open(source, known=known, time_limit_s=time_limit_s)
        if opened is not None:
            opened.revision = Revision()
        return opened


def test_groups_of_a_source_without_a_version_are_reused_for_a_while(tmp_path: Path) -> None:
    path = write(tmp_path, example())
    opener = UnversionedOpener(SourcePolicy(allow_local=True))
    clock = Clock()
    adapter = JsonSnapshotAdapter(opener, clock=clock)

    adapter.offered_tag_groups(settings_for(path))
    clock.now += OFFER_REUSE_S - 1
    adapter.offered_tag_groups(settings_for(path))
    assert opener.bodies == 1

    clock.now += 2
    adapter.offered_tag_groups(settings_for(path))
    assert opener.bodies == 2


def test_a_source_that_cannot_be_used_offers_nothing_so_the_page_still_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = example()
    document["tagGroups"][0]["code"] = None
    adapter = local_adapter()

    assert adapter.offered_tag_groups(settings_for(write(tmp_path, document))) == ()
    assert adapter.offered_tag_groups(settings_for(tmp_path / "missing.json")) == ()
    secret_url = JsonSnapshotSettings.model_validate(
        {"source": f"https://127.0.0.1/x?token={SECRET}"}
    )
    assert adapter.offered_tag_groups(secret_url) == ()
    assert SECRET not in capsys.readouterr().out


def test_offering_groups_checks_the_groups_and_reads_no_further(tmp_path: Path) -> None:
    """The page needs the groups alone: the sync checks the rest. A document whose tagGroups
    come first is not read past them, which the broken text after them shows."""
    document = example()
    document["vendors"][0]["currency"] = None
    document["tagGroups"][0]["tags"][0]["name"] = 7
    first = write(tmp_path, document, "first.json")
    text = b'{"version": 1, "tagGroups": [{"code": "DEPT", "name": "Departments"}], "vendors": ['
    second = write(tmp_path, text + b"not json at all", "second.json")
    adapter = local_adapter()

    assert list(adapter.offered_tag_groups(settings_for(first))) == [("DEPT", "Departments")]
    assert list(adapter.offered_tag_groups(settings_for(second))) == [("DEPT", "Departments")]
    with pytest.raises(SourceError), adapter.open_reader(settings_for(second)):
        pass


# --- has the document changed since? --------------------------------------------------------------


def test_a_read_names_its_revision_and_the_question_is_answered_by_it(tmp_path: Path) -> None:
    path = write(tmp_path, example())
    adapter = local_adapter()
    with adapter.open_reader(settings_for(path)) as snapshot:
        revision = snapshot.revision
    assert revision is not None
    assert revision.known

    assert adapter.source_unchanged(settings_for(path), revision)
    changed = example()
    changed["tagGroups"][0]["name"] = "Afdelinger"
    write(tmp_path, changed)
    assert not adapter.source_unchanged(settings_for(path), revision)


def test_a_revision_that_names_nothing_is_never_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path, example())
    opener = CountingOpener(SourcePolicy(allow_local=True))

    assert not opener.unchanged_since(str(path), Revision())
    assert opener.bodies == 0  # not even asked
