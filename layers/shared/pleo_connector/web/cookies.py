"""Cookie names, attributes and reading, the same way for every cookie the pages set.

On HTTPS a cookie gets the `__Host-` prefix (the browser then insists on Secure, Path=/ and no
Domain, so no sibling host can plant or widen it). On plain http://127.0.0.1 (the local world)
browsers refuse both the prefix and Secure, so there the bare name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from pleo_connector.errors import ConnectorError

if TYPE_CHECKING:
    from collections.abc import Iterable

HOST_PREFIX = "__Host-"
MAX_COOKIE_VALUE = 4096


class DuplicateCookieError(ConnectorError, ValueError):
    """The request carries the same cookie twice: something planted one; trust neither."""


def is_secure_base_url(public_base_url: str) -> bool:
    """Cookies are Secure (and `__Host-`) unless the app is served over plain http."""
    return urlsplit(public_base_url).scheme.lower() != "http"


def cookie_name(base_name: str, *, secure: bool) -> str:
    return f"{HOST_PREFIX}{base_name}" if secure else base_name


def build_cookie(name: str, value: str, *, secure: bool, max_age_s: int) -> Cookie:
    """HttpOnly, SameSite=Lax (Pleo's redirect back is a cross-site top-level GET), Path=/."""
    return Cookie(
        name=name,
        value=value,
        path="/",
        secure=secure,
        http_only=True,
        max_age=max_age_s,
        same_site=SameSite.LAX_MODE,
    )


def expired_cookie(name: str, *, secure: bool) -> Cookie:
    """A cookie that makes the browser forget `name`."""
    return build_cookie(name, "", secure=secure, max_age_s=0)


def read_cookie(cookies: Iterable[str] | None, name: str) -> str | None:
    """The value of cookie `name` from a v2 payload's `cookies` list (or raw Cookie headers).

    Returns None when absent; raises DuplicateCookieError when it is sent more than once.
    """
    found: str | None = None
    for entry in cookies or ():
        for pair in entry.split(";"):
            key, sep, value = pair.strip().partition("=")
            if not sep or key != name:
                continue
            if found is not None:
                raise DuplicateCookieError("the cookie was sent more than once")
            found = value.strip()
    return found
