"""The OAuth client against the emulator's authorization server: the authorize URL is accepted,
the code exchange and refresh work with client_secret_basic, and reuse raises InvalidGrantError.

The OAuth endpoints have no OpenAPI document (Pleo publishes none), so these are behaviour tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from pleo_connector.pleo.errors import InvalidClientError, InvalidGrantError
from pleo_connector.pleo.oauth import OAuthClient, PkcePair, build_authorize_url
from tests.support.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    Pkce,
    RunningEmulator,
)

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
