"""Cross-site request forgery defences, and the OAuth flow's browser binding.

Every form carries a token bound to the session: the session cookie holds a random CSRF secret
under its signature, and the form token is an HMAC of the session id under that secret. A page on
another site can neither read the HttpOnly cookie nor the token. On top of the token, a POST is
refused when the browser says it is cross-site (`Sec-Fetch-Site`) or names a foreign `Origin`.
When it sends neither (an old browser, or a client that is not one), a `Referer` must name this
app too; with no `Referer` either, the token decides alone (the app's own pages send
`Referrer-Policy: no-referrer`, so their posts usually carry none).

`Referrer-Policy: no-referrer` makes spec-following browsers send `Origin: null` even on
same-origin form posts, so `null` is accepted only where `Sec-Fetch-Site` says `same-origin`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from pleo_connector.errors import ConnectorError
from pleo_connector.web.cookies import (
    DuplicateCookieError,
    build_cookie,
    cookie_name,
    expired_cookie,
    is_secure_base_url,
    read_cookie,
)
from pleo_connector.web.security import origin_of

if TYPE_CHECKING:
    from aws_lambda_powertools.shared.cookies import Cookie

    from pleo_connector.web.session import Session

CSRF_FIELD = "csrf_token"
BINDING_COOKIE = "pleo_oauth_binding"
_ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})

FormValues = Mapping[str, str | Sequence[str]]


class CsrfError(ConnectorError):
    """A state-changing request that may not come from this app's own page (a 403)."""

    http_status: ClassVar[int] = 403
    user_message = "The form did not come from this app's own page, so it was not used."
    back_to: ClassVar[str | None] = "/settings"


class BrowserBindingError(ConnectorError):
    """The OAuth callback came back in another browser than the one that started the flow."""

    http_status: ClassVar[int] = 400
    user_message = "The sign-in did not come back to the browser that started it."
    start_again: ClassVar[bool | None] = True


def csrf_token(session: Session) -> str:
    """The token for the forms of this session's pages (the same on every page of a session)."""
    mac = hmac.new(
        session.csrf_secret.encode("utf-8"),
        f"csrf|{session.session_id}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive lookup: the local API keeps the client's casing, API Gateway lowercases."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


def _single_value(form: FormValues, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    values = list(value)
    return values[0] if len(values) == 1 else None


def _same_origin(url: str, public_base_url: str) -> bool:
    try:
        return origin_of(url) == origin_of(public_base_url)
    except ValueError:  # not an absolute http(s) URL: it names no origin of ours
        return False


def check_post(
    headers: Mapping[str, str] | None,
    form: FormValues,
    session: Session,
    public_base_url: str,
) -> None:
    """Refuse (CsrfError) a POST that is cross-site, from a foreign origin (or, with neither
    fetch metadata nor Origin, a foreign Referer), or lacks the token."""
    fetch_site = _header(headers, "Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.strip().lower() not in _ALLOWED_FETCH_SITES:
        raise CsrfError("the form was not sent from this app's own page")
    origin = _header(headers, "Origin")
    if origin is not None:
        origin = origin.strip().lower()
        if origin == "null":
            if fetch_site is None or fetch_site.strip().lower() != "same-origin":
                raise CsrfError("the form was sent from an opaque origin")
        elif origin != origin_of(public_base_url):
            raise CsrfError("the form was sent from another origin")
    elif fetch_site is None:
        referer = (_header(headers, "Referer") or "").strip()
        if referer and not _same_origin(referer, public_base_url):
            raise CsrfError("the form was sent from another page")
    submitted = _single_value(form, CSRF_FIELD)
    if not submitted:
        raise CsrfError("the form has no valid CSRF token")
    if not hmac.compare_digest(submitted.encode("utf-8"), csrf_token(session).encode("ascii")):
        raise CsrfError("the form has no valid CSRF token")


def binding_hash(nonce: str) -> str:
    """What the OAuth state stores: the hash, so the table never holds the cookie's value."""
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


class BrowserBinding:
    """Ties an OAuth state to the browser that started the flow.

    `/oauth/start`: `nonce, nonce_hash = binding.new()`; store `nonce_hash` with the state and
    send `binding.cookie(nonce)`. `/oauth/callback`: `binding.verify(cookies, state.hash)`, then
    send `binding.clear_cookie()` whatever the outcome.
    """

    def __init__(self, public_base_url: str, *, max_age_s: int = 600) -> None:
        self.secure = is_secure_base_url(public_base_url)
        self.cookie_name = cookie_name(BINDING_COOKIE, secure=self.secure)
        self.max_age_s = max_age_s

    @staticmethod
    def new() -> tuple[str, str]:
        """A fresh random nonce for the cookie and its hash for the stored state."""
        nonce = secrets.token_urlsafe(32)
        return nonce, binding_hash(nonce)

    def cookie(self, nonce: str) -> Cookie:
        return build_cookie(self.cookie_name, nonce, secure=self.secure, max_age_s=self.max_age_s)

    def clear_cookie(self) -> Cookie:
        return expired_cookie(self.cookie_name, secure=self.secure)

    def verify(self, cookies: Iterable[str] | None, expected_hash: str | None) -> None:
        """Raise BrowserBindingError unless the request's cookie hashes to `expected_hash`."""
        try:
            nonce = read_cookie(cookies, self.cookie_name)
        except DuplicateCookieError:
            raise BrowserBindingError("the browser binding cookie was sent twice") from None
        if not nonce or not expected_hash:
            raise BrowserBindingError("the browser that started the sign-in did not come back")
        if not hmac.compare_digest(binding_hash(nonce).encode(), expected_hash.encode("utf-8")):
            raise BrowserBindingError("the browser that started the sign-in did not come back")
