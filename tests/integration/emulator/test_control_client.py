"""The control client (local/pleo_emulator/control_client.py) against the real emulator: what it
sends round-trips, and the emulator's refusals come back as EmulatorError with its message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.emulator import (
    DEFAULT_COMPANY_ID,
    EmulatorControl,
    EmulatorError,
    RunningEmulator,
)

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.integration


def test_seeded_data_comes_back_per_company(emulator: RunningEmulator) -> None:
    control = emulator.control
    other = control.seed_company("Other A/S", address={"country": "DK"})

    created = control.seed(
        tag_groups=[{"code": "PRJ", "name": "Projects", "tags": [{"code": "P1", "name": "Roof"}]}],
        vendors=[{"name": "Paper Co", "code": "V1", "state": "DRAFT"}],
    )
    control.seed(other["id"], vendors=[{"name": "Elsewhere Ltd"}])
    data = control.data(DEFAULT_COMPANY_ID)

    assert [group["id"] for group in data["tag_groups"]] == created["tag_groups"]
    assert [(tag["id"], tag["code"]) for tag in data["tags"]] == [(created["tags"][0], "P1")]
    assert [(v["id"], v["name"], v["state"]) for v in data["vendors"]] == [
        (created["vendors"][0], "Paper Co", "DRAFT")
    ]
    assert [v["name"] for v in control.data()["vendors"]] == ["Paper Co", "Elsewhere Ltd"]


def test_a_fault_rule_is_listed_with_its_commit_and_cleared(emulator: RunningEmulator) -> None:
    control = emulator.control

    rule = control.inject_fault(
        "error", status=503, count=1, operation="POST /v1/vendors", commit=True
    )
    listed = control.faults()
    control.clear_faults()

    assert [(r["id"], r["status"], r["commit"], r["applied"]) for r in listed] == [
        (rule["id"], 503, True, 0)
    ]
    assert control.faults() == []


def test_the_request_log_shows_a_request_then_clears(emulator: RunningEmulator) -> None:
    control = emulator.control
    key = control.issue_api_key()

    response = httpx.get(
        emulator.url + "/v1/installations/me", auth=httpx.BasicAuth(key, ""), timeout=10
    )
    logged = control.request_log("GET /v1/installations/me")
    control.clear_request_log()

    assert [(e["method"], e["path"], e["auth"], e["status"]) for e in logged] == [
        ("GET", "/v1/installations/me", "basic", response.status_code)
    ]
    assert control.counters() == {}
    assert control.request_log() == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.register_client("new-client"), "client_secret is required for a new client"),
        (lambda c: c.seed("no-such-company"), "company_id must name a seeded company"),
        (lambda c: c.inject_fault("latency", commit=True), "commit applies to error, timeout"),
    ],
)
def test_a_refusal_carries_the_status_and_the_emulators_message(
    emulator: RunningEmulator, call: Callable[[EmulatorControl], object], message: str
) -> None:
    with pytest.raises(EmulatorError) as raised:
        call(emulator.control)

    assert raised.value.status == 400
    assert raised.value.message.startswith(message)


def test_an_unknown_api_key_is_a_404(emulator: RunningEmulator) -> None:
    with pytest.raises(EmulatorError) as raised:
        emulator.control.revoke_api_key("pleo_key_never_issued")

    assert (raised.value.status, raised.value.message) == (404, "no such API key")
    assert "pleo_key_never_issued" not in str(raised.value)


def test_a_refused_token_exchange_says_why_and_never_the_secret(
    emulator: RunningEmulator,
) -> None:
    with pytest.raises(EmulatorError) as raised:
        emulator.control.obtain_tokens(client_secret="not-the-secret")

    assert (raised.value.status, raised.value.path) == (401, "/oauth/token")
    assert raised.value.message == "client authentication failed"
    assert "not-the-secret" not in str(raised.value)
