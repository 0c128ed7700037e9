"""Test controls: rate limit, injected faults, the request log and counters, reset, the launcher."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from local.pleo_emulator.launcher import start_pleo_emulator
from local.services import ROOT, free_port
from tests.support.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_COMPANY_ID,
    EmulatorControl,
    Pkce,
    RunningEmulator,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.emulator.conftest import ApiFactory

pytestmark = pytest.mark.integration

INSTALLATION = "GET /v1/installations/me"


@pytest.fixture
def client(emulator: RunningEmulator, api: ApiFactory) -> httpx.Client:
    key = emulator.control.issue_api_key()
    client = api(api_key=key)
    client.post("/v1/installations/me", json={})
    emulator.control.clear_request_log()
    return client


def test_rate_limit_answers_429_with_retry_after_per_credential(
    emulator: RunningEmulator, client: httpx.Client, api: ApiFactory
) -> None:
    emulator.control.set_rate_limit(3)
    statuses = [client.get("/v1/installations/me").status_code for _ in range(4)]
    limited = client.get("/v1/installations/me")
    other_credential = api(api_key=emulator.control.issue_api_key()).get("/v1/introspect")

    assert statuses == [200, 200, 200, 429]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["type"] == "too_many_requests"
    assert other_credential.status_code == 200
    assert emulator.control.events()["rate_limited"] == 2


def test_the_default_rate_limit_is_600_a_minute(emulator: RunningEmulator) -> None:
    assert emulator.control.settings()["rate_limit_per_minute"] == 600


def test_faults_by_count_then_recovery(emulator: RunningEmulator, client: httpx.Client) -> None:
    emulator.control.inject_fault("error", status=503, count=2, operation=INSTALLATION)

    statuses = [client.get("/v1/installations/me").status_code for _ in range(3)]
    untouched = client.get("/v1/introspect")

    assert statuses == [503, 503, 200]
    assert untouched.status_code == 200


def test_injected_429_carries_retry_after(emulator: RunningEmulator, client: httpx.Client) -> None:
    emulator.control.inject_fault("error", status=429, retry_after=7, count=1)

    response = client.get("/v1/installations/me")

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


def test_faults_by_rate_are_reproducible_with_a_seed(
    emulator: RunningEmulator, client: httpx.Client
) -> None:
    def run() -> list[int]:
        emulator.control.update_settings(fault_seed=1234)
        emulator.control.clear_faults()
        emulator.control.inject_fault("error", status=500, rate=0.5, path_prefix="/v1/")
        return [client.get("/v1/installations/me").status_code for _ in range(20)]

    first, second = run(), run()

    assert first == second
    assert 0 < first.count(500) < 20


def test_timeout_fault_hangs_then_drops_the_connection(
    emulator: RunningEmulator, client: httpx.Client
) -> None:
    emulator.control.inject_fault("timeout", hang_ms=300, count=1)

    with pytest.raises(httpx.TransportError):
        client.get("/v1/installations/me")

    assert client.get("/v1/installations/me").status_code == 200
    [dropped, answered] = emulator.control.request_log(INSTALLATION)
    assert dropped["fault"] == "timeout"
    assert dropped["status"] is None
    assert answered["status"] == 200


def test_a_short_client_timeout_gives_up_on_a_hanging_request(
    emulator: RunningEmulator, client: httpx.Client
) -> None:
    emulator.control.inject_fault("timeout", hang_ms=2000, count=1)

    with pytest.raises(httpx.ReadTimeout):
        client.get("/v1/installations/me", timeout=0.2)

    # Already counted and logged while it still hangs.
    assert emulator.control.counters() == {INSTALLATION: 1}
    assert emulator.control.request_log(INSTALLATION)[0]["fault"] == "timeout"


VENDORS = "POST /v1/vendors"


def vendor(code: str) -> dict[str, str]:
    return {
        "companyId": DEFAULT_COMPANY_ID,
        "name": f"Vendor {code}",
        "defaultCurrency": "DKK",
        "code": code,
    }


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        ({"kind": "error", "status": 502}, "error-after-commit"),
        ({"kind": "timeout", "hang_ms": 50}, "timeout-after-commit"),
        ({"kind": "response", "status": 200, "body": "<html>proxy</html>"}, "error-after-commit"),
    ],
    ids=["error", "timeout", "response"],
)
def test_a_commit_fault_keeps_the_effect_and_loses_only_the_answer(
    emulator: RunningEmulator, api: ApiFactory, fault: dict[str, Any], logged: str
) -> None:
    client = api(api_key=emulator.control.issue_api_key(), lenient=True)
    emulator.control.inject_fault(**fault, commit=True, count=1, operation=VENDORS)

    try:
        lost = client.post("/v1/vendors", json=vendor("V1"))
    except httpx.TransportError:
        lost = None
    again = client.post("/v1/vendors", json=vendor("V1"))

    if fault["kind"] == "timeout":
        assert lost is None
    else:
        assert lost is not None
        assert lost.status_code == fault["status"]
        assert "V1" not in lost.text  # the real answer never leaves
    assert again.status_code == 409  # the first one was created
    assert [v["code"] for v in emulator.control.data(DEFAULT_COMPANY_ID)["vendors"]] == ["V1"]
    assert [e["fault"] for e in emulator.control.request_log(VENDORS)] == [logged, None]


def test_without_commit_a_fault_leaves_nothing_behind(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    client = api(api_key=emulator.control.issue_api_key())
    emulator.control.inject_fault("error", status=502, count=1, operation=VENDORS)

    assert client.post("/v1/vendors", json=vendor("V1")).status_code == 502
    assert emulator.control.data(DEFAULT_COMPANY_ID)["vendors"] == []
    assert emulator.control.request_log(VENDORS)[0]["fault"] == "error"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"kind": "latency", "latency_ms": 10, "commit": True}, "commit applies to"),
        ({"kind": "error", "status": 502, "commit": "yes"}, "commit must be true or false"),
    ],
)
def test_a_bad_commit_fault_is_refused(
    emulator: RunningEmulator, rule: dict[str, Any], problem: str
) -> None:
    response = httpx.post(f"{emulator.url}/_emulator/faults", json=rule)

    assert response.status_code == 400
    assert problem in response.json()["message"]
    assert emulator.control.faults() == []


def test_latency_fault_is_applied_and_counted(
    emulator: RunningEmulator, client: httpx.Client
) -> None:
    emulator.control.inject_fault("latency", latency_ms=50, count=2)

    statuses = [client.get("/v1/installations/me").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert emulator.control.events()["faults_applied"] == 2
    assert [rule["applied"] for rule in emulator.control.faults()] == [2]


def test_counters_per_operation_include_oauth_calls(
    emulator: RunningEmulator, client: httpx.Client
) -> None:
    client.get("/v1/installations/me")
    client.get("/v1/installations/me")
    client.put("/v1/installations/me", json={"status": "ACTIVATED"})
    httpx.post(
        f"{emulator.url}/oauth/token",
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        data={"grant_type": "refresh_token", "refresh_token": "unknown"},
    )

    counters = emulator.control.counters()

    assert counters == {
        "GET /v1/installations/me": 2,
        "PUT /v1/installations/me": 1,
        "POST /oauth/token": 1,
    }
    assert emulator.control.events()["invalid_grant"] == 1


def test_request_log_never_holds_query_strings_or_secrets(
    emulator: RunningEmulator, client: httpx.Client
) -> None:
    tokens = emulator.control.obtain_tokens()

    log = emulator.control.request_log()
    grants = emulator.control.grants()

    text = repr(log) + repr(grants)
    assert tokens["access_token"] not in text
    assert tokens["refresh_token"] not in text
    assert all("?" not in entry["path"] for entry in log)


def test_reset_restores_the_initial_world(emulator: RunningEmulator, client: httpx.Client) -> None:
    emulator.control.seed_company("Extra")
    emulator.control.set_rate_limit(1)
    emulator.control.inject_fault("error", status=500)

    emulator.control.reset()

    assert len(emulator.control.companies()) == 1
    assert emulator.control.settings()["rate_limit_per_minute"] == 600
    assert emulator.control.installations() == []
    assert client.get("/v1/introspect").status_code == 401  # keys are gone too


def test_reset_keeps_the_redirect_uri_the_emulator_was_started_with(tmp_path: Path) -> None:
    """A local world on other ports starts the emulator with its own callback URL; a reset must
    not put the port-3000 default back, or OAuth in that world breaks."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/oauth/callback"
    service = start_pleo_emulator(free_port(), tmp_path, redirect_uri=redirect_uri)
    control = EmulatorControl(service.url)
    try:
        at_start = control.clients()[0]["redirect_uris"]
        control.register_client(DEFAULT_CLIENT_ID, redirect_uris=["http://127.0.0.1:1/elsewhere"])
        control.reset()
        after_reset = control.clients()[0]["redirect_uris"]
        consent = httpx.get(
            control.authorize_url(
                redirect_uri=redirect_uri, code_challenge=Pkce.generate().challenge
            )
        )
    finally:
        control.close()
        service.stop()

    assert at_start == after_reset == [redirect_uri]
    assert consent.status_code == 200


