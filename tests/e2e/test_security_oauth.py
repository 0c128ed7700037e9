"""Security bar items 1-11 of issue 5: the OAuth install, attacked through the local API.

Each test drives a real flow against the emulator and then breaks one thing. "No token call" is
read from the emulator's counters, "nothing stored" from the world's table.
"""

from __future__ import annotations

import http.client
import re
import secrets
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest

from pleo_connector.web.security import progress_script_hash
from tests.e2e.flows import Browser, WorldStore, pkce_challenge, query_of
from tests.support.emulator import EmulatorControl, Pkce

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.world_fixtures import RunningWorld

pytestmark = pytest.mark.e2e

TOKEN = "POST /oauth/token"
PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
B64URL_SHA256 = re.compile(r"^[A-Za-z0-9_-]{43}$")


def token_calls(pleo: EmulatorControl) -> int:
    return pleo.counters().get(TOKEN, 0)


def nothing_stored_for(store: WorldStore, pleo: EmulatorControl, company: str) -> None:
    assert store.installation_of(company) is None
    assert [i for i in pleo.installations() if i["company_id"] == company] == []


def with_query(callback_url: str, query: str) -> str:
    return f"{urlsplit(callback_url).path}?{query}"


# --- 1. missing, empty, unknown or duplicated state ---------------------------------------------


@pytest.mark.parametrize(
    "make_query",
    [
        pytest.param(lambda code, state: f"code={code}", id="missing"),
        pytest.param(lambda code, state: f"code={code}&state=", id="empty"),
        pytest.param(
            lambda code, state: f"code={code}&state={secrets.token_urlsafe(32)}", id="unknown"
        ),
        pytest.param(
            lambda code, state: f"code={code}&state={state}&state={state}", id="duplicated"
        ),
    ],
)
def test_1_a_bad_state_gets_a_400_and_no_token_call(
    make_query: Callable[[str, str], str],
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    callback_url = browser.approve(browser.start_oauth())
    params = query_of(callback_url)

    answer = browser.get(with_query(callback_url, make_query(params["code"], params["state"])))

    assert answer.status_code == 400
    assert 'role="alert"' in answer.text
    assert 'href="/oauth/start"' in answer.text  # a way to start again
    assert token_calls(pleo) == 0
    nothing_stored_for(world_store, pleo, company)


# --- 2. the state must come back to the browser that started the flow ---------------------------


@pytest.mark.parametrize("other_has_its_own_flow", [False, True], ids=["no cookie", "other cookie"])
def test_2_a_callback_in_another_browser_is_rejected_and_uses_the_state_up(
    other_has_its_own_flow: bool,
    new_browser: Callable[[], Browser],
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    victim, attacker = new_browser(), new_browser()
    callback_url = victim.approve(victim.start_oauth())
    if other_has_its_own_flow:
        attacker.start_oauth()  # the attacker's own binding cookie

    stolen = attacker.callback(callback_url)

    assert stolen.status_code == 400
    assert "did not come back to the browser that started it" in stolen.text
    assert world_store.state_item(query_of(callback_url)["state"]) is None
    genuine_too_late = victim.callback(callback_url)
    assert genuine_too_late.status_code == 400
    assert token_calls(pleo) == 0
    nothing_stored_for(world_store, pleo, company)


# --- 3. a replayed callback, or two at once: exactly one token exchange -------------------------


def test_3_a_replayed_callback_makes_one_token_exchange(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    callback_url = browser.approve(browser.start_oauth())
    cookie_header = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies.jar)

    first = browser.callback(callback_url)
    # The browser retries the very same request (same cookies): it sees the first outcome.
    retried = httpx.get(
        browser.api_url + with_query(callback_url, urlsplit(callback_url).query),
        headers={"Cookie": cookie_header},
        timeout=60,
    )
    # The browser replays it after the first answer (binding cookie cleared): refused.
    replayed = browser.callback(callback_url)

    assert first.status_code == 303
    assert retried.status_code == 303
    assert retried.headers["location"] == "/settings"
    assert replayed.status_code == 400
    assert token_calls(pleo) == 1
    record = world_store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)


def test_3_two_concurrent_callbacks_make_one_token_exchange(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    callback_url = browser.approve(browser.start_oauth())
    cookie_header = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies.jar)
    target = browser.api_url + with_query(callback_url, urlsplit(callback_url).query)
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def call() -> None:
        barrier.wait()
        answer = httpx.get(target, headers={"Cookie": cookie_header}, timeout=60)
        browser.ledger.record_page("page GET /oauth/callback (concurrent)", answer.text)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert 303 in statuses
    assert set(statuses) <= {303, 409}
    assert token_calls(pleo) == 1
    record = world_store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)
    assert len([i for i in pleo.installations() if i["company_id"] == company]) == 1


# --- 4. an expired state still in the table -----------------------------------------------------


