"""Rotating a secret reaches every warm function within `SECRET_MAX_AGE_S`, without a restart and
without a read per request: the session codec is rebuilt when its secret's value changes, and
the OAuth client asks for the client secret on every token call. A session signed with the
previous session key still verifies while that key is listed."""

from __future__ import annotations

import asyncio
import base64
import html
import json
from types import SimpleNamespace
from typing import TYPE_CHECKING
from unittest import mock

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from moto import mock_aws

from pleo_connector.composition.roots import (
    SECRET_MAX_AGE_S,
    SecretCache,
    WebParts,
    build_oauth_function,
    fetch_secret,
)
from pleo_connector.config import OAuthFunctionSettings, load_settings
from pleo_connector.errors import GENERIC_MESSAGE, ConfigurationError
from pleo_connector.web.session import SessionInvalidError
from tests.support.handlers import FakeLambdaContext, load_handler_module
from tests.unit.connect.fakes import web_settings

if TYPE_CHECKING:
    import io

pytestmark = pytest.mark.unit

SESSION_ID = "session-id"  # what `web_settings()` names
CLIENT_SECRET_ID = "client-secret-id"
REDIRECT = "https://app.example/oauth/callback"
OLD_KEY = "old-session-key-" + "o" * 32
NEW_KEY = "new-session-key-" + "n" * 32


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class SecretsManagerStandIn:
    """What Secrets Manager holds, and how often it was read."""

    def __init__(self, **values: str) -> None:
        self.values = dict(values)
        self.reads: list[str] = []

    def fetch(self, secret_id: str) -> str:
        self.reads.append(secret_id)
        return self.values[secret_id]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def parts_with(store: SecretsManagerStandIn, clock: FakeClock) -> WebParts:
    return WebParts(web_settings(), secrets=SecretCache(store.fetch, clock=clock))


def rotated(current: str, *previous: str) -> str:
    return json.dumps({"current": current, "previous": list(previous)})


def test_a_secret_is_read_once_per_max_age_then_again(clock: FakeClock) -> None:
    store = SecretsManagerStandIn(**{SESSION_ID: OLD_KEY})
    cache = SecretCache(store.fetch, clock=clock)

    assert [cache.get(SESSION_ID) for _ in range(3)] == [OLD_KEY] * 3
    store.values[SESSION_ID] = NEW_KEY
    clock.now += SECRET_MAX_AGE_S - 1
    assert cache.get(SESSION_ID) == OLD_KEY
    assert store.reads == [SESSION_ID]

    clock.now += 1
    assert cache.get(SESSION_ID) == NEW_KEY
    assert store.reads == [SESSION_ID, SESSION_ID]


def test_a_warm_codec_takes_the_rotated_key_and_keeps_the_old_sessions(clock: FakeClock) -> None:
    store = SecretsManagerStandIn(**{SESSION_ID: OLD_KEY})  # today's single-key value
    parts = parts_with(store, clock)
    codec = parts.sessions
    old_cookie = codec.encode(codec.issue("inst-a"))
    assert parts.sessions is codec  # the same codec while the value has not changed

    store.values[SESSION_ID] = rotated(NEW_KEY, OLD_KEY)
    clock.now += SECRET_MAX_AGE_S
    rotated_codec = parts.sessions
    new_cookie = rotated_codec.encode(rotated_codec.issue("inst-a"))

    assert rotated_codec is not codec
    assert rotated_codec.decode(old_cookie).installation_id == "inst-a"
    assert new_cookie.split(".")[1] != old_cookie.split(".")[1]  # signed with the new key
    with pytest.raises(SessionInvalidError):
        codec.decode(new_cookie)  # which the old key alone does not verify
    assert store.reads == [SESSION_ID, SESSION_ID]  # one read per max age, not per request

    store.values[SESSION_ID] = rotated(NEW_KEY)  # the old key retired
    clock.now += SECRET_MAX_AGE_S
    assert parts.sessions.decode(new_cookie).installation_id == "inst-a"
    with pytest.raises(SessionInvalidError, match="unknown key"):
        parts.sessions.decode(old_cookie)


def test_promoting_the_new_key_of_a_plain_value_keeps_it_verifying(clock: FakeClock) -> None:
    """A single key and {"current": same key} sign alike: adding "previous" changes nothing
    for the sessions already out."""
    store = SecretsManagerStandIn(**{SESSION_ID: NEW_KEY})
    parts = parts_with(store, clock)
    cookie = parts.sessions.encode(parts.sessions.issue(None))

    store.values[SESSION_ID] = rotated(NEW_KEY, OLD_KEY)
    clock.now += SECRET_MAX_AGE_S

    assert parts.sessions.encode(parts.sessions.issue(None)).split(".")[1] == cookie.split(".")[1]
    assert parts.sessions.decode(cookie).installation_id is None


