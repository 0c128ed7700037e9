"""CSRF checks on every POST, and the OAuth flow's browser binding."""

from __future__ import annotations

import pytest

from pleo_connector.web.csrf import (
    CSRF_FIELD,
    BrowserBinding,
    BrowserBindingError,
    CsrfError,
    FormValues,
    binding_hash,
    check_post,
    csrf_token,
)
from pleo_connector.web.session import Session, SessionCodec

pytestmark = pytest.mark.unit

BASE_URL = "https://connector.example"
CODEC = SessionCodec("k" * 40, public_base_url=BASE_URL)


@pytest.fixture
def session() -> Session:
    return CODEC.issue("inst-a")


def same_origin_headers() -> dict[str, str]:
    return {"origin": "https://connector.example", "sec-fetch-site": "same-origin"}


def test_a_same_origin_post_with_the_token_passes(session: Session) -> None:
    check_post(same_origin_headers(), {CSRF_FIELD: [csrf_token(session)]}, session, BASE_URL)


def test_a_post_without_fetch_metadata_or_origin_passes_on_the_token(session: Session) -> None:
    check_post({}, {CSRF_FIELD: csrf_token(session)}, session, BASE_URL)


@pytest.mark.parametrize(
    "form",
    [{}, {CSRF_FIELD: ""}, {CSRF_FIELD: ["x"]}, {CSRF_FIELD: "wrong"}, {"other": "value"}],
)
def test_a_missing_or_wrong_token_is_refused(session: Session, form: FormValues) -> None:
    with pytest.raises(CsrfError):
        check_post(same_origin_headers(), form, session, BASE_URL)


def test_a_token_sent_twice_is_refused(session: Session) -> None:
    token = csrf_token(session)
    with pytest.raises(CsrfError):
        check_post(same_origin_headers(), {CSRF_FIELD: [token, token]}, session, BASE_URL)


def test_another_sessions_token_is_refused(session: Session) -> None:
    other = CODEC.issue("inst-a")
    with pytest.raises(CsrfError):
        check_post(same_origin_headers(), {CSRF_FIELD: csrf_token(other)}, session, BASE_URL)


def test_the_token_is_stable_within_a_session_and_survives_the_cookie(session: Session) -> None:
    decoded = CODEC.decode(CODEC.encode(session))
    assert csrf_token(decoded) == csrf_token(session)
    assert csrf_token(session) != session.csrf_secret


@pytest.mark.parametrize("site", ["cross-site", "same-site", "CROSS-SITE"])
def test_a_cross_site_post_is_refused_even_with_the_token(session: Session, site: str) -> None:
    headers = {"origin": "https://connector.example", "sec-fetch-site": site}
    with pytest.raises(CsrfError):
        check_post(headers, {CSRF_FIELD: csrf_token(session)}, session, BASE_URL)


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://connector.example",
        "https://connector.example:8443",
        "https://connector.example.evil.example",
    ],
)
def test_a_foreign_origin_is_refused_even_with_the_token(session: Session, origin: str) -> None:
    with pytest.raises(CsrfError):
        check_post({"origin": origin}, {CSRF_FIELD: csrf_token(session)}, session, BASE_URL)


@pytest.mark.parametrize(
    ("name_origin", "name_site"),
    [("Origin", "Sec-Fetch-Site"), ("ORIGIN", "SEC-FETCH-SITE"), ("oRiGiN", "sec-Fetch-site")],
)
def test_headers_are_read_whatever_their_case(
    session: Session, name_origin: str, name_site: str
) -> None:
    token = {CSRF_FIELD: csrf_token(session)}
    with pytest.raises(CsrfError):
        check_post({name_site: "cross-site"}, token, session, BASE_URL)
    with pytest.raises(CsrfError):
        check_post({name_origin: "https://evil.example"}, token, session, BASE_URL)
    check_post(
        {name_origin: "https://Connector.Example", name_site: "same-origin"},
        token,
        session,
        BASE_URL,
    )


def test_origin_null_passes_only_when_the_browser_says_same_origin(session: Session) -> None:
    token = {CSRF_FIELD: csrf_token(session)}
    check_post({"origin": "null", "sec-fetch-site": "same-origin"}, token, session, BASE_URL)
    with pytest.raises(CsrfError):
        check_post({"origin": "null"}, token, session, BASE_URL)