def test_4_an_expired_state_still_in_the_table_is_rejected(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    callback_url = browser.approve(browser.start_oauth())
    state = query_of(callback_url)["state"]
    world_store.expire_state(state)
    assert world_store.state_item(state) is not None

    answer = browser.callback(callback_url)

    assert answer.status_code == 400
    assert "took too long" in answer.text
    assert world_store.state_item(state) is None
    assert token_calls(pleo) == 0
    nothing_stored_for(world_store, pleo, company)


# --- 5. a code minted for another verifier --------------------------------------------------------


def test_5_a_code_minted_for_another_verifier_stores_nothing(
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
    local_world: RunningWorld,
) -> None:
    authorize_url = browser.start_oauth()
    state = query_of(authorize_url)["state"]
    attacker_pkce = Pkce.generate()
    browser.ledger.add("PKCE verifier", attacker_pkce.verifier)
    injected = browser.approve(
        pleo.authorize_url(
            redirect_uri=f"{local_world.api_url}/oauth/callback",
            code_challenge=attacker_pkce.challenge,
            state="attacker-state",
        )
    )
    injected_code = query_of(injected)["code"]

    # The issuer is public: the attacker names the right one.
    query = urlencode({"code": injected_code, "state": state, "iss": pleo.base_url})
    answer = browser.get(f"/oauth/callback?{query}")

    assert answer.status_code == 400
    assert "did not accept this sign-in" in answer.text
    assert token_calls(pleo) == 1  # tried once, refused by Pleo for the wrong verifier
    nothing_stored_for(world_store, pleo, company)
    assert not [i for i in world_store.all_items() if i["sk"]["S"] == "CRED" and company in str(i)]


# --- 6. Pleo's error, with markup in it ----------------------------------------------------------


@pytest.mark.parametrize(
    "description", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
)
def test_6_an_error_description_with_markup_is_shown_escaped(
    description: str, browser: Browser, pleo: EmulatorControl, company: str
) -> None:
    state = query_of(browser.start_oauth())["state"]
    query = urlencode(
        {
            "error": "access_denied",
            "error_description": description,
            "state": state,
            "iss": pleo.base_url,
        },
        quote_via=quote,
    )

    answer = browser.get(f"/oauth/callback?{query}")

    assert answer.status_code == 400
    assert "access_denied" in answer.text
    assert description not in answer.text
    assert "&lt;" in answer.text
    assert "<script" not in answer.text.lower()
    assert "<img" not in answer.text.lower()
    policy = answer.headers["content-security-policy"]
    assert f"script-src {progress_script_hash()};" in policy  # that one script, nothing else
    assert token_calls(pleo) == 0


# --- 7. oversized or malformed parameters --------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("state=%C3%A9t%C3%A9", id="non-ASCII state"),
        pytest.param("state={state}%0D%0ASet-Cookie:%20x=1", id="CR/LF in state"),
        pytest.param("state={state}&code=abc%0D%0Adef", id="CR/LF in code"),
        pytest.param("state={state}%FF", id="invalid UTF-8"),
        pytest.param("state={state}&code=" + "c" * 20_000, id="20 KB code"),
    ],
)
def test_7_malformed_parameters_get_a_400(
    bad: str, browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    callback_url = browser.approve(browser.start_oauth())
    params = query_of(callback_url)
    query = bad.format(state=params["state"])
    if "code=" not in query:
        query += f"&code={params['code']}"

    answer = browser.get(with_query(callback_url, query))

    assert answer.status_code == 400
    assert "x=1" not in answer.headers.get("set-cookie", "")
    assert token_calls(pleo) == 0
    # A malformed callback consumes nothing: the genuine one still works afterwards.
    assert browser.callback(callback_url).status_code == 303
    record = world_store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)


def test_7_a_100_kb_query_is_refused_before_any_handler_runs(
    browser: Browser, pleo: EmulatorControl, company: str, local_world: RunningWorld
) -> None:
    state = query_of(browser.start_oauth())["state"]
    calls_before = len(local_world.activity())
    split = urlsplit(local_world.api_url)
    assert split.hostname is not None
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=60)
    connection.request("GET", f"/oauth/callback?state={state}&code=" + "c" * 100_000)
    answer = connection.getresponse()
    body = answer.read().decode("utf-8", "replace")
    connection.close()

    assert 400 <= answer.status < 500
    assert "c" * 1000 not in body
    assert len(local_world.activity()) == calls_before
    assert token_calls(pleo) == 0


# --- 8. no parameter steers a redirect ------------------------------------------------------------


