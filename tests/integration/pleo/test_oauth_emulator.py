"""The OAuth client against the emulator's authorization server: the authorize URL is accepted,
the code exchange and refresh work with client_secret_basic, and reuse raises InvalidGrantError;
answers that RFC 6749 allows but Pleo's do not use (no rotation, no `expires_in`, `bearer`) are
read, and the issuer derived from PLEO_AUTH_URL is the one the server names on the callback.

The OAuth endpoints have no OpenAPI document (Pleo publishes none), so these are behaviour tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pleo_connector.config import PleoSettings, load_settings
from pleo_connector.pleo.errors import InvalidClientError, InvalidGrantError
from pleo_connector.pleo.oauth import (
    DEFAULT_EXPIRES_IN_S,
    OAuthClient,
    PkcePair,
    build_authorize_url,
)
from tests.support.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    Pkce,
    RunningEmulator,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
async def oauth(emulator: RunningEmulator) -> AsyncIterator[OAuthClient]:
    client = OAuthClient(emulator.url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, timeout=5)
    yield client
    await client.aclose()


def code_for(emulator: RunningEmulator, pair: PkcePair) -> str:
    return emulator.control.authorization_code(Pkce(pair.verifier, pair.challenge))


def test_authorize_url_opens_the_consent_page(emulator: RunningEmulator) -> None:
    pair = PkcePair.generate()
    url = build_authorize_url(
        emulator.url,
        DEFAULT_CLIENT_ID,
        DEFAULT_REDIRECT_URI,
        [],
        state="state-123",
        code_challenge=pair.challenge,
    )

    page = httpx.get(url, timeout=5)

    assert page.status_code == 200
    assert "<form" in page.text


async def test_code_exchange_then_rotating_refresh(
    emulator: RunningEmulator, oauth: OAuthClient
) -> None:
    pair = PkcePair.generate()

    first = await oauth.exchange_code(code_for(emulator, pair), pair.verifier, DEFAULT_REDIRECT_URI)
    assert first.refresh_token is not None
    second = await oauth.refresh(first.refresh_token)

    assert first.expires_in > 0
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token  # rotated


async def test_reused_code_and_refresh_token_raise_invalid_grant(
    emulator: RunningEmulator, oauth: OAuthClient
) -> None:
    pair = PkcePair.generate()
    code = code_for(emulator, pair)
    tokens = await oauth.exchange_code(code, pair.verifier, DEFAULT_REDIRECT_URI)

    with pytest.raises(InvalidGrantError):
        await oauth.exchange_code(code, pair.verifier, DEFAULT_REDIRECT_URI)

    pair = PkcePair.generate()
    tokens = await oauth.exchange_code(
        code_for(emulator, pair), pair.verifier, DEFAULT_REDIRECT_URI
    )
    assert tokens.refresh_token is not None
    await oauth.refresh(tokens.refresh_token)
    with pytest.raises(InvalidGrantError) as caught:
        await oauth.refresh(tokens.refresh_token)

    assert tokens.refresh_token not in str(caught.value)


async def test_wrong_verifier_is_an_invalid_grant(
    emulator: RunningEmulator, oauth: OAuthClient
) -> None:
    pair = PkcePair.generate()
    code = code_for(emulator, pair)

    with pytest.raises(InvalidGrantError):
        await oauth.exchange_code(code, PkcePair.generate().verifier, DEFAULT_REDIRECT_URI)


async def test_wrong_client_secret_is_an_oauth_error(emulator: RunningEmulator) -> None:
    pair = PkcePair.generate()
    code = code_for(emulator, pair)
    client = OAuthClient(emulator.url, DEFAULT_CLIENT_ID, "not-the-secret")

    with pytest.raises(InvalidClientError) as caught:
        await client.exchange_code(code, pair.verifier, DEFAULT_REDIRECT_URI)
    await client.aclose()

    assert "not-the-secret" not in str(caught.value)


@pytest.mark.parametrize("token_type", ["bearer", "BEARER"])
async def test_a_server_that_does_not_rotate_or_send_expires_in(
    emulator: RunningEmulator, oauth: OAuthClient, token_type: str
) -> None:
    emulator.control.update_settings(
        rotate_refresh_tokens=False, send_expires_in=False, token_type=token_type
    )
    pair = PkcePair.generate()
    first = await oauth.exchange_code(code_for(emulator, pair), pair.verifier, DEFAULT_REDIRECT_URI)
    assert first.refresh_token is not None

    again = [await oauth.refresh(first.refresh_token) for _ in range(2)]

    assert [token_set.refresh_token for token_set in again] == [None, None]
    assert {token_set.expires_in for token_set in (first, *again)} == {DEFAULT_EXPIRES_IN_S}
    assert len({first.access_token, *(token_set.access_token for token_set in again)}) == 3


@pytest.mark.parametrize("path", ["", "/"])
def test_the_issuer_derived_from_the_auth_url_is_the_one_the_server_sends(
    emulator: RunningEmulator, path: str
) -> None:
    settings = load_settings(
        PleoSettings,
        {
            "PLEO_AUTH_URL": emulator.url + path,
            "PLEO_API_URL": emulator.url,
            "PLEO_CLIENT_ID": DEFAULT_CLIENT_ID,
            "PLEO_CLIENT_SECRET_ID": "secret-id",
        },
    )
    emulator.control.set_auto_approve(True)
    pair = PkcePair.generate()
    url = build_authorize_url(
        str(settings.pleo_auth_url),
        DEFAULT_CLIENT_ID,
        DEFAULT_REDIRECT_URI,
        [],
        "s",
        pair.challenge,
    )

    answer = httpx.get(url, timeout=5)

    assert answer.status_code == 303
    [iss] = parse_qs(urlsplit(answer.headers["location"]).query)["iss"]
    assert iss == settings.issuer
    assert str(settings.pleo_auth_url) != iss  # pydantic's bare origin ends in "/", the iss not