@pytest.mark.parametrize(
    "value",
    [
        "{not json " + OLD_KEY,
        json.dumps({"previous": [OLD_KEY]}),  # no current
        json.dumps({"current": NEW_KEY, "previos": [OLD_KEY]}),  # a misspelt field
        json.dumps({"current": NEW_KEY, "previous": OLD_KEY}),  # not a list
        json.dumps({"current": NEW_KEY, "previous": [OLD_KEY, 7]}),
        json.dumps({"current": "too-short-key"}),
        json.dumps({"current": NEW_KEY, "previous": ["too-short-key"]}),
        json.dumps({"current": NEW_KEY + "\ud800"}),
        "too-short-key",
    ],
    ids=["bad-json", "no-current", "unknown-field", "previous-not-list", "not-a-string",
         "short-current", "short-previous", "lone-surrogate", "short-plain"],
)  # fmt: skip
def test_a_malformed_session_secret_is_a_configuration_error_without_the_value(
    clock: FakeClock, value: str
) -> None:
    parts = parts_with(SecretsManagerStandIn(**{SESSION_ID: value}), clock)

    with pytest.raises(ConfigurationError) as caught:
        _ = parts.sessions

    error = caught.value
    assert error.http_status == 500
    assert error.user_message == GENERIC_MESSAGE
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
    for part in (value, OLD_KEY, NEW_KEY, "too-short-key"):
        assert part not in f"{error} {error!r}"


def test_fetch_secret_reads_secrets_manager_each_time() -> None:
    """Only `SecretCache` caches: a second cache in front would let a value live twice as long."""
    # Powertools keeps one provider (and its boto3 client) per process: a fresh one, for moto.
    with mock_aws(), mock.patch.dict(DEFAULT_PROVIDERS, clear=True):
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = client.create_secret(Name="session", SecretString=OLD_KEY)["ARN"]
        assert fetch_secret(arn) == OLD_KEY

        client.put_secret_value(SecretId=arn, SecretString=rotated(NEW_KEY, OLD_KEY))

        assert fetch_secret(arn) == rotated(NEW_KEY, OLD_KEY)


# --- the client secret ---------------------------------------------------------------------------


def oauth_settings() -> OAuthFunctionSettings:
    return load_settings(
        OAuthFunctionSettings,
        {
            "PLEO_AUTH_URL": "https://auth.pleo.example",
            "PLEO_API_URL": "https://api.pleo.example",
            "PLEO_CLIENT_ID": "client",
            "PLEO_CLIENT_SECRET_ID": CLIENT_SECRET_ID,
            "PUBLIC_BASE_URL": "https://app.example",
            "SESSION_SECRET_ID": SESSION_ID,
            "TABLE_NAME": "table",
            "KMS_KEY_ID": "key",
            "SYNC_QUEUE_URL": "https://sqs.example/queue",
        },
    )


class FakeTokenEndpoint:
    """Answers every token call, and keeps the client secret each one authenticated with."""

    def __init__(self) -> None:
        self.secrets: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        scheme, _, encoded = request.headers["Authorization"].partition(" ")
        assert scheme == "Basic"
        self.secrets.append(base64.b64decode(encoded).decode().partition(":")[2])
        body = {"access_token": "a", "refresh_token": "r", "expires_in": 900}
        return httpx.Response(200, json=body)


@pytest.fixture
def token_endpoint(monkeypatch: pytest.MonkeyPatch) -> FakeTokenEndpoint:
    """Every httpx client built meanwhile talks to the fake token endpoint."""
    endpoint = FakeTokenEndpoint()
    real = httpx.AsyncClient

    def to_endpoint(**kwargs: object) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(endpoint))

    monkeypatch.setattr(httpx, "AsyncClient", to_endpoint)
    return endpoint


def test_the_token_calls_use_the_rotated_client_secret_after_max_age(
    clock: FakeClock, token_endpoint: FakeTokenEndpoint
) -> None:
    store = SecretsManagerStandIn(**{CLIENT_SECRET_ID: "old-client-secret"})
    function = build_oauth_function(oauth_settings(), secrets=SecretCache(store.fetch, clock=clock))
    oauth = function.install.oauth_client
    assert store.reads == []  # built without reading it

    async def three_exchanges() -> None:
        await oauth.exchange_code("code-1", "v" * 50, REDIRECT)
        store.values[CLIENT_SECRET_ID] = "new-client-secret"
        clock.now += SECRET_MAX_AGE_S - 1
        await oauth.exchange_code("code-2", "v" * 50, REDIRECT)
        clock.now += 1
        await oauth.exchange_code("code-3", "v" * 50, REDIRECT)

    asyncio.run(three_exchanges())

    assert token_endpoint.secrets == ["old-client-secret", "old-client-secret", "new-client-secret"]
    assert store.reads == [CLIENT_SECRET_ID, CLIENT_SECRET_ID]


def test_a_page_under_a_malformed_session_secret_is_the_generic_500_without_it(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, logged: io.StringIO
) -> None:
    value = json.dumps({"current": NEW_KEY, "previos": [OLD_KEY]})
    app = load_handler_module("settings")
    parts = parts_with(SecretsManagerStandIn(**{SESSION_ID: value}), clock)
    monkeypatch.setattr(app, "deps", lambda: SimpleNamespace(web=parts))
    event = {
        "version": "2.0",
        "routeKey": "GET /settings",
        "rawPath": "/settings",
        "rawQueryString": "",
        "cookies": ["__Host-pleo_session=v1.x.y.z"],
        "headers": {"host": "app.example"},
        "requestContext": {
            "http": {"method": "GET", "path": "/settings", "sourceIp": "1.2.3.4"},
            "requestId": "r1",
            "routeKey": "GET /settings",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }

    answer = app.app.resolve(event, FakeLambdaContext())

    assert answer["statusCode"] == 500
    assert GENERIC_MESSAGE in html.unescape(answer["body"])
    assert '"reason":"ConfigurationError"' in logged.getvalue().replace(" ", "")
    for part in (OLD_KEY, NEW_KEY):
        assert part not in json.dumps(answer)
        assert part not in logged.getvalue()