def test_8_no_parameter_or_header_steers_any_redirect(
    browser: Browser, pleo: EmulatorControl, company: str, local_world: RunningWorld
) -> None:
    evil = "https://evil.example/cb"
    start = browser.get(
        "/oauth/start",
        params={"redirect_uri": evil, "next": evil, "return_to": "//evil.example"},
        headers={"X-Forwarded-Host": "evil.example", "Referer": evil},
    )
    assert start.status_code == 302
    authorize_url = start.headers["location"]
    assert authorize_url.startswith(f"{pleo.base_url}/oauth/authorize?")
    params = query_of(authorize_url)
    assert params["redirect_uri"] == f"{local_world.api_url}/oauth/callback"
    browser.ledger.add("OAuth state", params["state"])
    callback_url = browser.approve(authorize_url)

    done = browser.get(
        with_query(
            callback_url,
            urlsplit(callback_url).query + f"&next={quote(evil)}&redirect_uri={quote(evil)}",
        )
    )
    saved = browser.submit("/settings/sync", next=evil, redirect_uri=evil)  # 409: not configured
    settings_post = browser.submit(
        "/settings",
        next=evil,
        source_url="https://erp.example.com",
        api_token="erp-secret-token-0123456789",
    )

    assert done.status_code == 303
    assert done.headers["location"] == "/settings"
    assert saved.status_code == 409
    assert settings_post.status_code == 303
    assert settings_post.headers["location"] == "/settings"


# --- 9. the issuer (RFC 9207) --------------------------------------------------------------------


def test_9_a_matching_iss_is_accepted(
    browser: Browser, pleo: EmulatorControl, company: str, world_store: WorldStore
) -> None:
    callback_url = browser.approve(browser.start_oauth())
    # The emulator names itself as a server at PLEO_AUTH_URL would, and the app expects exactly
    # that string.
    assert query_of(callback_url)["iss"] == pleo.base_url

    answer = browser.callback(callback_url)

    assert answer.status_code == 303
    record = world_store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)


@pytest.mark.parametrize(
    ("iss", "message"),
    [
        pytest.param("https://evil.example", "unexpected server", id="another issuer"),
        pytest.param("{issuer}/", "unexpected server", id="the issuer with a slash"),
        pytest.param(None, "did not say which server", id="no iss"),
    ],
)
def test_9_another_or_a_missing_iss_is_rejected_and_uses_the_state_up(
    iss: str | None,
    message: str,
    new_browser: Callable[[], Browser],
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    mixed_up, plain = new_browser(), new_browser()
    callback_url = mixed_up.approve(mixed_up.start_oauth())
    params = query_of(callback_url)
    assert params.pop("iss") == pleo.base_url
    if iss is not None:
        params["iss"] = iss.format(issuer=pleo.base_url)

    refused = mixed_up.callback(with_query(callback_url, urlencode(params)))
    accepted = plain.install_oauth()

    assert refused.status_code == 400
    assert message in refused.text
    assert world_store.state_item(params["state"]) is None  # used up: the genuine answer is late
    assert accepted.status_code == 303
    assert token_calls(pleo) == 1  # the plain one only
    record = world_store.installation_of(company)
    assert record is not None
    plain.remember_credentials(record.installation_id)


# --- 10. PKCE shape ------------------------------------------------------------------------------


def test_10_pkce_is_s256_fresh_per_flow_with_one_redirect_uri(
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
    local_world: RunningWorld,
) -> None:
    flows = [query_of(browser.start_oauth()) for _ in range(2)]
    verifiers = []
    for params in flows:
        item = world_store.state_item(params["state"])
        assert item is not None
        verifier = item["code_verifier"]["S"]
        verifiers.append(verifier)
        assert params["code_challenge_method"] == "S256"
        assert B64URL_SHA256.match(params["code_challenge"])
        assert PKCE_VERIFIER.match(verifier)
        assert pkce_challenge(verifier) == params["code_challenge"]
        assert params["redirect_uri"] == f"{local_world.api_url}/oauth/callback"
        assert item["redirect_uri"]["S"] == params["redirect_uri"]
    assert len({p["state"] for p in flows}) == 2
    assert len({p["code_challenge"] for p in flows}) == 2
    assert len(set(verifiers)) == 2
    # The exchange sends the same redirect_uri: the emulator binds the code to it exactly.
    answer = browser.install_oauth()
    assert answer.status_code == 303
    record = world_store.installation_of(company)
    assert record is not None
    browser.remember_credentials(record.installation_id)


# --- 11. a malformed token response fails closed -------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(
            {"kind": "response", "status": 200, "body": "<html><body>Welcome</body></html>"},
            id="HTML with 200",
        ),
        pytest.param(
            {
                "kind": "response",
                "status": 200,
                "body": '{"token_type": "Bearer", "expires_in": 3600}',
                "content_type": "application/json",
            },
            id="missing fields",
        ),
        pytest.param({"kind": "error", "status": 503}, id="5xx"),
    ],
)
def test_11_a_malformed_token_response_fails_closed(
    fault: dict[str, Any],
    browser: Browser,
    pleo: EmulatorControl,
    company: str,
    world_store: WorldStore,
) -> None:
    callback_url = browser.approve(browser.start_oauth())
    items_before = len(world_store.all_items())
    pleo.inject_fault(operation=TOKEN, **fault)

    answer = browser.callback(callback_url)

    assert answer.status_code == 502
    assert "could not complete the sign-in" in answer.text
    assert "Traceback" not in answer.text
    assert "Welcome" not in answer.text
    assert token_calls(pleo) >= 1
    nothing_stored_for(world_store, pleo, company)
    assert len(world_store.all_items()) == items_before - 1  # only the used-up state is gone
