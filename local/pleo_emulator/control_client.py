"""`EmulatorControl`: the one Python client of the Pleo emulator's control API (`/_emulator/`).

Standard library only (urllib and json): the tests and benchmarks run in the app's virtualenv, the
local world and its demo in SAM CLI's, which has no httpx, and all of them use this client. It also
goes through the OAuth consent as a browser would (a form post, the CSRF cookie kept), for callers
that need real tokens without a browser. Every call is one request on loopback: no pool, no retry.
"""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import json
import re
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

from local.pleo_emulator.state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_COMPANY_ID,
    DEFAULT_REDIRECT_URI,
)

if TYPE_CHECKING:
    from email.message import Message

__all__ = ["EmulatorControl", "EmulatorError", "Pkce", "consent_form_fields"]

# An error body is quoted at most this long (an HTML error page would otherwise fill the screen).
_QUOTED_BODY_CHARS = 300


class EmulatorError(RuntimeError):
    """The emulator answered with an error: `status` and the emulator's own `message` (its JSON
    body's `message`, or `error_description` on the OAuth endpoints). A RuntimeError, as callers
    caught before there was this class."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"emulator {method} {path} -> {status}: {message}")
        self.method = method
        self.path = path
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def generate(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Message
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the caller: the consent's answer is the redirect itself."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _exchange(
    opener: urllib.request.OpenerDirector, request: urllib.request.Request, timeout: float
) -> _Answer:
    """Send `request`; every status is an answer (urllib raises for 3xx to 5xx otherwise)."""
    try:
        with opener.open(request, timeout=timeout) as response:
            return _Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        try:
            return _Answer(error.code, error.headers, error.read())
        finally:
            error.close()


def _error_message(body: bytes) -> str:
    """What the emulator said in an error body: `message` (control API and External API) or
    `error_description` / `error` (OAuth), else the start of the body as text."""
    text = body.decode("utf-8", "replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for key in ("message", "error_description", "error"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
    quoted = " ".join(text.split())[:_QUOTED_BODY_CHARS]
    return quoted or "(empty body)"


def consent_form_fields(page: str) -> dict[str, str]:
    """The hidden fields of the consent form (request_id, csrf_token)."""
    fields = {}
    for name in ("request_id", "csrf_token"):
        found = re.search(rf'name="{name}" value="([^"]+)"', page)
        if found is None:
            raise RuntimeError(f"the consent page has no {name} field")
        fields[name] = found.group(1)
    return fields


def is_write(operation: str) -> bool:
    """Whether a counted operation ("POST /v1/vendors") may change Pleo's data: a GET or a
    search never does."""
    return not (operation.startswith("GET ") or operation.endswith(":search"))


class EmulatorControl:
    """Drive the emulator's /_emulator/ API (each method is one documented endpoint, see
    README.md). An error status raises EmulatorError with the status and the emulator's message."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        *,
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        """`opener` replaces urllib's default transport (the unit tests answer from memory)."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._opener = opener or urllib.request.build_opener(_NoRedirect)

    def close(self) -> None:
        """Nothing stays open between calls; kept so callers can close it like any client."""

    def __enter__(self) -> EmulatorControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json_body: Any = None, **params: str) -> Any:
        url = f"{self.base_url}/_emulator{path}"
        if params:
            url += "?" + urlencode(params)
        headers = {"Accept": "application/json"}
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - the emulator, on loopback
            url, data=data, headers=headers, method=method
        )
        answer = _exchange(self._opener, request, self.timeout)
        if answer.status >= 400:
            raise EmulatorError(
                method, f"/_emulator{path}", answer.status, _error_message(answer.body)
            )
        return json.loads(answer.body) if answer.body else None

    # -- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        self._call("POST", "/reset")

    def settings(self) -> dict[str, Any]:
        return dict(self._call("GET", "/settings"))

    def update_settings(self, **values: Any) -> dict[str, Any]:
        return dict(self._call("PUT", "/settings", values))

    def set_token_lifetime(
        self,
        access_s: int | None = None,
        code_s: int | None = None,
        refresh_s: int | None = None,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if access_s is not None:
            values["access_token_ttl_s"] = access_s
        if code_s is not None:
            values["code_ttl_s"] = code_s
        if refresh_s is not None:
            values["refresh_token_ttl_s"] = refresh_s
        return self.update_settings(**values)

    def set_rate_limit(self, per_minute: int | None) -> dict[str, Any]:
        return self.update_settings(rate_limit_per_minute=per_minute)

    def set_auto_approve(self, enabled: bool = True, company_id: str | None = None) -> None:
        self.update_settings(auto_approve=enabled, auto_approve_company_id=company_id)

    def set_issuer_param(self, enabled: bool = True) -> None:
        self.update_settings(issuer_param=enabled)

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "/clock", {"seconds": seconds})

    # -- companies, data, clients, keys ------------------------------------------------------------

    def seed_company(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        if name is not None:
            fields["name"] = name
        return dict(self._call("POST", "/companies", fields))

    def companies(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/companies"))

    def seed(self, company_id: str = DEFAULT_COMPANY_ID, **data: Any) -> dict[str, list[str]]:
        """Seed tag_groups (with tags), tax_codes, vendors and accounts into one company."""
        return dict(self._call("POST", "/seed", {"company_id": company_id, **data}))

    def data(self, company_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        params = {"company_id": company_id} if company_id else {}
        return dict(self._call("GET", "/data", **params))

    def register_client(self, client_id: str, **fields: Any) -> dict[str, Any]:
        return dict(self._call("POST", "/clients", {"client_id": client_id, **fields}))

    def clients(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/clients"))

    def issue_api_key(
        self, company_id: str = DEFAULT_COMPANY_ID, client_id: str = DEFAULT_CLIENT_ID
    ) -> str:
        result = self._call("POST", "/api-keys", {"company_id": company_id, "client_id": client_id})
        return str(result["api_key"])

    def revoke_api_key(self, api_key: str) -> None:
        self._call("POST", "/api-keys/revoke", {"api_key": api_key})

    def revoke_grants(self, client_id: str | None = None, company_id: str | None = None) -> int:
        body = {k: v for k, v in (("client_id", client_id), ("company_id", company_id)) if v}
        return int(self._call("POST", "/grants/revoke", body)["revoked"])

    def expire_access_tokens(self) -> None:
        self._call("POST", "/tokens/expire", {})

    def grants(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/grants"))

    def installations(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/installations"))

    # -- faults and the log ------------------------------------------------------------------------

    def inject_fault(
        self,
        kind: str = "error",
        *,
        status: int | None = None,
        retry_after: int | None = None,
        latency_ms: int | None = None,
        hang_ms: int | None = None,
        rate: float | None = None,
        count: int | None = None,
        operation: str | None = None,
        path_prefix: str | None = None,
        body: str | None = None,
        content_type: str | None = None,
        commit: bool | None = None,
    ) -> dict[str, Any]:
        """kind: "error" (status, retry_after), "timeout" (hang_ms, then the connection drops)
        or "latency" (latency_ms) or "response" (status, body, content_type: a malformed
        answer); by `rate` (probability) and/or `count`; optionally only for
        one `operation` ("GET /v1/installations/me") or a `path_prefix`. With `commit`, the
        request is handled first and only its answer fails (Pleo acted, the client never
        hears it)."""
        rule = {
            key: value
            for key, value in {
                "kind": kind,
                "status": status,
                "retry_after": retry_after,
                "latency_ms": latency_ms,
                "hang_ms": hang_ms,
                "rate": rate,
                "count": count,
                "operation": operation,
                "path_prefix": path_prefix,
                "body": body,
                "content_type": content_type,
                "commit": commit,
            }.items()
            if value is not None
        }
        return dict(self._call("POST", "/faults", rule))

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules, each with how often it was `applied`."""
        return list(self._call("GET", "/faults"))

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def request_log(self, operation: str | None = None) -> list[dict[str, Any]]:
        params = {"operation": operation} if operation else {}
        return list(self._call("GET", "/requests", **params))

    def clear_request_log(self) -> None:
        self._call("DELETE", "/requests")

    def counters(self) -> dict[str, int]:
        """Requests per operation, e.g. {"GET /v1/installations/me": 3}."""
        return dict(self._call("GET", "/counters")["operations"])

    def writes(self) -> dict[str, int]:
        """The requests that could change Pleo's data, per operation (reads and searches left
        out)."""
        return {operation: n for operation, n in self.counters().items() if is_write(operation)}

    def events(self) -> dict[str, int]:
        """Event counts, e.g. refresh_token_reuse_detected, rate_limited, faults_applied."""
        return dict(self._call("GET", "/counters")["events"])

    # -- OAuth without a browser -------------------------------------------------------------------

    def authorize_url(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        scope: str | None = None,
        state: str = "state-1",
        code_challenge: str,
        code_challenge_method: str = "S256",
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": code_challenge_method,
        }
        if scope is not None:
            params["scope"] = scope
        return f"{self.base_url}/oauth/authorize?{urlencode(params)}"

    def authorization_code(
        self,
        pkce: Pkce,
        *,
        company_id: str = DEFAULT_COMPANY_ID,
        client_id: str = DEFAULT_CLIENT_ID,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        scope: str | None = None,
    ) -> str:
        """Approve on the consent page (a form post, as a browser would) and return the code."""
        # A browser of its own: the page sets the CSRF cookie the form post must carry back.
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect
        )
        url = self.authorize_url(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=pkce.challenge,
        )
        page = _exchange(browser, urllib.request.Request(url), self.timeout)  # noqa: S310
        if page.status != 200:
            raise EmulatorError(
                "GET",
                "/oauth/authorize",
                page.status,
                f"no consent page: {_error_message(page.body)}",
            )
        form = {**consent_form_fields(page.text()), "company_id": company_id, "decision": "approve"}
        request = urllib.request.Request(  # noqa: S310 - the emulator, on loopback
            f"{self.base_url}/oauth/authorize",
            data=urlencode(form).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        answer = _exchange(browser, request, self.timeout)
        location = answer.headers.get("Location")
        if answer.status not in (302, 303) or not location:
            raise EmulatorError(
                "POST", "/oauth/authorize", answer.status, _error_message(answer.body)
            )
        query = parse_qs(urlsplit(location).query)
        if "code" not in query:
            problem = query.get("error", ["no code and no error"])[0]
            raise EmulatorError("POST", "/oauth/authorize", answer.status, problem)
        return query["code"][0]

    def obtain_tokens(
        self,
        *,
        company_id: str = DEFAULT_COMPANY_ID,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
    ) -> dict[str, Any]:
        """A complete code grant: consent, then the token exchange. Returns the token response."""
        pkce = Pkce.generate()
        code = self.authorization_code(
            pkce, company_id=company_id, client_id=client_id, redirect_uri=redirect_uri
        )
        # RFC 6749 §2.3.1: both parts are form-urlencoded before the Basic encoding.
        pair = f"{quote_plus(client_id, safe='')}:{quote_plus(client_secret, safe='')}"
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pkce.verifier,
        }
        request = urllib.request.Request(  # noqa: S310 - the emulator, on loopback
            f"{self.base_url}/oauth/token",
            data=urlencode(form).encode("ascii"),
            headers={
                "Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii"),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        answer = _exchange(self._opener, request, self.timeout)
        if answer.status != 200:
            raise EmulatorError("POST", "/oauth/token", answer.status, _error_message(answer.body))
        return dict(json.loads(answer.body))
