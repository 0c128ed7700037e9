"""Every page renders escaped, with the headers, and every form carries the CSRF token."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr

from pleo_connector.adapters.placeholder import PlaceholderConnectionSettings
from pleo_connector.installation_config import SyncChoices
from pleo_connector.vocabulary import InstallationStatus
from pleo_connector.web.csrf import BrowserBindingError, CsrfError
from pleo_connector.web.forms import MalformedFormError, form_fields
from pleo_connector.web.pages import (
    SettingsView,
    Site,
    api_key_page,
    disconnected_page,
    error_page,
    oauth_done_page,
    oauth_error_page,
    page_for_error,
    settings_page,
    tag_group_options,
)
from pleo_connector.web.session import (
    SessionExpiredError,
    SessionInvalidError,
    SessionMissingError,
    SessionScopeError,
)
from tests.unit.web.htmlparse import forms_with_token, parse

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response

pytestmark = pytest.mark.unit

TOKEN = "csrf-token-value"
XSS = "<script>alert(1)</script>"


def body_of(response: Response[str]) -> str:
    assert isinstance(response.body, str)
    return response.body


def settings_view(status: str = "ACTIVATED", **changes: Any) -> SettingsView:
    saved = PlaceholderConnectionSettings(
        source_url="https://erp.example/export",
        api_token=SecretStr("stored-erp-token-123"),
    )
    view = SettingsView(
        csrf_token=TOKEN,
        status=InstallationStatus(status),
        connection_fields=form_fields(PlaceholderConnectionSettings, saved),
        tag_groups=tag_group_options([("DEPT", "Department"), ("PROJ", "Projects")], ["PROJ"]),
        choices=SyncChoices(tag_groups=["PROJ"], vendors=False),
    )
    return dataclasses.replace(view, **changes)


def all_pages() -> dict[str, Response[str]]:
    return {
        "oauth_done": oauth_done_page(),
        "oauth_error": oauth_error_page("access_denied", "The user said no."),
        "api_key": api_key_page(TOKEN),
        "api_key_error": api_key_page(TOKEN, error="Pleo did not accept this key.", status=400),
        "settings": settings_page(settings_view()),
        "settings_pending": settings_page(settings_view("PENDING_INTEGRATION")),
        "disconnected": disconnected_page(),
        "error_401": error_page(401, "Your session has expired."),
        "error_403": error_page(403, "This form did not come from this app."),
    }


@pytest.mark.parametrize("name", list(all_pages()))
def test_every_page_has_the_security_headers_and_the_hashed_style(name: str) -> None:
    response = all_pages()[name]
    headers = response.headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    csp = str(headers["Content-Security-Policy"])
    assert "frame-ancestors 'none'" in csp
    match = re.search(r"<style>(.*?)</style>", body_of(response), re.DOTALL)
    assert match is not None
    digest = base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp


@pytest.mark.parametrize("name", list(all_pages()))
def test_no_page_loads_anything_from_elsewhere_or_runs_script(name: str) -> None:
    page = parse(body_of(all_pages()[name]))
    assert not page.find_all("script")
    assert not page.find_all("link")
    assert not page.find_all("img")
    for element in page.elements:
        for attribute in ("src", "href", "action"):
            value = element.attrs.get(attribute)
            assert value is None or value.startswith("/"), (element.tag, value)


@pytest.mark.parametrize("name", list(all_pages()))
def test_every_form_posts_with_the_csrf_token(name: str) -> None:
    body = body_of(all_pages()[name])
    for element in parse(body).forms():
        assert element.attrs.get("method") == "post"
    for action, token in forms_with_token(body):
        assert token == TOKEN, action


def test_the_settings_page_has_the_three_forms() -> None:
    actions = [action for action, _ in forms_with_token(body_of(settings_page(settings_view())))]
    assert actions == ["/settings/preview", "/settings", "/settings/sync", "/settings/disconnect"]


def test_oauth_error_description_with_script_is_shown_escaped() -> None:
    response = oauth_error_page("access_denied", XSS)
    body = body_of(response)

    assert XSS not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert parse(body).find_all("a", href="/oauth/start")
    assert response.status_code == 400


def test_oauth_error_code_is_escaped_and_long_texts_are_clipped() -> None:
    body = body_of(oauth_error_page('"><img src=x>', "x" * 10_000))
    assert "<img" not in body
    assert "x" * 501 not in body


def test_the_api_key_is_never_put_back_into_the_form() -> None:
    page = parse(body_of(api_key_page(TOKEN, error="Pleo did not accept this key.")))
    (key_input,) = page.find_all("input", name="api_key")
    assert key_input.attrs["type"] == "password"
    assert "value" not in key_input.attrs
    assert key_input.attrs["autocomplete"] == "off"
    assert "Pleo did not accept this key." in page.text


def test_the_stored_accounting_secret_is_never_in_the_settings_page() -> None:
    body = body_of(settings_page(settings_view()))
    assert "stored-erp-token-123" not in body
    (token_input,) = parse(body).find_all("input", name="api_token")
    assert token_input.attrs["type"] == "password"
    assert "value" not in token_input.attrs
    assert "https://erp.example/export" in body


def test_pending_integration_checks_its_progress_and_guards_disconnect() -> None:
    key = "PENDING_INTEGRATION|none|running"
    response = settings_page(settings_view("PENDING_INTEGRATION", progress_key=key))
    body = body_of(response)
    page = parse(body)

    (watch,) = [div for div in page.find_all("div") if "data-progress-url" in div.attrs]
    assert watch.attrs["data-progress-url"] == "/settings/progress"
    assert watch.attrs["data-progress-key"] == key
    (script,) = re.findall(r"<script>(.*?)</script>", body, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = str(response.headers["Content-Security-Policy"])
    assert f"script-src 'sha256-{digest}'" in csp
    assert "connect-src 'self'" in csp
    # Without script the page still moves on, by itself, every `refresh_s` seconds.
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in body
    assert page.find_all("progress")
    (disconnect,) = [b for b in page.find_all("button") if b.attrs.get("class") == "danger"]
    assert "disabled" in disconnect.attrs
    assert "A sync is running" in page.text


def test_activated_does_not_refresh_and_allows_disconnect() -> None:
    body = body_of(settings_page(settings_view("ACTIVATED", can_preview_saved=True)))
    page = parse(body)
    assert "refresh" not in body
    assert not page.find_all("script")
    assert not page.find_all("progress")
    buttons = page.find_all("button")
    assert all("disabled" not in button.attrs for button in buttons)
    assert "Active." in page.text


def test_authorized_and_error_states_say_what_to_do() -> None:
    authorized = parse(body_of(settings_page(settings_view("AUTHORIZED")))).text
    assert "finish the setup" in authorized
    failed = settings_view("ERROR", error_code="AUTH_ERROR", auth_method="api_key")
    text = parse(body_of(settings_page(failed))).text
    assert "no longer accepts" in text
    assert "replace the API key" in text
    inactive = settings_view("INACTIVE", status_message=XSS)
    body = body_of(settings_page(inactive))
    assert XSS not in body
    assert "&lt;script&gt;" in body


def test_sync_choices_are_shown_ticked_as_saved() -> None:
    page = parse(body_of(settings_page(settings_view())))
    groups = {
        e.attrs["value"]: "checked" in e.attrs
        for e in page.find_all("input", name="sync_tag_groups")
    }
    assert groups == {"DEPT": False, "PROJ": True}
    assert "checked" in page.find_all("input", name="sync_tax_codes")[0].attrs
    assert "checked" not in page.find_all("input", name="sync_vendors")[0].attrs


def test_tag_group_names_from_the_accounting_system_are_escaped() -> None:
    view = settings_view(tag_groups=tag_group_options([(XSS, XSS)]))
    body = body_of(settings_page(view))
    assert XSS not in body


def test_form_errors_are_shown_next_to_their_fields() -> None:
    fields = form_fields(
        PlaceholderConnectionSettings,
        {"source_url": ["nope"]},
        {"source_url": "Input should be a valid URL."},
    )
    view = settings_view(
        connection_fields=fields, errors={"tag_groups": "Choose at most 5 tag groups."}
    )
    page = parse(body_of(settings_page(view, status=400)))
    (url_input,) = page.find_all("input", name="source_url")
    assert url_input.attrs["aria-invalid"] == "true"
    assert url_input.attrs["value"] == "nope"
    assert "Input should be a valid URL." in page.text
    assert "Choose at most 5 tag groups." in page.text


def test_a_401_offers_ways_to_start_again_and_a_403_does_not() -> None:
    unauthorized = error_page(401, "Your session has expired.")
    assert unauthorized.status_code == 401
    page = parse(body_of(unauthorized))
    assert page.find_all("a", href="/oauth/start")
    assert page.find_all("a", href="/install/api-key")
    forbidden = parse(body_of(error_page(403, "Not from this app.")))
    assert not forbidden.find_all("a", href="/oauth/start")


def test_error_messages_are_escaped() -> None:
    body = body_of(error_page(400, XSS))
    assert XSS not in body


def test_a_site_with_a_base_path_prefixes_links_and_redirects() -> None:
    site = Site.for_base_url("https://api.example/prod/")
    body = body_of(settings_page(settings_view(), site=site))
    actions = [action for action, _ in forms_with_token(body)]
    assert actions == [
        "/prod/settings/preview",
        "/prod/settings",
        "/prod/settings/sync",
        "/prod/settings/disconnect",
    ]
    response = site.redirect("/settings")
    assert response.headers["Location"] == "/prod/settings"
    assert "Strict-Transport-Security" in response.headers
    with pytest.raises(ValueError, match="slash"):
        site.redirect("//evil.example")
    with pytest.raises(ValueError, match="slash"):
        site.redirect("https://evil.example")


def test_cookies_given_to_a_page_are_set() -> None:
    from pleo_connector.web.session import SessionCodec

    codec = SessionCodec("k" * 40, public_base_url="http://127.0.0.1:3000")
    response = oauth_done_page(cookies=[codec.clear_cookie()])
    assert [cookie.name for cookie in response.cookies] == ["pleo_session"]


@pytest.mark.parametrize(
    ("error", "status", "start_again"),
    [
        (SessionMissingError("internal-detail-1"), 401, True),
        (SessionInvalidError("internal-detail-2"), 401, True),
        (SessionExpiredError("internal-detail-3"), 401, True),
        (SessionScopeError("internal-detail-4"), 403, False),
        (CsrfError("internal-detail-5"), 403, False),
        (BrowserBindingError("internal-detail-6"), 400, True),
        (MalformedFormError("internal-detail-7"), 400, False),
    ],
)
def test_each_web_error_has_one_page(error: Exception, status: int, start_again: bool) -> None:
    response = page_for_error(error)
    assert response is not None
    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"
    page = parse(body_of(response))
    assert bool(page.find_all("a", href="/oauth/start")) is start_again
    assert str(error) not in page.text  # internal detail stays in the logs


def test_other_errors_are_left_to_the_handler() -> None:
    assert page_for_error(RuntimeError("boom")) is None


def test_a_write_that_lost_its_race_is_a_409_that_asks_to_try_again() -> None:
    from pleo_connector.store.errors import WriteConflictError

    response = page_for_error(
        WriteConflictError("PutItem: the condition failed", operation="PutItem")
    )

    assert response is not None
    assert response.status_code == 409
    page = parse(body_of(response))
    assert "try again" in page.text
    assert "PutItem" not in page.text
