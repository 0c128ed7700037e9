"""Single-use OAuth `state`, stored under its SHA-256 so the table never holds the value itself.

`consume` is one conditional DeleteItem: it succeeds for exactly one caller, and only before
`expires_at`. The TTL attribute only tidies up (DynamoDB may take days to delete expired items),
so expiry is always checked in the condition.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pleo_connector.store.dynamodb import DynamoTable, Item, Key, get_n, get_s, n, need_s, s
from pleo_connector.store.errors import StoreError, WriteConflictError

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_STATE_TTL_S = 600


class OAuthStateError(StoreError):
    """The callback's state cannot be used (the message is safe to show)."""


class StateNotFoundError(OAuthStateError):
    """Unknown, already used, or never issued."""


class StateExpiredError(OAuthStateError):
    """Issued, but too long ago (it is deleted now)."""


@dataclass(frozen=True, slots=True)
class OAuthState:
    state_hash: str
    code_verifier: str
    redirect_uri: str
    browser_binding_hash: str
    expires_at: float

    def matches_browser(self, browser_binding_hash: str) -> bool:
        """Constant-time check that the callback came from the browser that started the flow."""
        return hmac.compare_digest(self.browser_binding_hash, browser_binding_hash)


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


class OAuthStateStore:
    def __init__(self, table: DynamoTable, *, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def issue(
        self,
        state: str,
        *,
        code_verifier: str,
        redirect_uri: str,
        browser_binding_hash: str,
        ttl_s: float = DEFAULT_STATE_TTL_S,
    ) -> OAuthState:
        if not state:
            raise ValueError("state must not be empty")
        issued = OAuthState(
            state_hash=hash_state(state),
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
            browser_binding_hash=browser_binding_hash,
            expires_at=self._clock() + ttl_s,
        )
        self._table.put(
            _item_from_state(issued),
            # A collision of 256-bit random states is not expected; never overwrite one anyway.
            condition="attribute_not_exists(pk)",
        )
        return issued

    def consume(self, state: str) -> OAuthState:
        """Delete and return the state if it exists and has not expired; exactly one caller wins.

        Raises StateNotFoundError (unknown or already consumed) or StateExpiredError.
        """
        if not state:
            raise StateNotFoundError("missing state", operation="DeleteItem")
        key = _key(hash_state(state))
        try:
            old = self._table.delete(
                key,
                condition="attribute_exists(pk) AND expires_at > :now",
                values={":now": n(self._clock())},
                return_old_on_conflict=True,
            )
        except WriteConflictError as error:
            if error.current is None:
                raise StateNotFoundError(
                    "unknown or already used state", operation="DeleteItem"
                ) from error
            self._delete_expired(key, error.current)
            raise StateExpiredError("expired state", operation="DeleteItem") from error
        if old is None:  # pragma: no cover - the condition guarantees an old item
            raise StateNotFoundError("unknown or already used state", operation="DeleteItem")
        return _state_from_item(old)

    def _delete_expired(self, key: Key, current: Item) -> None:
        """Expired but still present: remove it now instead of waiting for TTL."""
        expires_at = current.get("expires_at")
        if expires_at is None:
            return
        with contextlib.suppress(WriteConflictError):  # someone else removed it first
            self._table.delete(key, condition="expires_at = :seen", values={":seen": expires_at})


def _key(state_hash: str) -> Key:
    return {"pk": s(f"STATE#{state_hash}"), "sk": s("STATE")}


def _item_from_state(state: OAuthState) -> Item:
    return {
        **_key(state.state_hash),
        "entity": s("oauth_state"),
        "code_verifier": s(state.code_verifier),
        "redirect_uri": s(state.redirect_uri),
        "browser_binding_hash": s(state.browser_binding_hash),
        "expires_at": n(state.expires_at),
        "ttl": n(math.ceil(state.expires_at)),
    }


def _state_from_item(item: Item) -> OAuthState:
    return OAuthState(
        state_hash=need_s(item, "pk").removeprefix("STATE#"),
        code_verifier=need_s(item, "code_verifier"),
        redirect_uri=need_s(item, "redirect_uri"),
        browser_binding_hash=get_s(item, "browser_binding_hash") or "",
        expires_at=get_n(item, "expires_at") or 0.0,
    )
