"""Every command of `pleo-connector-admin --local` against the session's local world: installations
made by the real install flows, the tool run as a process (`python -m pleo_connector_admin`, what
the console script runs), its effects checked in the world's table, queues, pages and emulator.
Every output it prints joins the session's leak check."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pleo_connector.store.sync_runs import SyncRunRepository
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import SyncReason
from tests.e2e.flows import ERP_SETTINGS, Browser, WorldStore, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.flows import SecretLedger
    from tests.support.emulator import EmulatorControl
    from tests.support.world_fixtures import RunningWorld

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SYNC_S = 60.0


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def admin(local_world: RunningWorld, secret_ledger: SecretLedger) -> Callable[..., Ran]:
    """Runs the tool against the world as an operator would, from outside the world's processes."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment["PYTHONPATH"] = str(ROOT / "admin")

    def run(*argv: str) -> Ran:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pleo_connector_admin",
                "--local",
                "--state-dir",
                str(local_world.state_dir),
                *argv,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=environment,
            cwd=ROOT,
            check=False,
        )
        where = "admin " + " ".join(argv)
        secret_ledger.record_page(where, completed.stdout)
        secret_ledger.record_page(where + " (stderr)", completed.stderr)
        assert "Traceback" not in completed.stderr, completed.stderr
        return Ran(completed.returncode, completed.stdout, completed.stderr)

    return run


def _install_api_key(browser: Browser, pleo: EmulatorControl, company: str) -> str:
    assert browser.install_api_key(pleo.issue_api_key(company)).status_code == 303
    record = browser.store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)
    browser.ledger.add("accounting system token", ERP_SETTINGS["api_token"])
    assert browser.submit("/settings", **ERP_SETTINGS, sync_tag_groups="DEPT").status_code == 303
    return record.installation_id


def _runs(admin: Callable[..., Ran], installation_id: str) -> list[dict[str, Any]]:
    shown = admin("--json", "show", installation_id, "--runs", "50")
    assert shown.code == 0, shown.err
    runs: list[dict[str, Any]] = shown.json()["runs"]
    return runs


def _first_sync_done(admin: Callable[..., Ran], installation_id: str) -> None:
    """Until the first sync after the settings were saved has activated the installation and let
    go of its lease. The install queues a first sync of its own, before the settings exist: its
    run is recorded first, while the settings' run may still be writing to Pleo."""

    def done() -> bool:
        shown = admin("--json", "show", installation_id, "--runs", "50")
        assert shown.code == 0, shown.err
        view = shown.json()
        activated = any(run["outcome"] == "activated" for run in view["runs"])
        return activated and not view["sync"]["running"] and not view["sync"]["queued"]

    wait_for(done, "the first sync after the settings were saved", SYNC_S)


def _second_company(pleo: EmulatorControl) -> str:
    company_id = str(pleo.seed_company(f"Company {uuid.uuid4().hex[:8]} ApS")["id"])
    pleo.set_auto_approve(True, company_id=company_id)
    return company_id


