"""The emulator as one application: routing, credentials, rate limit, faults and the request log."""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections import deque
from typing import Any

from local.pleo_emulator.api import Api
from local.pleo_emulator.contract import Contract, shared_contract
from local.pleo_emulator.control import Control
from local.pleo_emulator.http import (
    Application,
    Drop,
    HTTPError,
    Request,
    Response,
    Router,
    api_error,
    bad_request,
)
from local.pleo_emulator.oauth import OAuthServer
from local.pleo_emulator.state import DEFAULT_REDIRECT_URI, FaultRule, Principal, World

# Path prefix -> scope resource (docs/pleo-api-notes.md §1.7: tags, tax codes, companies unsure).
SCOPE_BY_PREFIX = (
    ("/v0/tag-groups", "tag-groups"),
    ("/v0/tags", "tag-groups"),
    ("/v0/tax-codes", "tax-codes"),
    ("/v1/vendors", "vendors"),
    ("/v1/chart-of-accounts", "accounts"),
    ("/v1/companies", "companies"),
)


class Emulator(Application):
    def __init__(self, base_url: str, redirect_uri: str = DEFAULT_REDIRECT_URI) -> None:
        self.base_url = base_url.rstrip("/")
        self.world = World(redirect_uri)
        self.shutdown = threading.Event()
        self.api = Api(self.world)
        self.oauth = OAuthServer(self.world, self.base_url)
        self.control = Control(self.world)
        self.router = Router()
        for method, template, handler in self.api.routes():
            self.router.add(method, template, handler, "api")
        self.router.add("GET", "/oauth/authorize", self.oauth.authorize, "oauth")
        self.router.add("POST", "/oauth/authorize", self.oauth.decide, "oauth")
        self.router.add("POST", "/oauth/token", self.oauth.token, "oauth")
        self.router.add("POST", "/oauth/token/introspect", self.oauth.introspect, "oauth")
        for method, template, handler in self.control.routes():
            self.router.add(method, template, handler, "control")
        self._contract: Contract | None = None

    def handle(self, request: Request) -> Response | Drop:
        route, params, allowed = self.router.match(request.method, request.path)
        if route is not None and route.kind == "control":
            with self.world.lock:
                try:
                    return route.handler(request, **params)
                except HTTPError as error:
                    return error.response
                except KeyError as error:  # a field the control handler reads without a default
                    return bad_request(f"the control request lacks the field {error}")
                except (TypeError, ValueError, AttributeError) as error:
                    return bad_request(f"the control request has a value of a wrong type: {error}")
        operation = route.operation if route else f"{request.method} {request.path}"
        started = time.monotonic()
        # Counted and logged on arrival, so a request still hanging is already visible.
        entry = self._log_arrival(request, operation)
        latency_s, fault = self._faults(operation, request.path)
        if latency_s:
            self.shutdown.wait(latency_s)
        suffix = ""
        if fault is not None and fault.commit:
            # Pleo acted on it; only the answer is lost (a proxy's 502, a timeout after the write).
            with self.world.lock:
                self._dispatch(request, route, params, allowed)
            suffix = "-after-commit"
        if fault is not None and fault.kind == "timeout":
            self._log_outcome(entry, None, started, "timeout" + suffix)
            self.shutdown.wait(fault.hang_ms / 1000)
            return Drop()
        if fault is not None:
            response = _fault_response(fault)
            self._log_outcome(entry, response.status, started, "error" + suffix)
            return response
        with self.world.lock:
            response = self._dispatch(request, route, params, allowed)
        self._log_outcome(entry, response.status, started, None)
        return response

    def _dispatch(
        self,
        request: Request,
        route: Any,
        params: dict[str, str],
        allowed: list[str],
    ) -> Response:
        if route is None:
            if allowed:
                return api_error(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not allowed here",
                    Allow=", ".join(allowed),
                )
            if not self.router.serves(request.method):
                return api_error(405, "method_not_allowed", f"{request.method} is not served")
            return api_error(404, "not_found", f"no such path: {request.path}")
        try:
            if route.kind == "oauth":
                limited = self._rate_limit(f"client:{self._oauth_client(request)}")
                return limited or route.handler(request, **params)
            principal = self._authenticate(request)
            if principal is None:
                return api_error(
                    401,
                    "unauthorized",
                    "missing, invalid, expired or revoked credentials",
                    **{"WWW-Authenticate": 'Bearer realm="pleo-emulator"'},
                )
            limited = self._rate_limit(principal.rate_key)
            if limited is not None:
                return limited
            missing = self._missing_scope(principal, route.method, route.template)
            if missing is not None:
                return api_error(403, "forbidden", f"the credential lacks the scope {missing}")
            problems = self._request_problems(request)
            if problems:
                return bad_request("; ".join(problems))
            response: Response = route.handler(request, principal, **params)
            return response
        except HTTPError as error:
            return error.response

    # -- credentials ----------

    def _authenticate(self, request: Request) -> Principal | None:
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return self.world.principal_for_bearer(value)
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            key, _, password = decoded.partition(":")
            if password:
                return None  # API keys are the username, with an empty password
            return self.world.principal_for_api_key(key)
        return None

    @staticmethod
    def _oauth_client(request: Request) -> str:
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                return base64.b64decode(value.strip()).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                return "?"
        return request.arg("client_id") or "?"

    # -- rate limit, faults, validation ---------------------------------------------------------

    def _rate_limit(self, key: str) -> Response | None:
        limit = self.world.settings.rate_limit_per_minute
        if not limit:
            return None
        now = time.monotonic()
        window = self.world.rate_windows.setdefault(key, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= limit:
            retry_after = max(1, math.ceil(window[0] + 60 - now))
            self.world.stats["rate_limited"] += 1
            return api_error(
                429,
                "too_many_requests",
                f"rate limit of {limit} requests a minute exceeded",
                **{"Retry-After": str(retry_after)},
            )
        window.append(now)
        return None

    def _faults(self, operation: str, path: str) -> tuple[float, FaultRule | None]:
        latency_ms = 0
        chosen: FaultRule | None = None
        with self.world.lock:
            dice = self.world.random
            for rule in self.world.faults:
                if not rule.matches(operation, path):
                    continue
                if rule.kind != "latency" and chosen is not None:
                    continue
                if rule.rate < 1 and dice.random() >= rule.rate:
                    continue
                rule.applied += 1
                if rule.count is not None:
                    rule.count -= 1
                self.world.stats["faults_applied"] += 1
                if rule.kind == "latency":
                    latency_ms += rule.latency_ms
                else:
                    chosen = rule
        return latency_ms / 1000, chosen

    def _missing_scope(self, principal: Principal, method: str, template: str) -> str | None:
        """With `enforce_scopes`, the scope docs/pleo-api-notes.md §1.7 names, if absent."""
        if not self.world.settings.enforce_scopes:
            return None
        resource = next(
            (scope for prefix, scope in SCOPE_BY_PREFIX if template.startswith(prefix)), None
        )
        if resource is None:
            return None  # installations, introspect: Pleo documents no scope
        access = "read" if method == "GET" or template.endswith(":search") else "write"
        needed = f"{resource}:{access}"
        return None if needed in principal.scope.split() else needed

    def _request_problems(self, request: Request) -> list[str]:
        if not self.world.settings.validate_requests:
            return []
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError:
            return ["the body is not UTF-8 (RFC 8259 §8.1)"]
        return self._load_contract().request_errors(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            body=request.body or None,
            content_type=request.content_type,
        )

    def warm_up(self) -> None:
        """Load and compile Pleo's documents before serving (about a second).

        Raises ContractMissingError when a document is missing: the emulator never serves
        without validating requests against Pleo's documents.
        """
        self._load_contract().warm_up()

    def _load_contract(self) -> Contract:
        if self._contract is None:
            self._contract = shared_contract()
        return self._contract

    def _log_arrival(self, request: Request, operation: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "at": self.world.iso(),
            "method": request.method,
            "path": request.path,
            "operation": operation,
            "auth": _auth_scheme(request),
            "status": None,
            "fault": None,
            "duration_ms": None,
        }
        with self.world.lock:
            self.world.counters[operation] += 1
            self.world.request_log.append(entry)
        return entry

    def _log_outcome(
        self, entry: dict[str, Any], status: int | None, started: float, fault: str | None
    ) -> None:
        with self.world.lock:
            entry["status"] = status
            entry["fault"] = fault
            entry["duration_ms"] = round((time.monotonic() - started) * 1000, 3)


def _auth_scheme(request: Request) -> str | None:
    """Which kind of credential came ("bearer", "basic" or None), never the credential."""
    scheme = (request.header("authorization") or "").partition(" ")[0].lower()
    return scheme if scheme in ("bearer", "basic") else None


def _fault_response(rule: FaultRule) -> Response:
    extra = {}
    if rule.retry_after is not None:
        extra["Retry-After"] = str(rule.retry_after)
    if rule.kind == "response":  # a malformed answer, e.g. an HTML page with 200
        return Response(
            rule.status,
            rule.body.encode("utf-8"),
            [("Content-Type", rule.content_type), *extra.items()],
        )
    if rule.status == 429:
        return api_error(429, "too_many_requests", "injected rate limit", **extra)
    return api_error(rule.status, "injected_fault", f"injected {rule.status}", **extra)
