"""OAuth: PKCE, the authorize URL, the token endpoint's requests, errors and malformed answers."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pleo_connector.pleo.errors import (
    APIConnectionError,
    InvalidClientError,
    InvalidGrantError,
    OAuthError,
)
from pleo_connector.pleo.oauth import (
    DEFAULT_EXPIRES_IN_S,
    OAuthClient,
    PkcePair,
    TokenSet,
    build_authorize_url,
)
from tests.unit.pleo.conftest import Recorder

if TYPE_CHECKING:
    import io

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

AUTH_URL = "https://auth.pleo.test"
CLIENT_ID = "my-client"
CLIENT_SECRET = "client-secret-9d8c7b6a"
CODE = "auth-code-1a2b3c4d5e"
VERIFIER = "v" * 50
REFRESH = "refresh-token-6f5e4d3c"
REDIRECT = "https://app.example/oauth/callback"
VERIFIER_ALPHABET = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def oauth(recorder: Recorder) -> OAuthClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return OAuthClient(AUTH_URL, CLIENT_ID, CLIENT_SECRET, http=http, timeout=5)


def tokens(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "access_token": "access-1",
        "refresh_token": "refresh-2",
        "expires_in": 900,
        "token_type": "bearer",
        "scope": "tag-groups:read",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


# PKCE and the authorize URL --------------------------------------------------------------------


def test_pkce_verifier_and_challenge_follow_rfc_7636() -> None:
    pair = PkcePair.generate()

    digest = hashlib.sha256(pair.verifier.encode("ascii")).digest()
    assert VERIFIER_ALPHABET.match(pair.verifier)
    assert pair.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert "=" not in pair.challenge
    assert pair.method == "S256"
    assert pair.verifier not in repr(pair)


def test_pkce_pairs_are_fresh_each_time() -> None:
    pairs = {PkcePair.generate().verifier for _ in range(20)}

    assert len(pairs) == 20


def test_authorize_url_carries_every_parameter() -> None:
    url = build_authorize_url(
        AUTH_URL,
        CLIENT_ID,
        REDIRECT,
        ["tag-groups:read", "vendors:write"],
        state="state-xyz",
        code_challenge="challenge-abc",
    )

    parts = urlsplit(url)
    query = parse_qs(parts.query, strict_parsing=True)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{AUTH_URL}/oauth/authorize"
    assert query == {
        "response_type": ["code"],
        "client_id": [CLIENT_ID],
        "redirect_uri": [REDIRECT],
        "scope": ["tag-groups:read vendors:write"],
        "state": ["state-xyz"],
        "code_challenge": ["challenge-abc"],
        "code_challenge_method": ["S256"],
    }
    assert "scope=tag-groups%3Aread%20vendors%3Awrite" in parts.query  # %20, not "+"


def test_authorize_endpoint_can_be_configured() -> None:
    url = build_authorize_url(
        AUTH_URL,
        CLIENT_ID,
        REDIRECT,
        "",
        state="s",
        code_challenge="c",
        authorize_endpoint="https://other.test/authorize?tenant=1",
    )

    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://other.test/authorize?")
    assert query["tenant"] == ["1"]
    assert "scope" not in query


def test_authorize_url_requires_state() -> None:
    with pytest.raises(ValueError, match="state"):
        build_authorize_url(AUTH_URL, CLIENT_ID, REDIRECT, "x", state="", code_challenge="c")


# The token endpoint ----------------------------------------------------------------------------


async def test_code_exchange_uses_client_secret_basic_and_pkce() -> None:
    recorder = Recorder([httpx.Response(200, json=tokens())])

    token_set = await oauth(recorder).exchange_code(CODE, VERIFIER, REDIRECT)

    request = recorder.requests[0]
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.method == "POST"
    assert str(request.url) == f"{AUTH_URL}/oauth/token"
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["authorization_code"],
        "code": [CODE],
        "redirect_uri": [REDIRECT],
        "code_verifier": [VERIFIER],
    }
    assert token_set == TokenSet("access-1", "refresh-2", 900, "Bearer", "tag-groups:read")
    assert token_set.expires_at(1000.0) == 1900.0


async def test_the_client_secret_is_asked_for_on_every_token_call() -> None:
    """Whatever the provider answers now is what authenticates: a rotated secret is used on the
    next call (the provider decides how long it holds a value), never only after a restart."""
    recorder = Recorder([httpx.Response(200, json=tokens()) for _ in range(2)])
    current = ["old-client-secret"]
    asked: list[str] = []

    def provider() -> str:
        asked.append(current[0])
        return current[0]

    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    client = OAuthClient(AUTH_URL, CLIENT_ID, provider, http=http, timeout=5)
    assert asked == []  # nothing read before a token call

    await client.refresh(REFRESH)
    current[0] = "new-client-secret"
    await client.refresh(REFRESH)

    assert asked == ["old-client-secret", "new-client-secret"]
    assert [request.headers["Authorization"] for request in recorder.requests] == [
        "Basic " + base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()
        for secret in ("old-client-secret", "new-client-secret")
    ]


async def test_refresh_sends_the_refresh_grant() -> None:
    recorder = Recorder([httpx.Response(200, json=tokens(access_token="a2"))])

    token_set = await oauth(recorder).refresh(REFRESH)

    assert parse_qs(recorder.requests[0].content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH],
    }
    assert token_set.access_token == "a2"


async def test_a_refresh_answer_without_a_refresh_token_keeps_the_old_one() -> None:
    """RFC 6749 section 6: a server that does not rotate leaves the refresh token out."""
    recorder = Recorder([httpx.Response(200, json=tokens(refresh_token=None))])

    token_set = await oauth(recorder).refresh(REFRESH)

    assert (token_set.access_token, token_set.refresh_token) == ("access-1", None)


async def test_a_refresh_answer_with_an_empty_refresh_token_is_malformed() -> None:
    recorder = Recorder([httpx.Response(200, json=tokens(refresh_token=""))])

    with pytest.raises(OAuthError) as caught:
        await oauth(recorder).refresh(REFRESH)

    assert caught.value.error == "invalid_response"


@pytest.mark.parametrize("grant", ["authorization_code", "refresh_token"])
async def test_without_expires_in_the_token_lives_the_documented_default(grant: str) -> None:
    recorder = Recorder([httpx.Response(200, json=tokens(expires_in=None))])
    client = oauth(recorder)

    if grant == "authorization_code":
        token_set = await client.exchange_code(CODE, VERIFIER, REDIRECT)
    else:
        token_set = await client.refresh(REFRESH)

    assert token_set.expires_in == DEFAULT_EXPIRES_IN_S == 300


@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_token_type_is_read_in_any_case(token_type: str) -> None:
    recorder = Recorder([httpx.Response(200, json=tokens(token_type=token_type))])

    token_set = await oauth(recorder).refresh(REFRESH)

    assert token_set.token_type == "Bearer"


def test_token_endpoint_can_be_configured() -> None:
    client = OAuthClient(AUTH_URL, CLIENT_ID, CLIENT_SECRET, token_endpoint="https://x.test/t")

    assert client.token_endpoint == "https://x.test/t"
    assert client.request_timeout_s == 10.0


def test_tokens_stay_out_of_repr() -> None:
    token_set = TokenSet("access-secret", "refresh-secret", 60)
    client = OAuthClient(AUTH_URL, CLIENT_ID, CLIENT_SECRET)

    assert "secret" not in repr(token_set)
    assert CLIENT_SECRET not in repr(client)


@pytest.mark.parametrize(
    ("status", "body", "kind", "error"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "expired"},
            InvalidGrantError,
            "invalid_grant",
        ),
        (401, {"error": "invalid_client"}, InvalidClientError, "invalid_client"),
        (400, {"error": "invalid_request"}, OAuthError, "invalid_request"),
        (400, {"error": "unsupported_grant_type"}, OAuthError, "unsupported_grant_type"),
        (200, {"error": "invalid_grant"}, InvalidGrantError, "invalid_grant"),
    ],
)
async def test_rfc_6749_errors_are_parsed(
    status: int, body: dict[str, str], kind: type[OAuthError], error: str
) -> None:
    recorder = Recorder([httpx.Response(status, json=body)])

    with pytest.raises(kind) as caught:
        await oauth(recorder).refresh(REFRESH)

    assert type(caught.value) is kind
    assert caught.value.error == error
    assert caught.value.status_code == status
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json=tokens(access_token=None)),
        httpx.Response(200, json=tokens(refresh_token=None)),
        httpx.Response(200, json=tokens(expires_in="soon")),
        httpx.Response(200, json=tokens(expires_in=-5)),
        httpx.Response(200, json=tokens(access_token="")),
        httpx.Response(200, json=tokens(token_type="mac")),
        httpx.Response(200, json=["access_token"]),
        httpx.Response(200, text="<html><body>Sign in</body></html>"),
        httpx.Response(200, content=b""),
    ],
)
async def test_malformed_token_response_raises(response: httpx.Response) -> None:
    recorder = Recorder([response])

    with pytest.raises(OAuthError) as caught:
        await oauth(recorder).exchange_code(CODE, VERIFIER, REDIRECT)

    assert caught.value.error == "invalid_response"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_raise_retryable_oauth_errors(status: int) -> None:
    recorder = Recorder([httpx.Response(status, text="<html>Bad gateway</html>")])

    with pytest.raises(OAuthError) as caught:
        await oauth(recorder).refresh(REFRESH)

    assert caught.value.error == "server_error"
    assert caught.value.retryable
    assert len(recorder.requests) == 1  # never retried here: refresh tokens rotate


async def test_connection_failure_raises_connection_error() -> None:
    recorder = Recorder([httpx.ConnectError("refused")])

    with pytest.raises(APIConnectionError):
        await oauth(recorder).refresh(REFRESH)


async def test_no_secret_in_oauth_errors_or_logs(
    caplog: pytest.LogCaptureFixture, logged: io.StringIO
) -> None:
    """Even when the server echoes the request's secrets back, none reaches a message or log."""
    exchange_echo = f"bad code {CODE} verifier {VERIFIER} client {CLIENT_SECRET}"
    refresh_echo = f"bad token {REFRESH} client {CLIENT_SECRET}"
    recorder = Recorder(
        [
            httpx.Response(
                400, json={"error": "invalid_grant", "error_description": exchange_echo}
            ),
            httpx.Response(400, json={"error": "invalid_grant", "error_description": refresh_echo}),
        ]
    )
    client = oauth(recorder)
    caplog.set_level(logging.DEBUG)

    messages = []
    for call in (client.exchange_code(CODE, VERIFIER, REDIRECT), client.refresh(REFRESH)):
        with pytest.raises(InvalidGrantError) as caught:
            await call
        messages.append(str(caught.value) + repr(caught.value) + str(caught.value.description))

    captured = caplog.text + logged.getvalue() + "".join(messages)
    assert '"grant":"refresh_token"' in logged.getvalue().replace(" ", "")
    assert "[redacted]" in captured
    for secret in (CODE, VERIFIER, CLIENT_SECRET, REFRESH):
        assert secret not in captured
