"""Security bar item 17: no code, verifier, state, token or key in any log line or page.

The `secret_ledger` fixture (tests/support/world_fixtures.py) collects every secret the e2e tests
see and every page the local API serves; at the end of the session it reads every log of the
world (handler output, the world's own log, the emulator's, DynamoDB Local's and moto's) and fails
the run if any secret shows up. These tests show that the check has teeth, and run it mid-session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import Browser, SecretLedger, WorldStore, find_leaks

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.support.emulator import EmulatorControl

pytestmark = pytest.mark.e2e


def test_the_leak_check_finds_a_secret_as_is_or_escaped(tmp_path: Path) -> None:
    ledger = SecretLedger(log_dirs=[tmp_path])
    ledger.add("access token", "tok_0123456789abcdef")
    ledger.add("authorization code", "code<&>0123456789")
    (tmp_path / "handler.log").write_text('{"message": "got tok_0123456789abcdef"}\n')
    ledger.record_page("page GET /oauth/callback", "<p>code&lt;&amp;&gt;0123456789</p>")
    ledger.record_page("page GET /settings", "<p>nothing to see</p>")

    leaks = find_leaks(ledger.texts(), ledger.secrets)

    assert sorted(leaks) == [
        "a access token appears in " + str(tmp_path / "handler.log"),
        "a authorization code appears in page GET /oauth/callback",
    ]
    assert not any("0123456789" in leak for leak in leaks)  # the report never repeats a secret


def test_short_values_are_not_taken_for_secrets() -> None:
    ledger = SecretLedger()
    ledger.add("state", "abc")
    ledger.add("state", "")
    ledger.add("state", None)

    assert ledger.secrets == {}


def test_after_both_installs_no_secret_is_in_the_logs_or_pages_so_far(
    new_browser: Callable[[], Browser],
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
    secret_ledger: SecretLedger,
) -> None:
    oauth_user, key_user = new_browser(), new_browser()
    assert oauth_user.install_oauth().status_code == 303
    record = world_store.installation_of(company)
    assert record is not None
    oauth_user.remember_credentials(record.installation_id)
    other_company = str(pleo.seed_company("Leak Check ApS")["id"])
    assert key_user.install_api_key(pleo.issue_api_key(other_company)).status_code == 303

    kinds = set(secret_ledger.secrets.values())
    assert {
        "OAuth state",
        "PKCE verifier",
        "authorization code",
        "stored token or key",
        "API key",
        "OAuth client secret",
        "session signing secret",
    } <= kinds
    assert find_leaks(secret_ledger.texts(), secret_ledger.secrets) == []
