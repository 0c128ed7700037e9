"""The authorization server: /oauth/authorize (consent page), /oauth/token, /oauth/token/introspect.

Pleo publishes no OpenAPI for these; they follow docs/pleo-api-notes.md §1, RFC 6749 (code grant,
refresh, error bodies), RFC 7636 (PKCE, S256 only), RFC 7662 (introspection) and, when switched
on, RFC 9207 (`iss` on the callback).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import secrets
import uuid
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

from local.pleo_emulator.http import Request, Response, html_response, json_response
from local.pleo_emulator.state import AuthCode, Client, PendingAuthorization, World, digest

CSRF_COOKIE = "pleo_emulator_csrf"
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class OAuthServer:
    def __init__(self, world: World, issuer: str) -> None:
        self.world = world
        self.issuer = issuer

    # -- authorize ----------

    def authorize(self, request: Request) -> Response:
        world = self.world
        client_id = request.arg("client_id") or ""
        redirect_uri = request.arg("redirect_uri") or ""
        client = world.clients.get(client_id)
        if client is None:
            return error_page(400, "Unknown client", "The client_id is not registered.")
        if redirect_uri not in client.redirect_uris:
            return error_page(
                400,
                "Unregistered redirect URI",
                "The redirect_uri does not exactly match a URI registered for this client.",
            )
        state = request.arg("state")
        problem = self._authorize_problem(request, client)
        if problem is not None:
            error, description = problem
            return self._redirect(redirect_uri, state, error=error, error_description=description)
        scope = request.arg("scope") or " ".join(client.scopes)
        challenge = request.arg("code_challenge") or ""
        if world.settings.auto_approve:
            company_id = world.settings.auto_approve_company_id or next(iter(world.companies), "")
            if company_id not in world.companies:
                return error_page(400, "No company", "Auto-approve has no company to install for.")
            code = self._issue_code(client, redirect_uri, challenge, company_id, scope)
            return self._redirect(redirect_uri, state, code=code)
        pending = PendingAuthorization(
            id=secrets.token_urlsafe(16),
            csrf=secrets.token_urlsafe(32),
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            state=state,
            scope=scope,
            code_challenge=challenge,
            expires_at=world.now() + world.settings.consent_ttl_s,
        )
        world.pending[pending.id] = pending
        cookie = f"{CSRF_COOKIE}={pending.csrf}; Path=/oauth; HttpOnly; SameSite=Strict"
        return html_response(200, consent_page(world, client, pending), [("Set-Cookie", cookie)])

    def _authorize_problem(self, request: Request, client: Client) -> tuple[str, str] | None:
        if request.arg("response_type") != "code":
            return "unsupported_response_type", "only response_type=code is supported"
        challenge = request.arg("code_challenge")
        if not challenge:
            return "invalid_request", "code_challenge is required (PKCE)"
        if request.arg("code_challenge_method") != "S256":
            return "invalid_request", "code_challenge_method must be S256 (plain is not accepted)"
        if not _CHALLENGE.match(challenge):
            return "invalid_request", "code_challenge must be base64url(SHA-256(code_verifier))"
        requested = (request.arg("scope") or "").split()
        unknown = [scope for scope in requested if scope not in client.scopes]
        if unknown:
            return "invalid_scope", f"scope not allowed for this client: {' '.join(unknown)}"
        return None

    def decide(self, request: Request) -> Response:
        """The consent form's POST: approve (code) or deny (access_denied), CSRF-checked."""
        world = self.world
        form = request.form()
        pending = world.pending.pop(form.get("request_id", ""), None)
        if pending is None or pending.expires_at <= world.now():
            return error_page(400, "Expired request", "This consent request is unknown or expired.")
        cookie = request.cookies().get(CSRF_COOKIE, "")
        submitted = form.get("csrf_token", "")
        if not (
            hmac.compare_digest(submitted, pending.csrf)
            and hmac.compare_digest(cookie, pending.csrf)
        ):
            return error_page(403, "Forbidden", "The form's CSRF token is missing or wrong.")
        origin = request.header("origin")
        # The page is `Referrer-Policy: no-referrer`, so browsers post its form with
        # `Origin: null`; Sec-Fetch-Site then tells whether it came from this page's origin.
        same_origin_null = origin == "null" and request.header("sec-fetch-site") == "same-origin"
        if origin and origin != self.issuer and not same_origin_null:
            return error_page(403, "Forbidden", "The form was posted from another origin.")
        client = world.clients.get(pending.client_id)
        if client is None:
            return error_page(400, "Unknown client", "The client was removed.")
        clear = f"{CSRF_COOKIE}=; Path=/oauth; Max-Age=0; HttpOnly; SameSite=Strict"
        if form.get("decision") != "approve":
            response = self._redirect(
                pending.redirect_uri,
                pending.state,
                error="access_denied",
                error_description="the user denied the request",
            )
            response.headers.append(("Set-Cookie", clear))
            return response
        company_id = form.get("company_id", "")
        if company_id not in world.companies:
            return error_page(400, "Unknown company", "Choose one of the listed companies.")
        code = self._issue_code(
            client, pending.redirect_uri, pending.code_challenge, company_id, pending.scope
        )
        response = self._redirect(pending.redirect_uri, pending.state, code=code)
        response.headers.append(("Set-Cookie", clear))
        return response

    def _issue_code(
        self, client: Client, redirect_uri: str, challenge: str, company_id: str, scope: str
    ) -> str:
        code = secrets.token_urlsafe(32)
        self.world.codes[digest(code)] = AuthCode(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            code_challenge=challenge,
            company_id=company_id,
            scope=scope,
            expires_at=self.world.now() + self.world.settings.code_ttl_s,
        )
        self.world.stats["codes_issued"] += 1
        return code

    def _redirect(self, redirect_uri: str, state: str | None, **params: str) -> Response:
        if state is not None:
            params["state"] = state
        if self.world.settings.issuer_param:
            params["iss"] = self.issuer
        separator = "&" if urlsplit(redirect_uri).query else "?"
        location = f"{redirect_uri}{separator}{urlencode(params)}"
        return Response(303, b"", [("Location", location), ("Cache-Control", "no-store")])

    # -- token ----------

    def token(self, request: Request) -> Response:
        world = self.world
        authenticated = self._client_form(request)
        if isinstance(authenticated, Response):
            return authenticated
        client, form = authenticated
        grant_type = form.get("grant_type")
        if not grant_type:
            return oauth_error(400, "invalid_request", "grant_type is required")
        if grant_type == "authorization_code":
            return self._exchange_code(client, form)
        if grant_type == "refresh_token":
            return self._refresh(client, form)
        world.stats["unsupported_grant_type"] += 1
        return oauth_error(400, "unsupported_grant_type", "use authorization_code or refresh_token")

    def _client_form(self, request: Request) -> tuple[Client, dict[str, str]] | Response:
        """The form of a request to the token or introspection endpoint, from an authenticated
        client; or the error response (both endpoints take form bodies, RFC 6749 and 7662)."""
        if not request.content_type.lower().startswith("application/x-www-form-urlencoded"):
            return oauth_error(400, "invalid_request", "use application/x-www-form-urlencoded")
        try:
            form = _form(request)
        except ValueError as exc:
            return oauth_error(400, "invalid_request", str(exc))
        client, failure = self._authenticate_client(request, form)
        if client is None:
            return failure  # type: ignore[return-value]
        return client, form

    def _authenticate_client(
        self, request: Request, form: dict[str, str]
    ) -> tuple[Client | None, Response | None]:
        """client_secret_basic only (docs/pleo-api-notes.md §1.2); the body may repeat client_id."""
        if "client_secret" in form:
            return None, oauth_error(
                400, "invalid_request", "send the client secret in the Authorization header only"
            )
        credentials = _basic_credentials(request)
        if credentials is None:
            return None, oauth_error(
                401,
                "invalid_client",
                "client authentication is required (HTTP Basic)",
                [("WWW-Authenticate", 'Basic realm="pleo-emulator"')],
            )
        client_id, secret = credentials
        client = self.world.clients.get(client_id)
        if client is None or not hmac.compare_digest(secret, client.client_secret):
            return None, oauth_error(
                401,
                "invalid_client",
                "client authentication failed",
                [("WWW-Authenticate", 'Basic realm="pleo-emulator"')],
            )
        if form.get("client_id") not in (None, client_id):
            return None, oauth_error(400, "invalid_request", "client_id does not match the header")
        return client, None

    def _exchange_code(self, client: Client, form: dict[str, str]) -> Response:
        world = self.world
        code = form.get("code")
        redirect_uri = form.get("redirect_uri")
        verifier = form.get("code_verifier")
        for name, value in (("code", code), ("redirect_uri", redirect_uri)):
            if not value:
                return oauth_error(400, "invalid_request", f"{name} is required")
        if not verifier:
            return oauth_error(400, "invalid_request", "code_verifier is required (PKCE)")
        record = world.codes.get(digest(code or ""))
        if record is None:
            return invalid_grant(world, "the authorization code is unknown")
        if record.used:
            # RFC 6749 §4.1.2: a code used twice revokes what it issued.
            if record.grant_id and record.grant_id in world.grants:
                world.revoke_grant(world.grants[record.grant_id], "authorization code reused")
            world.stats["code_reuse_detected"] += 1
            return invalid_grant(world, "the authorization code was already used")
        record.used = True  # single use, whatever the outcome below
        if record.expires_at <= world.now():
            return invalid_grant(world, "the authorization code expired")
        if record.client_id != client.client_id:
            return invalid_grant(world, "the authorization code was issued to another client")
        if record.redirect_uri != redirect_uri:
            return invalid_grant(world, "redirect_uri does not match the authorization request")
        if not _VERIFIER.match(verifier) or not hmac.compare_digest(
            s256(verifier), record.code_challenge
        ):
            world.stats["pkce_failures"] += 1
            return invalid_grant(world, "code_verifier does not match the code_challenge")
        grant = world.new_grant(client.client_id, record.company_id, record.scope)
        record.grant_id = grant.id
        status = "AUTHORIZED" if client.requires_configuration else "ACTIVATED"
        world.install(client, record.company_id, status)
        world.stats["tokens_issued"] += 1
        return json_response(200, world.issue_tokens(grant), headers=NO_STORE)

    def _refresh(self, client: Client, form: dict[str, str]) -> Response:
        world = self.world
        token = form.get("refresh_token")
        if not token:
            return oauth_error(400, "invalid_request", "refresh_token is required")
        record = world.refresh_tokens.get(digest(token))
        if record is None:
            return invalid_grant(world, "the refresh token is unknown")
        grant = world.grants.get(record.grant_id)
        if grant is None or grant.client_id != client.client_id:
            return invalid_grant(world, "the refresh token was issued to another client")
        if record.status == "rotated":
            # Pleo: reusing an old refresh token invalidates every token of the authorization.
            world.revoke_grant(grant, "refresh token reuse detected")
            world.stats["refresh_token_reuse_detected"] += 1
            return invalid_grant(world, "the refresh token was already used")
        if grant.revoked or record.status == "revoked":
            return invalid_grant(world, "the authorization was revoked")
        if record.expires_at is not None and record.expires_at <= world.now():
            world.revoke_grant(grant, "expired refresh token used")
            return invalid_grant(world, "the refresh token expired")
        requested = form.get("scope")
        if requested and not set(requested.split()) <= set(grant.scope.split()):
            return oauth_error(400, "invalid_scope", "the scope exceeds the original grant")
        rotate = world.settings.rotate_refresh_tokens
        if rotate:
            record.status = "rotated"
        world.stats["refreshes"] += 1
        return json_response(200, world.issue_tokens(grant, refresh_token=rotate), headers=NO_STORE)

    # -- introspection (RFC 7662) -----------------------------------------------------------

    def introspect(self, request: Request) -> Response:
        world = self.world
        authenticated = self._client_form(request)
        if isinstance(authenticated, Response):
            return authenticated
        client, form = authenticated
        token = form.get("token")
        if not token:
            return oauth_error(400, "invalid_request", "token is required")
        hint = form.get("token_type_hint")
        now = world.now()
        hashed = digest(token)
        found: dict[str, Any] | None = None
        access = world.access_tokens.get(hashed) if hint != "refresh_token" else None
        if access is None and hint != "access_token":
            refresh = world.refresh_tokens.get(hashed)
            if refresh is not None and refresh.status == "active":
                found = {
                    "grant_id": refresh.grant_id,
                    "jti": refresh.jti,
                    "iat": refresh.issued_at,
                    "exp": refresh.expires_at,
                    "token_type": "refresh_token",
                }
        if access is None and found is None and hint == "refresh_token":
            access = world.access_tokens.get(hashed)
        if access is not None and not access.revoked and access.expires_at > now:
            found = {
                "grant_id": access.grant_id,
                "jti": access.jti,
                "iat": access.issued_at,
                "exp": access.expires_at,
                "token_type": "access_token",
            }
        grant = world.grants.get(found["grant_id"]) if found else None
        if found is None or grant is None or grant.revoked or grant.client_id != client.client_id:
            return json_response(200, {"active": False}, headers=NO_STORE)
        if found["exp"] is not None and found["exp"] <= now:
            return json_response(200, {"active": False}, headers=NO_STORE)
        subject = f"urn:pleo:company:{grant.company_id}"
        body: dict[str, Any] = {
            "active": True,
            "sub": subject,
            "iat": int(found["iat"]),
            "client_id": client.client_id,
            "aud": self.issuer,
            "iss": self.issuer,
            "jti": found["jti"],
            "scope": grant.scope,
            "token_type": found["token_type"],
            "urn:pleo:params:oauth:subject_urn": subject,
        }
        if found["exp"] is not None:
            body["exp"] = int(found["exp"])
        return json_response(200, body, headers=NO_STORE)


