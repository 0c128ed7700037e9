"""The emulator's authorization server: consent, PKCE, codes, rotation, introspection."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_COMPANY_ID,
    DEFAULT_REDIRECT_URI,
    Pkce,
    RunningEmulator,
    consent_form_fields,
)
from tests.support.openapi_contract import assert_conforms

pytestmark = pytest.mark.integration

CLIENT = (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)


def exchange(
    emulator: RunningEmulator,
    code: str,
    verifier: str,
    *,
    redirect_uri: str = DEFAULT_REDIRECT_URI,
    auth: tuple[str, str] = CLIENT,
) -> httpx.Response:
    return httpx.post(
        f"{emulator.url}/oauth/token",
        auth=auth,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )


def refresh(emulator: RunningEmulator, refresh_token: str) -> httpx.Response:
    return httpx.post(
        f"{emulator.url}/oauth/token",
        auth=CLIENT,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def introspection_call(emulator: RunningEmulator, bearer: str) -> int:
    response = httpx.get(
        f"{emulator.url}/v1/introspect", headers={"Authorization": f"Bearer {bearer}"}
    )
    assert_conforms(response)
    return response.status_code


def callback_query(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(DEFAULT_REDIRECT_URI)
    return parse_qs(urlsplit(location).query)


# -- consent page ----------


def test_consent_page_lists_companies_and_approve_redirects_with_code_and_state(
    emulator: RunningEmulator,
) -> None:
    other = emulator.control.seed_company("Second Company A/S")
    pkce = Pkce.generate()
    with httpx.Client() as browser:
        page = browser.get(
            emulator.control.authorize_url(
                code_challenge=pkce.challenge, state="xyz", scope="vendors:read"
            )
        )
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "Second Company A/S" in page.text
        assert "vendors:read" in page.text
        answer = browser.post(
            f"{emulator.url}/oauth/authorize",
            data={
                **consent_form_fields(page.text),
                "company_id": other["id"],
                "decision": "approve",
            },
        )

    query = callback_query(answer)
    assert query["state"] == ["xyz"]
    assert query["iss"] == [emulator.url]  # RFC 9207, unless issuer_param is switched off
    tokens = exchange(emulator, query["code"][0], pkce.verifier)
    assert tokens.status_code == 200
    installation = emulator.control.installations()
    assert [(i["company_id"], i["status"]) for i in installation] == [(other["id"], "AUTHORIZED")]


def test_deny_redirects_with_access_denied(emulator: RunningEmulator) -> None:
    pkce = Pkce.generate()
    with httpx.Client() as browser:
        page = browser.get(emulator.control.authorize_url(code_challenge=pkce.challenge))
        answer = browser.post(
            f"{emulator.url}/oauth/authorize",
            data={
                **consent_form_fields(page.text),
                "company_id": DEFAULT_COMPANY_ID,
                "decision": "deny",
            },
        )

    query = callback_query(answer)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["state-1"]
    assert "code" not in query
    assert emulator.control.installations() == []


def test_consent_form_refuses_a_wrong_csrf_token(emulator: RunningEmulator) -> None:
    pkce = Pkce.generate()
    with httpx.Client() as browser:
        page = browser.get(emulator.control.authorize_url(code_challenge=pkce.challenge))
        fields = consent_form_fields(page.text)
        answer = browser.post(
            f"{emulator.url}/oauth/authorize",
            data={
                **fields,
                "csrf_token": "forged",
                "company_id": DEFAULT_COMPANY_ID,
                "decision": "approve",
            },
        )

    assert answer.status_code == 403
    assert "location" not in answer.headers


def test_consent_form_refuses_a_post_without_the_cookie(emulator: RunningEmulator) -> None:
    pkce = Pkce.generate()
    page = httpx.get(emulator.control.authorize_url(code_challenge=pkce.challenge))

    answer = httpx.post(  # a fresh client: the CSRF cookie is not sent
        f"{emulator.url}/oauth/authorize",
        data={
            **consent_form_fields(page.text),
            "company_id": DEFAULT_COMPANY_ID,
            "decision": "approve",
        },
    )

    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        ("no-such-client", DEFAULT_REDIRECT_URI),
        (DEFAULT_CLIENT_ID, "http://127.0.0.1:3000/oauth/callback/"),
        (DEFAULT_CLIENT_ID, "https://attacker.example/callback"),
    ],
)
def test_unknown_client_or_redirect_uri_shows_an_error_page_and_never_redirects(
    emulator: RunningEmulator, client_id: str, redirect_uri: str
) -> None:
    url = emulator.control.authorize_url(
        client_id=client_id, redirect_uri=redirect_uri, code_challenge=Pkce.generate().challenge
    )

    page = httpx.get(url)

    assert page.status_code == 400
    assert "location" not in page.headers
    assert page.headers["content-type"].startswith("text/html")


def test_plain_pkce_is_refused_with_a_redirect(emulator: RunningEmulator) -> None:
    verifier = Pkce.generate().verifier
    url = emulator.control.authorize_url(code_challenge=verifier, code_challenge_method="plain")

    query = callback_query(httpx.get(url))

    assert query["error"] == ["invalid_request"]
    assert "S256" in query["error_description"][0]


def test_missing_pkce_challenge_is_refused(emulator: RunningEmulator) -> None:
    url = emulator.control.authorize_url(code_challenge="").replace("code_challenge=&", "")

    query = callback_query(httpx.get(url))

    assert query["error"] == ["invalid_request"]


def test_scope_outside_the_client_registration_is_refused(emulator: RunningEmulator) -> None:
    url = emulator.control.authorize_url(
        code_challenge=Pkce.generate().challenge, scope="vendors:read payroll:write"
    )

    query = callback_query(httpx.get(url))

    assert query["error"] == ["invalid_scope"]


def test_auto_approve_redirects_straight_back_and_can_leave_iss_out(
    emulator: RunningEmulator,
) -> None:
    other = emulator.control.seed_company("Headless ApS")
    emulator.control.set_auto_approve(True, company_id=other["id"])
    emulator.control.set_issuer_param(False)
    pkce = Pkce.generate()

    query = callback_query(httpx.get(emulator.control.authorize_url(code_challenge=pkce.challenge)))

    assert "iss" not in query
    assert exchange(emulator, query["code"][0], pkce.verifier).status_code == 200
    assert [i["company_id"] for i in emulator.control.installations()] == [other["id"]]


# -- token endpoint: codes and PKCE -------------------------------------------------------------


def test_token_response_has_the_documented_fields(emulator: RunningEmulator) -> None:
    pkce = Pkce.generate()
    code = emulator.control.authorization_code(pkce)

    response = exchange(emulator, code, pkce.verifier)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) >= {"access_token", "refresh_token", "expires_in", "token_type"}
    assert body["expires_in"] == 3600
    assert body["token_type"] == "Bearer"


def test_wrong_verifier_is_invalid_grant(emulator: RunningEmulator) -> None:
    pkce = Pkce.generate()
    code = emulator.control.authorization_code(pkce)

    response = exchange(emulator, code, Pkce.generate().verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_a_code_is_single_use_and_its_reuse_revokes_what_it_issued(
    emulator: RunningEmulator,
) -> None:
    pkce = Pkce.generate()
    code = emulator.control.authorization_code(pkce)
    first = exchange(emulator, code, pkce.verifier)
    assert first.status_code == 200
    assert introspection_call(emulator, first.json()["access_token"]) == 200

    second = exchange(emulator, code, pkce.verifier)

    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert introspection_call(emulator, first.json()["access_token"]) == 401


def test_a_code_is_bound_to_its_redirect_uri(emulator: RunningEmulator) -> None:
    emulator.control.register_client(
        DEFAULT_CLIENT_ID,
        redirect_uris=[DEFAULT_REDIRECT_URI, "http://127.0.0.1:3000/other"],
    )
    pkce = Pkce.generate()
    code = emulator.control.authorization_code(pkce)

    response = exchange(emulator, code, pkce.verifier, redirect_uri="http://127.0.0.1:3000/other")

    assert response.json()["error"] == "invalid_grant"


def test_a_code_is_bound_to_its_client(emulator: RunningEmulator) -> None:
    emulator.control.register_client(
        "other-client",
        client_secret="other-secret",
        redirect_uris=[DEFAULT_REDIRECT_URI],
        scopes=["vendors:read"],
    )
    pkce = Pkce.generate()
    code = emulator.control.authorization_code(pkce)

    response = exchange(emulator, code, pkce.verifier, auth=("other-client", "other-secret"))

    assert response.json()["error"] == "invalid_grant"


def test_a_code_expires(emulator: RunningEmulator) -> None:
    emulator.control.set_token_lifetime(code_s=30)
    pkce = Pkce.generate()
    code = emulator.control.authorization_code(pkce)
    emulator.control.advance_clock(31)

    response = exchange(emulator, code, pkce.verifier)

    assert response.json()["error"] == "invalid_grant"


def test_client_authentication_is_basic_only(emulator: RunningEmulator) -> None:
    pkce = Pkce.generate()
    code = emulator.control.authorization_code(pkce)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }

    no_auth = httpx.post(f"{emulator.url}/oauth/token", data=form)
    wrong_secret = httpx.post(
        f"{emulator.url}/oauth/token", data=form, auth=(DEFAULT_CLIENT_ID, "x")
    )
    secret_in_body = httpx.post(
        f"{emulator.url}/oauth/token",
        data={**form, "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET},
    )
    with_client_id_in_body = httpx.post(
        f"{emulator.url}/oauth/token", data={**form, "client_id": DEFAULT_CLIENT_ID}, auth=CLIENT
    )

    assert no_auth.status_code == 401
    assert no_auth.json()["error"] == "invalid_client"
    assert no_auth.headers["www-authenticate"].startswith("Basic")
    assert wrong_secret.status_code == 401
    assert secret_in_body.status_code == 400
    assert with_client_id_in_body.status_code == 200


def test_unknown_grant_type(emulator: RunningEmulator) -> None:
    response = httpx.post(
        f"{emulator.url}/oauth/token", auth=CLIENT, data={"grant_type": "client_credentials"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# -- refresh rotation ----------


def test_refresh_rotates_and_reuse_of_an_old_token_revokes_the_family(
    emulator: RunningEmulator,
) -> None:
    first = emulator.control.obtain_tokens()
    second = refresh(emulator, first["refresh_token"])
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert introspection_call(emulator, rotated["access_token"]) == 200

    replay = refresh(emulator, first["refresh_token"])

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The whole family is gone: the newest refresh token and the newest access token too.
    assert refresh(emulator, rotated["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspection_call(emulator, rotated["access_token"]) == 401
    assert emulator.control.events()["refresh_token_reuse_detected"] == 1
    [grant] = emulator.control.grants()
    assert grant["revoked"] is True
    assert {t["status"] for t in grant["refresh_tokens"]} == {"rotated", "revoked"}


def test_refresh_can_leave_the_refresh_token_unrotated(emulator: RunningEmulator) -> None:
    emulator.control.update_settings(rotate_refresh_tokens=False)
    first = emulator.control.obtain_tokens()

    answers = [refresh(emulator, first["refresh_token"]) for _ in range(2)]

    assert [answer.status_code for answer in answers] == [200, 200]
    assert all("refresh_token" not in answer.json() for answer in answers)
    assert emulator.control.events().get("refresh_token_reuse_detected", 0) == 0
    [grant] = emulator.control.grants()
    assert [t["status"] for t in grant["refresh_tokens"]] == ["active"]


def test_token_answers_can_leave_expires_in_out_and_vary_the_type(
    emulator: RunningEmulator,
) -> None:
    emulator.control.update_settings(send_expires_in=False, token_type="bearer")
    tokens = emulator.control.obtain_tokens()

    again = refresh(emulator, tokens["refresh_token"]).json()

    for body in (tokens, again):
        assert "expires_in" not in body
        assert body["token_type"] == "bearer"


def test_reuse_revokes_only_its_own_family(emulator: RunningEmulator) -> None:
    family_a = emulator.control.obtain_tokens()
    family_b = emulator.control.obtain_tokens()
    refresh(emulator, family_a["refresh_token"])

    refresh(emulator, family_a["refresh_token"])

    assert refresh(emulator, family_b["refresh_token"]).status_code == 200


def test_access_tokens_expire_after_the_configured_lifetime(emulator: RunningEmulator) -> None:
    emulator.control.set_token_lifetime(access_s=120)
    tokens = emulator.control.obtain_tokens()
    assert tokens["expires_in"] == 120
    assert introspection_call(emulator, tokens["access_token"]) == 200

    emulator.control.advance_clock(121)

    assert introspection_call(emulator, tokens["access_token"]) == 401
    assert refresh(emulator, tokens["refresh_token"]).status_code == 200


# -- introspection (RFC 7662) --------------------------------------------------------------------


def test_token_introspection(emulator: RunningEmulator) -> None:
    tokens = emulator.control.obtain_tokens()

    def introspect(token: str, auth: tuple[str, str] = CLIENT) -> httpx.Response:
        return httpx.post(
            f"{emulator.url}/oauth/token/introspect", auth=auth, data={"token": token}
        )

    active = introspect(tokens["access_token"]).json()
    assert active["active"] is True
    assert active["client_id"] == DEFAULT_CLIENT_ID
    assert active["urn:pleo:params:oauth:subject_urn"] == f"urn:pleo:company:{DEFAULT_COMPANY_ID}"
    assert {"sub", "exp", "iat", "aud", "iss", "jti"} <= set(active)
    assert introspect("not-a-token").json() == {"active": False}
    assert introspect(tokens["access_token"], auth=(DEFAULT_CLIENT_ID, "wrong")).status_code == 401


def test_the_emulator_log_holds_no_code_state_or_token(emulator: RunningEmulator) -> None:
    pkce = Pkce.generate()
    code = emulator.control.authorization_code(pkce)
    tokens = exchange(emulator, code, pkce.verifier).json()
    refresh(emulator, tokens["refresh_token"])

    log = emulator.service.log_path.read_text()

    assert "GET /oauth/authorize 200" in log
    for secret in (code, pkce.verifier, pkce.challenge, tokens["access_token"], "state-1"):
        assert secret not in log
