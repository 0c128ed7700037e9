"""Settings that decide security checks: the issuer a callback must name, and whether it must;
where snapshot sources may be read from, and the caps on reading them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pleo_connector.config import (
    AdapterSettings,
    PleoSettings,
    SettingsFunctionSettings,
    WorkerFunctionSettings,
    load_settings,
)

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


def test_source_rules_are_strict_by_default() -> None:
    settings = load_settings(AdapterSettings, {})

    assert settings.allow_local_sources is False
    assert (settings.source_bucket, settings.source_prefix) == ("", "")
    assert settings.source_max_bytes == 50 * 1024 * 1024


@pytest.mark.parametrize("model", [SettingsFunctionSettings, WorkerFunctionSettings])
def test_the_functions_that_read_sources_get_their_rules(model: type[AdapterSettings]) -> None:
    environment = {
        **BASE,
        "PLEO_AUTH_URL": "https://auth.pleo.io",
        "TABLE_NAME": "table",
        "KMS_KEY_ID": "key",
        "SYNC_QUEUE_URL": "https://sqs.example/queue",
        "PUBLIC_BASE_URL": "https://app.example",
        "SESSION_SECRET_ID": "session",
        "ADAPTER": "json",
        "ALLOW_LOCAL_SOURCES": "true",
        "SOURCE_BUCKET": "acme-snapshots",
        "SOURCE_PREFIX": "snapshots/",
        "SOURCE_TOTAL_TIMEOUT_S": "30",
    }

    settings = load_settings(model, environment)

    assert settings.allow_local_sources is True
    assert (settings.source_bucket, settings.source_prefix) == ("acme-snapshots", "snapshots/")
    assert settings.source_total_timeout_s == 30


@pytest.mark.parametrize(
    "environment",
    [{"SOURCE_MAX_BYTES": "0"}, {"SOURCE_TOTAL_TIMEOUT_S": "0"}, {"SOURCE_READ_TIMEOUT_S": "-1"}],
)
def test_caps_must_be_positive(environment: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        load_settings(AdapterSettings, environment)
