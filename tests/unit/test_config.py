"""Settings that decide security checks: the issuer a callback must name, and whether it must."""

from __future__ import annotations

import pytest

from pleo_connector.config import PleoSettings, load_settings

pytestmark = pytest.mark.unit

BASE = {
    "PLEO_API_URL": "https://external.pleo.example",
    "PLEO_CLIENT_ID": "client",
    "PLEO_CLIENT_SECRET_ID": "secret-id",
}


def pleo(**environment: str) -> PleoSettings:
    return load_settings(PleoSettings, {**BASE, **environment})


@pytest.mark.parametrize(
    ("auth_url", "issuer"),
    [
        ("https://auth.pleo.io", "https://auth.pleo.io"),
        ("https://auth.pleo.io/", "https://auth.pleo.io"),
        ("http://127.0.0.1:4010", "http://127.0.0.1:4010"),
        ("https://auth.pleo.io:443", "https://auth.pleo.io"),
        ("https://login.example/realms/pleo", "https://login.example/realms/pleo"),
        ("https://login.example/realms/pleo/", "https://login.example/realms/pleo"),
    ],
)
def test_without_pleo_issuer_the_issuer_is_the_auth_url_without_its_slash(
    auth_url: str, issuer: str
) -> None:
    assert pleo(PLEO_AUTH_URL=auth_url).issuer == issuer
    assert pleo(PLEO_AUTH_URL=auth_url, PLEO_ISSUER="").issuer == issuer


def test_a_configured_issuer_is_used_exactly_as_given() -> None:
    settings = pleo(PLEO_AUTH_URL="https://auth.pleo.io", PLEO_ISSUER="https://auth.pleo.io/")

    assert settings.issuer == "https://auth.pleo.io/"


@pytest.mark.parametrize(
    ("value", "required"), [(None, True), ("true", True), ("false", False), ("0", False)]
)
def test_iss_is_required_unless_switched_off(value: str | None, required: bool) -> None:
    environment = {"PLEO_AUTH_URL": "https://auth.pleo.io"}
    if value is not None:
        environment["PLEO_REQUIRE_ISS"] = value

    assert pleo(**environment).pleo_require_iss is required
