"""Signed, expiring session cookies, each bound to one installation.

Standard library only (hmac, hashlib, secrets): it is on every page's cold path. The cookie is
`v1.<key id>.<payload>.<mac>`, base64url, MAC = HMAC-SHA256 under a key derived from the session
signing secret. Several secrets may be given: the first signs, all verify, chosen by key id, so
the secret can be rotated without logging everybody out (`signing_secrets` reads them from the
`SessionSigningKey` value). The cookie value never reaches a log line or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pleo_connector.errors import ConfigurationError, ConnectorError
from pleo_connector.web.cookies import (
    MAX_COOKIE_VALUE,
    DuplicateCookieError,
    build_cookie,
    cookie_name,
    expired_cookie,
    is_secure_base_url,
    read_cookie,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from aws_lambda_powertools.shared.cookies import Cookie

SESSION_COOKIE = "pleo_session"
DEFAULT_MAX_AGE_S = 2 * 60 * 60
MIN_SECRET_BYTES = 16
CLOCK_SKEW_S = 60
_VERSION = "v1"
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class SessionError(ConnectorError):
    """The request has no usable session (a 401 with a way back, unless a subclass says other);
    the response clears the broken cookie."""

    http_status: ClassVar[int] = 401
    user_message = "This browser has no valid session for the settings."
    clears_session: ClassVar[bool] = True


class SessionMissingError(SessionError):
    """No session cookie, or a session that belongs to no installation yet."""


class SessionInvalidError(SessionError):
    """A cookie that is malformed, tampered with, signed by an unknown key, or sent twice."""


class SessionExpiredError(SessionError):
    """A genuine session that has run out."""

    user_message = "Your session has expired."


class SessionScopeError(SessionError):
    """A valid session for another installation (a 403, not a 401; the session itself is fine)."""

    http_status: ClassVar[int] = 403
    user_message = "This session belongs to another installation."
    clears_session: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Session:
    """What a verified session cookie says. `installation_id` is None before an install."""

    session_id: str
    installation_id: str | None
    csrf_secret: str
    issued_at: int
    expires_at: int

    def require_installation(self, installation_id: str | None = None) -> str:
        """The installation this session may act on; `installation_id` must be that one."""
        if self.installation_id is None:
            raise SessionMissingError("this session belongs to no installation")
        if installation_id is not None and not hmac.compare_digest(
            self.installation_id.encode(), installation_id.encode()
        ):
            raise SessionScopeError("this session belongs to another installation")
        return self.installation_id


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def signing_secrets(value: str) -> tuple[str, ...]:
    """The signing secrets a `SessionSigningKey` value holds, the one that signs first.

    Either one secret, used as it is (the template and the local world generate one that never
    starts with `{`), or, while rotating, a JSON object `{"current": "<new>", "previous":
    ["<old>", ...]}`: `current` signs, every one verifies. Anything else, or a secret shorter than
    `MIN_SECRET_BYTES`, is a ConfigurationError whose message holds no part of the value.
    """
    if not value.lstrip().startswith("{"):
        found: list[object] = [value]
    else:
        try:
            data = json.loads(value)
        except ValueError:
            raise ConfigurationError("the session signing secret is not valid JSON") from None
        if not isinstance(data, dict) or not set(data) <= {"current", "previous"}:
            raise ConfigurationError(
                'the session signing secret must be {"current": ..., "previous": [...]}'
            )
        previous = data.get("previous", [])
        if not isinstance(previous, list):
            raise ConfigurationError('the session signing secret\'s "previous" must be a list')
        found = [data.get("current"), *previous]
    keys: list[str] = []
    for item in found:
        try:
            size = len(item.encode("utf-8")) if isinstance(item, str) else 0
        except UnicodeEncodeError:  # a lone surrogate from a JSON escape
            raise ConfigurationError("a session signing secret is not valid UTF-8 text") from None
        if not isinstance(item, str) or size < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"each session signing secret must be a string of at least {MIN_SECRET_BYTES} bytes"
            )
        keys.append(item)
    return tuple(keys)


def derive_key(secret: str | bytes, purpose: str) -> bytes:
    """A key for one purpose only, so a MAC made for one use never verifies for another."""
    raw = _as_bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"the signing secret needs at least {MIN_SECRET_BYTES} bytes")
    return hmac.new(raw, f"pleo-connector/{purpose}".encode(), hashlib.sha256).digest()


class SessionCodec:
    """Issues and verifies session cookies.

    `secret`: the signing secret, or several (newest first) while rotating.
    `public_base_url`: decides Secure and the `__Host-` prefix (plain http: neither).
    """

    def __init__(
        self,
        secret: str | bytes | Sequence[str | bytes],
        *,
        public_base_url: str | None = None,
        max_age_s: int = DEFAULT_MAX_AGE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets_list = [secret] if isinstance(secret, str | bytes) else list(secret)
        if not secrets_list:
            raise ValueError("at least one signing secret is needed")
        if max_age_s <= 0:
            raise ValueError("max_age_s must be positive")
        keys = [derive_key(item, "session") for item in secrets_list]
        self._signing_kid = self._key_id(keys[0])
        self._keys = {self._key_id(key): key for key in reversed(keys)}
        self._signing_key = keys[0]
        self.secure = public_base_url is None or is_secure_base_url(public_base_url)
        self.cookie_name = cookie_name(SESSION_COOKIE, secure=self.secure)
        self.max_age_s = max_age_s
        self._clock = clock

    def __repr__(self) -> str:
        return f"SessionCodec(cookie_name={self.cookie_name!r}, max_age_s={self.max_age_s})"

    @staticmethod
    def _key_id(key: bytes) -> str:
        return hashlib.sha256(b"kid" + key).hexdigest()[:8]

    def issue(self, installation_id: str | None) -> Session:
        """A new session (new id, new CSRF secret); `installation_id` None: before an install."""
        now = int(self._clock())
        return Session(
            session_id=secrets.token_urlsafe(16),
            installation_id=installation_id,
            csrf_secret=secrets.token_urlsafe(32),
            issued_at=now,
            expires_at=now + self.max_age_s,
        )

    def encode(self, session: Session) -> str:
        payload = json.dumps(
            {
                "sid": session.session_id,
                "iid": session.installation_id,
                "csrf": session.csrf_secret,
                "iat": session.issued_at,
                "exp": session.expires_at,
            },
            separators=(",", ":"),
        )
        signed = f"{_VERSION}.{self._signing_kid}.{_b64encode(payload.encode('utf-8'))}"
        mac = hmac.new(self._signing_key, signed.encode("ascii"), hashlib.sha256).digest()
        return f"{signed}.{_b64encode(mac)}"

    def decode(self, value: str) -> Session:
        """Verify a cookie value. Raises SessionInvalidError or SessionExpiredError."""
        if not value or len(value) > MAX_COOKIE_VALUE:
            raise SessionInvalidError("the session cookie is malformed")
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != _VERSION:
            raise SessionInvalidError("the session cookie is malformed")
        key = self._keys.get(parts[1])
        if key is None:
            raise SessionInvalidError("the session cookie is signed by an unknown key")
        signed = ".".join(parts[:3])
        try:
            expected = hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()
            mac = parts[3].encode("ascii")
        except UnicodeEncodeError:
            raise SessionInvalidError("the session cookie is malformed") from None
        # Compared as text, so only the one canonical encoding of the MAC is accepted.
        if not hmac.compare_digest(mac, _b64encode(expected).encode("ascii")):
            raise SessionInvalidError("the session cookie signature does not match")
        session = self._parse_payload(parts[2])
        now = int(self._clock())
        if session.issued_at > now + CLOCK_SKEW_S:
            raise SessionInvalidError("the session cookie is issued in the future")
        if now >= session.expires_at or now >= session.issued_at + self.max_age_s:
            raise SessionExpiredError("the session has expired")
        return session

    @staticmethod
    def _parse_payload(text: str) -> Session:
        try:
            data = json.loads(_b64decode(text))
        except (ValueError, binascii.Error):
            raise SessionInvalidError("the session cookie is malformed") from None
        if not isinstance(data, dict):
            raise SessionInvalidError("the session cookie is malformed")
        sid, iid, csrf = data.get("sid"), data.get("iid"), data.get("csrf")
        iat, exp = data.get("iat"), data.get("exp")
        if (
            not isinstance(sid, str)
            or not (iid is None or isinstance(iid, str))
            or not isinstance(csrf, str)
            or not csrf
            or type(iat) is not int
            or type(exp) is not int
        ):
            raise SessionInvalidError("the session cookie is malformed")
        return Session(sid, iid, csrf, iat, exp)

    def read(self, cookies: Iterable[str] | None) -> Session:
        """The session from a request's cookies (v2 payload `cookies`).

        Raises SessionMissingError (none sent), SessionInvalidError, SessionExpiredError.
        """
        try:
            value = read_cookie(cookies, self.cookie_name)
        except DuplicateCookieError:
            raise SessionInvalidError("the session cookie was sent more than once") from None
        if value is None or value == "":
            raise SessionMissingError("no session cookie")
        return self.decode(value)

    def cookie(self, session: Session) -> Cookie:
        """The Set-Cookie for `session`, living as long as the session does."""
        max_age = max(session.expires_at - int(self._clock()), 1)
        return build_cookie(
            self.cookie_name, self.encode(session), secure=self.secure, max_age_s=max_age
        )

    def clear_cookie(self) -> Cookie:
        """The Set-Cookie that ends the session in the browser (after disconnect)."""
        return expired_cookie(self.cookie_name, secure=self.secure)