def test_launcher_imports_only_the_standard_library() -> None:
    """SAM CLI's virtualenv imports the launcher: no third-party package may be needed."""
    code = (
        "import sys; import local.pleo_emulator.launcher; "
        "extra = sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names "
        "and m.split('.')[0] not in ('local', '__main__')); print(extra)"
    )

    result = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_settings_are_validated_all_or_nothing(emulator: RunningEmulator) -> None:
    response = httpx.put(
        f"{emulator.url}/_emulator/settings",
        json={"access_token_ttl_s": 5, "rate_limit_per_minute": "many", "colour": "red"},
    )

    assert response.status_code == 400
    assert "rate_limit_per_minute" in response.json()["message"]
    assert "colour" in response.json()["message"]
    assert emulator.control.settings()["access_token_ttl_s"] == 3600


def test_scopes_are_enforced_when_switched_on(emulator: RunningEmulator, api: ApiFactory) -> None:
    emulator.control.register_client(
        DEFAULT_CLIENT_ID, scopes=["vendors:read", "tag-groups:read", "tag-groups:write"]
    )
    emulator.control.update_settings(enforce_scopes=True)
    client = api(bearer=emulator.control.obtain_tokens()["access_token"])
    vendor = {"companyId": DEFAULT_COMPANY_ID, "name": "V", "defaultCurrency": "DKK"}

    search = client.post("/v1/vendors:search", params={"company_id": DEFAULT_COMPANY_ID}, json={})
    create = client.post("/v1/vendors", json=vendor)
    accounts = client.get("/v1/chart-of-accounts/00000000-0000-4000-8000-000000000000")
    installation = client.get("/v1/installations/me")

    assert search.status_code == 200
    assert create.status_code == 403
    assert "vendors:write" in create.json()["message"]
    assert accounts.status_code == 403
    assert installation.status_code == 200


def test_the_log_names_the_kind_of_credential_only(
    emulator: RunningEmulator, client: httpx.Client
) -> None:
    client.get("/v1/installations/me")
    httpx.get(f"{emulator.url}/v1/installations/me")

    entries = emulator.control.request_log(INSTALLATION)

    assert [(e["auth"], e["status"]) for e in entries] == [("basic", 200), (None, 401)]


@pytest.mark.parametrize("seconds", ["1e400", "-1e400", "1e12"])
def test_a_clock_step_that_is_infinite_or_absurd_is_refused_and_the_clock_keeps_working(
    emulator: RunningEmulator, seconds: str
) -> None:
    refused = httpx.post(
        f"{emulator.url}/_emulator/clock",
        content=f'{{"seconds": {seconds}}}',
        headers={"Content-Type": "application/json"},
    )

    assert refused.status_code == 400
    assert "finite" in refused.json()["message"]
    assert httpx.get(f"{emulator.url}/_emulator/health").status_code == 200
