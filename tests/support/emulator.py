"""`EmulatorControl`: a small synchronous client of the Pleo emulator's control API.

Plus helpers that run the OAuth dance against the emulator without a browser (auto-approve, or
the consent form posted with plain httpx), for tests that need real tokens.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from local.pleo_emulator.state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_COMPANY_ID,
    DEFAULT_REDIRECT_URI,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_COMPANY_ID",
    "DEFAULT_REDIRECT_URI",
    "EmulatorControl",
    "Pkce",
]


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def generate(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


class EmulatorControl:
    """Drive the emulator's /_emulator/ API (each method is one documented endpoint)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        response = self.http.request(method, f"/_emulator{path}", json=json, params=params or None)
        if response.status_code >= 400:
            raise RuntimeError(
                f"emulator control {method} {path} -> {response.status_code}: {response.text}"
            )
        return response.json()

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
        with httpx.Client(timeout=10) as browser:
            page = browser.get(
                self.authorize_url(
                    client_id=client_id,
                    redirect_uri=redirect_uri,
                    scope=scope,
                    code_challenge=pkce.challenge,
                )
            )
            if page.status_code != 200:
                raise RuntimeError(f"consent page answered {page.status_code}")
            form = consent_form_fields(page.text)
            answer = browser.post(
                f"{self.base_url}/oauth/authorize",
                data={**form, "company_id": company_id, "decision": "approve"},
            )
        query = parse_qs(urlsplit(answer.headers["location"]).query)
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
        response = httpx.post(
            f"{self.base_url}/oauth/token",
            auth=(client_id, client_secret),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": pkce.verifier,
            },
        )
        response.raise_for_status()
        return dict(response.json())


def consent_form_fields(page: str) -> dict[str, str]:
    """The hidden fields of the consent form (request_id, csrf_token)."""
    fields = {}
    for name in ("request_id", "csrf_token"):
        found = re.search(rf'name="{name}" value="([^"]+)"', page)
        if found is None:
            raise RuntimeError(f"the consent page has no {name} field")
        fields[name] = found.group(1)
    return fields


@dataclass
class RunningEmulator:
    """What the `pleo_emulator` fixture yields: the process, its URL and its control client."""

    url: str
    control: EmulatorControl
    service: Any = None