def s256(verifier: str) -> str:
    hashed = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(hashed).rstrip(b"=").decode("ascii")


def _form(request: Request) -> dict[str, str]:
    from local.pleo_emulator.http import HTTPError

    try:
        return request.form()
    except HTTPError:
        raise ValueError("the form body is malformed or repeats a parameter") from None


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.header("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        return None
    # RFC 6749 §2.3.1: both parts are form-urlencoded before the Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def oauth_error(
    status: int, error: str, description: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = {"error": error, "error_description": description}
    return json_response(
        status, body, content_type="application/json", headers=NO_STORE + (headers or [])
    )


def invalid_grant(world: World, description: str) -> Response:
    world.stats["invalid_grant"] += 1
    return oauth_error(400, "invalid_grant", description)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;background:#f4f2ee;margin:0;padding:2rem;color:#222}}
main{{max-width:32rem;margin:auto;background:#fff;border-radius:8px;padding:2rem;
box-shadow:0 1px 4px #0002}}
h1{{font-size:1.4rem}} .scopes li{{font-family:monospace}} .note{{color:#666;font-size:.85rem}}
button{{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem;border-radius:6px;
border:1px solid #888}}
button.approve{{background:#222;color:#fff}} select{{font-size:1rem;padding:.3rem;width:100%}}
</style></head><body><main>{body}</main></body></html>"""


def consent_page(world: World, client: Client, pending: PendingAuthorization) -> str:
    options = "".join(
        f'<option value="{html.escape(cid)}">{html.escape(str(company["name"]))}</option>'
        for cid, company in world.companies.items()
    )
    scopes = "".join(f"<li>{html.escape(scope)}</li>" for scope in pending.scope.split())
    body = f"""
<h1>Connect {html.escape(client.name)} to Pleo</h1>
<p><strong>{html.escape(client.name)}</strong> ({html.escape(client.client_id)})
asks for access to:</p>
<ul class="scopes">{scopes or "<li>(no scopes)</li>"}</ul>
<form method="post" action="/oauth/authorize">
<input type="hidden" name="request_id" value="{html.escape(pending.id)}">
<input type="hidden" name="csrf_token" value="{html.escape(pending.csrf)}">
<p><label for="company_id">Company</label><br>
<select id="company_id" name="company_id">{options}</select></p>
<p><button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button></p>
</form>
<p class="note">Pleo emulator: a local stand-in for Pleo's consent screen.</p>"""
    return _PAGE.format(title="Pleo: approve access", body=body)


def error_page(status: int, title: str, message: str) -> Response:
    body = f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
    return html_response(status, _PAGE.format(title=html.escape(title), body=body))


def new_request_id() -> str:
    return str(uuid.uuid4())