def test_list_show_sync_now_pause_and_resume(
    admin: Callable[..., Ran],
    browser: Browser,
    new_browser: Callable[[], Browser],
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    keyed = _install_api_key(browser, pleo, company)
    _first_sync_done(admin, keyed)
    other = new_browser()
    other_company = _second_company(pleo)
    assert other.install_oauth(other_company).status_code in (302, 303)
    oauth_record = world_store.installation_of(other_company)
    assert oauth_record is not None
    other.remember_credentials(oauth_record.installation_id)

    listed = admin("--json", "list")
    only_authorized = admin("--json", "list", "--status", "AUTHORIZED")
    in_pages = admin("list", "--page-size", "2")

    assert listed.code == 0, listed.err
    rows = {row["installation_id"]: row for row in listed.json()}
    assert rows[keyed]["status"] == "ACTIVATED"
    assert rows[keyed]["auth_method"] == "api_key"
    assert rows[keyed]["last_outcome"] is not None
    assert rows[oauth_record.installation_id]["status"] == "AUTHORIZED"
    assert rows[oauth_record.installation_id]["auth_method"] == "oauth"
    assert rows[oauth_record.installation_id]["last_run_at"] is None
    assert {row["status"] for row in only_authorized.json()} == {"AUTHORIZED"}
    assert oauth_record.installation_id in {
        row["installation_id"] for row in only_authorized.json()
    }
    assert in_pages.out.startswith("INSTALLATION ")
    assert keyed in in_pages.out
    assert "listing: 2 pages read" in in_pages.err  # progress, on stderr only

    shown = admin("show", keyed)
    assert shown.code == 0, shown.err
    assert "status:            ACTIVATED" in shown.out
    assert "secret fields:     api_token" in shown.out
    assert "first_sync" in shown.out
    assert ERP_SETTINGS["api_token"] not in shown.out

    assert all(run["reason"] != "sync_now" for run in _runs(admin, keyed))
    queued = admin("sync-now", keyed)
    assert queued.code == 0, queued.err
    assert queued.out.startswith(f"Queued a sync of {keyed}.")
    wait_for(
        lambda: any(run["reason"] == "sync_now" for run in _runs(admin, keyed)),
        "the sync-now run",
        SYNC_S,
    )

    paused = admin("--json", "pause", keyed)
    assert paused.code == 0, paused.err
    assert (paused.json()["paused"], paused.json()["schedulable"]) == (True, False)
    assert "Syncing is paused by the app's provider" in browser.settings_status()
    wait_for(
        lambda: keyed not in set(world_store.installations.iter_schedulable()),
        "the paused installation to leave the dispatcher's index",
    )
    refused = admin("sync-now", keyed)
    assert refused.code == 5
    assert refused.err == "error: Syncing is paused by the app's provider: nothing can sync now.\n"

    resumed = admin("resume", keyed)
    assert resumed.code == 0, resumed.err
    assert resumed.out == f"Resumed {keyed}: it is back on the schedule.\n"
    assert "paused" not in browser.settings_status()
    wait_for(
        lambda: keyed in set(world_store.installations.iter_schedulable()),
        "the resumed installation to be back in the dispatcher's index",
    )


def test_redrive_sends_the_dead_letters_back_and_the_worker_runs_them(
    admin: Callable[..., Ran],
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    installation_id = _install_api_key(browser, pleo, company)
    _first_sync_done(admin, installation_id)
    dead_letters = world_store.resources.queue_urls["SyncDeadLetterQueue"]
    body = SyncRequest(installation_id=installation_id, reason=SyncReason.SCHEDULED)
    for _ in range(12):  # more than one SQS batch
        world_store.sqs.send_message(QueueUrl=dead_letters, MessageBody=body.model_dump_json())

    redriven = admin("--json", "redrive")

    assert redriven.code == 0, redriven.err
    report = redriven.json()
    assert (report["method"], report["moved"], report["refused"]) == ("copy", 12, 0)
    assert report["dead_letter_messages"] == 12
    depth = world_store.sqs.get_queue_attributes(
        QueueUrl=dead_letters, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert depth == "0"
    wait_for(
        lambda: any(run["reason"] == "scheduled" for run in _runs(admin, installation_id)),
        "the worker to run a redriven message",
        SYNC_S,
    )
    # moto has no StartMessageMoveTask: asked for it, the tool says what failed, in one line.
    forced = admin("redrive", "--method", "move-task")
    assert forced.code == 1
    assert forced.err.startswith("error: StartMessageMoveTask failed")


def test_dry_run_prints_the_plan_and_writes_nothing_to_pleo(
    admin: Callable[..., Ran],
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
) -> None:
    installation_id = _install_api_key(browser, pleo, company)
    _first_sync_done(admin, installation_id)
    pleo.clear_request_log()

    planned = admin("--json", "dry-run", installation_id)
    shown = admin("dry-run", installation_id)

    assert planned.code == 0, planned.err
    report = planned.json()
    assert report["installation_id"] == installation_id
    assert report["state"] == "ready"
    assert all(line[0].isdigit() for line in report["counts"]), report
    assert shown.code == 0, shown.err
    assert shown.out.startswith(f"Dry run of {installation_id}, with reads only")
    assert pleo.counters(), "the dry runs read Pleo"
    assert pleo.writes() == {}
    unknown = admin("dry-run", "no-such-installation")
    assert unknown.code != 0


def test_export_redacts_every_secret(
    admin: Callable[..., Ran],
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
    tmp_path: Path,
) -> None:
    installation_id = _install_api_key(browser, pleo, company)
    _first_sync_done(admin, installation_id)
    target = tmp_path / "export.json"

    written = admin("export", installation_id, "--output", str(target))
    printed = admin("export", installation_id)

    assert written.code == 0, written.err
    assert written.out.startswith("Wrote ")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text(encoding="utf-8")
    document = json.loads(text)
    assert document["installation"]["installation_id"] == installation_id
    assert {item["sk"] for item in document["items"]} >= {"META", "CRED", "INSTALLATION"}
    stored = world_store.items_of(installation_id)
    secrets = [
        *world_store.plaintext_credentials(installation_id),  # the API key itself
        ERP_SETTINGS["api_token"],  # the accounting system's token
        world_store.session_secret(),
    ]
    for item in stored:  # every encrypted blob, raw and as base64
        for value in item.values():
            if "B" in value:
                secrets += [base64.b64encode(bytes(value["B"])).decode(), bytes(value["B"]).hex()]
    meta = next(item for item in stored if item["sk"]["S"] == "META")
    sealed = json.loads(meta["config"]["S"])["connection"]["secrets"]
    assert sealed  # the connection's token is stored sealed ...
    secrets += list(sealed.values())
    for secret in secrets:
        assert secret not in text  # ... and neither it nor anything else secret is exported
        assert secret not in printed.out
    credential = next(item for item in document["items"] if item["sk"] == "CRED")
    assert credential["api_key"].startswith("[redacted]: ")
    assert document["redacted_values"] >= 2


def test_disconnect_is_refused_while_a_sync_runs_unless_forced(
    admin: Callable[..., Ran],
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    installation_id = _install_api_key(browser, pleo, company)
    _first_sync_done(admin, installation_id)
    lease = SyncRunRepository(world_store.table).acquire(installation_id, ttl_s=120)
    assert lease is not None  # what a running sync holds

    refused = admin("disconnect", installation_id)
    forced = admin("--json", "disconnect", installation_id, "--force")
    gone = admin("show", installation_id)

    assert refused.code == 5
    assert "a sync is running" in refused.err
    assert "--force" in refused.err
    assert forced.code == 0, forced.err
    assert forced.json() == {
        "installation_id": installation_id,
        "disconnected": True,
        "forced": True,
    }
    assert "warning: a sync is running: disconnecting now stops it part-way" in forced.err
    assert "is deleted with the installation" in forced.err
    assert world_store.items_of(installation_id) == []
    assert all(found["company_id"] != company for found in pleo.installations())
    assert gone.code == 4
    assert (
        gone.err
        == f"error: no installation {installation_id!r} in the local world "
        + (gone.err.split("in the local world ", 1)[1])
    )


def test_disconnect_of_an_idle_installation_needs_no_force(
    admin: Callable[..., Ran],
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    installation_id = _install_api_key(browser, pleo, company)
    wait_for(
        lambda: world_store.installation_of(company).status == "ACTIVATED",  # type: ignore[union-attr]
        "the first sync to end",
        SYNC_S,
    )
    wait_for(lambda: not SyncRunRepository(world_store.table).lease_held(installation_id), "idle")

    done = admin("disconnect", installation_id)

    assert done.code == 0, done.err
    assert done.err == ""
    assert world_store.installation_of(company) is None