def test_default_ports_match_the_origin_browsers_send(session: Session) -> None:
    token = {CSRF_FIELD: csrf_token(session)}
    check_post({"origin": "https://connector.example"}, token, session, BASE_URL + ":443/")
    check_post({"origin": "http://127.0.0.1:3000"}, token, session, "http://127.0.0.1:3000")


@pytest.mark.parametrize(
    "referer",
    [
        "https://evil.example/attack.html",
        "http://connector.example/settings",
        "https://connector.example.evil.example/settings",
        "https://connector.example:8443/settings",
        "null",
        "/settings",
        "android-app://com.example/",
        "https://connector.example:99999/",
    ],
)
def test_without_origin_or_fetch_metadata_a_foreign_referer_is_refused(
    session: Session, referer: str
) -> None:
    with pytest.raises(CsrfError):
        check_post({"Referer": referer}, {CSRF_FIELD: csrf_token(session)}, session, BASE_URL)


@pytest.mark.parametrize(
    "referer",
    [
        "https://connector.example/settings",
        "https://Connector.Example:443/install/api-key?installation_id=x#top",
        "https://connector.example",
        "",
        "  ",
    ],
)
def test_without_origin_or_fetch_metadata_a_same_origin_or_no_referer_passes(
    session: Session, referer: str
) -> None:
    check_post({"referer": referer}, {CSRF_FIELD: csrf_token(session)}, session, BASE_URL)


def test_the_referer_still_needs_the_token(session: Session) -> None:
    with pytest.raises(CsrfError):
        check_post({"Referer": BASE_URL + "/settings"}, {}, session, BASE_URL)


def test_the_referer_is_not_consulted_when_the_browser_sends_origin_or_fetch_metadata(
    session: Session,
) -> None:
    """A browser that sends Origin or Sec-Fetch-Site has said where the form came from; its
    Referer may still be another site's (a link followed to the form, then posted)."""
    token = {CSRF_FIELD: csrf_token(session)}
    foreign = "https://evil.example/page"
    check_post({"Origin": BASE_URL, "Referer": foreign}, token, session, BASE_URL)
    check_post({"Sec-Fetch-Site": "same-origin", "Referer": foreign}, token, session, BASE_URL)


def test_browser_binding_accepts_the_browser_that_started() -> None:
    binding = BrowserBinding(BASE_URL)
    nonce, stored_hash = binding.new()
    cookie = binding.cookie(nonce)

    binding.verify([f"{cookie.name}={cookie.value}"], stored_hash)

    assert stored_hash == binding_hash(nonce)
    assert nonce not in stored_hash


def test_browser_binding_refuses_no_cookie_another_cookie_or_no_stored_hash() -> None:
    binding = BrowserBinding(BASE_URL)
    nonce, stored_hash = binding.new()
    other_nonce, _ = binding.new()
    name = binding.cookie_name
    for cookies, expected in [
        (None, stored_hash),
        ([f"{name}={other_nonce}"], stored_hash),
        ([f"{name}="], stored_hash),
        ([f"pleo_oauth_binding={nonce}"], stored_hash),
        ([f"{name}={nonce}"], None),
        ([f"{name}={nonce}", f"{name}={nonce}"], stored_hash),
    ]:
        with pytest.raises(BrowserBindingError):
            binding.verify(cookies, expected)


def test_browser_binding_cookie_attributes() -> None:
    https_cookie = str(BrowserBinding(BASE_URL, max_age_s=600).cookie("nonce"))
    assert https_cookie.startswith("__Host-pleo_oauth_binding=nonce;")
    for attribute in ("Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=600"):
        assert attribute in https_cookie
    local_cookie = str(BrowserBinding("http://127.0.0.1:3000").cookie("nonce"))
    assert local_cookie.startswith("pleo_oauth_binding=nonce;")
    assert "Secure" not in local_cookie
    assert "Max-Age=0" in str(BrowserBinding(BASE_URL).clear_cookie())


def test_each_flow_gets_a_fresh_nonce() -> None:
    assert BrowserBinding.new()[0] != BrowserBinding.new()[0]
