"""OAuth state is single-use, short-lived, and stored only as a hash."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pleo_connector.store.oauth_state import (
    OAuthStateStore,
    StateExpiredError,
    StateNotFoundError,
    hash_state,
)

if TYPE_CHECKING:
    from pleo_connector.store.dynamodb import DynamoTable
    from tests.unit.store.support import FakeClock

pytestmark = pytest.mark.unit

STATE = "s-" + "x" * 40


def _issue(store: OAuthStateStore, state: str = STATE, ttl_s: float = 600) -> None:
    store.issue(
        state,
        code_verifier="v" * 64,
        redirect_uri="http://127.0.0.1:3000/oauth/callback",
        browser_binding_hash="b" * 64,
        ttl_s=ttl_s,
    )


def test_consume_returns_what_issue_stored(table: DynamoTable, clock: FakeClock) -> None:
    store = OAuthStateStore(table, clock=clock)
    _issue(store)

    consumed = store.consume(STATE)

    assert consumed.code_verifier == "v" * 64
    assert consumed.redirect_uri == "http://127.0.0.1:3000/oauth/callback"
    assert consumed.matches_browser("b" * 64)
    assert not consumed.matches_browser("c" * 64)
    assert consumed.expires_at == clock.now + 600


def test_the_table_holds_the_hash_not_the_state(table: DynamoTable, clock: FakeClock) -> None:
    _issue(OAuthStateStore(table, clock=clock))

    item = table.get({"pk": {"S": f"STATE#{hash_state(STATE)}"}, "sk": {"S": "STATE"}})

    assert item is not None
    assert STATE not in repr(item)
    assert int(item["ttl"]["N"]) >= clock.now + 600


def test_a_second_consume_fails(table: DynamoTable, clock: FakeClock) -> None:
    store = OAuthStateStore(table, clock=clock)
    _issue(store)
    store.consume(STATE)

    with pytest.raises(StateNotFoundError):
        store.consume(STATE)


@pytest.mark.parametrize("state", ["", "never-issued"])
def test_unknown_or_empty_state_is_not_found(
    table: DynamoTable, clock: FakeClock, state: str
) -> None:
    store = OAuthStateStore(table, clock=clock)
    _issue(store)

    with pytest.raises(StateNotFoundError):
        store.consume(state)


def test_an_expired_state_still_in_the_table_is_rejected_and_deleted(
    table: DynamoTable, clock: FakeClock
) -> None:
    store = OAuthStateStore(table, clock=clock)
    _issue(store, ttl_s=60)
    clock.advance(61)  # TTL has not removed it: DynamoDB may take days

    with pytest.raises(StateExpiredError):
        store.consume(STATE)

    assert table.get({"pk": {"S": f"STATE#{hash_state(STATE)}"}, "sk": {"S": "STATE"}}) is None
    with pytest.raises(StateNotFoundError):
        store.consume(STATE)


def test_error_messages_carry_no_state(table: DynamoTable, clock: FakeClock) -> None:
    store = OAuthStateStore(table, clock=clock)

    with pytest.raises(StateNotFoundError) as raised:
        store.consume(STATE)

    assert STATE not in str(raised.value)
