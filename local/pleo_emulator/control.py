"""The JSON control API under /_emulator/ that tests and the local world use (see README.md)."""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

from local.pleo_emulator.http import Request, Response, bad_request, json_response, not_found
from local.pleo_emulator.state import Client, FaultRule, World, digest, public

if TYPE_CHECKING:
    from collections.abc import Callable

# A clock step beyond a century is a mistake, and an infinite one would break every request.
MAX_CLOCK_STEP_S = 100 * 365 * 24 * 3600.0

FAULT_KINDS = ("error", "timeout", "latency", "response")


def _ok(payload: Any, status: int = 200) -> Response:
    return json_response(status, payload, content_type="application/json")


class Control:
    def __init__(self, world: World) -> None:
        self.world = world

    def health(self, request: Request) -> Response:
        return _ok({"ok": True})

    def index(self, request: Request) -> Response:
        return _ok(
            {
                "readme": "local/pleo_emulator/README.md",
                "endpoints": [f"{method} {path}" for method, path, _ in self.routes()],
            }
        )

    def reset(self, request: Request) -> Response:
        self.world.reset()
        return _ok({"ok": True})

    def get_settings(self, request: Request) -> Response:
        return _ok(vars(self.world.settings))

    def put_settings(self, request: Request) -> Response:
        values = request.json_object()
        problems = self.world.settings.update(values)
        if problems:
            return bad_request("; ".join(problems))
        if "fault_seed" in values:
            self.world.random.seed(values["fault_seed"])
        if "rate_limit_per_minute" in values:
            self.world.rate_windows.clear()
        return _ok(vars(self.world.settings))

    def advance_clock(self, request: Request) -> Response:
        body = request.json_object()
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            return bad_request("seconds must be a number")
        if not math.isfinite(seconds) or abs(seconds) > MAX_CLOCK_STEP_S:
            return bad_request(
                f"seconds must be finite and at most {MAX_CLOCK_STEP_S:.0f} either way"
            )
        self.world.clock_offset += float(seconds)
        return _ok({"clock_offset_s": self.world.clock_offset, "now": self.world.iso()})

    # -- companies and data ----------

    def add_company(self, request: Request) -> Response:
        body = request.json_object()
        if body.get("id") and str(body["id"]) in self.world.companies:
            return bad_request("a company with that id exists")
        return _ok(public(self.world.add_company(body)), 201)

    def list_companies(self, request: Request) -> Response:
        return _ok([public(c) for c in self.world.companies.values()])

    def seed(self, request: Request) -> Response:
        """Master data straight into a company, bypassing the API (no 409s, no counters)."""
        world = self.world
        body = request.json_object()
        company_id = str(body.get("company_id") or "")
        if company_id not in world.companies:
            return bad_request("company_id must name a seeded company")
        now = world.iso()
        created: dict[str, list[str]] = {
            "tag_groups": [],
            "tags": [],
            "tax_codes": [],
            "vendors": [],
            "accounts": [],
        }
        for group_in in body.get("tag_groups", []):
            group: dict[str, Any] = {
                "id": str(group_in.get("id") or uuid.uuid4()),
                "companyId": company_id,
                "code": str(group_in["code"]),
                "name": str(group_in.get("name") or group_in["code"]),
                "archived": bool(group_in.get("archived", False)),
                "metadata": dict(group_in.get("metadata") or {}),
                "createdAt": now,
                "updatedAt": now,
                "_seq": world.next_seq(),
            }
            world.tag_groups[group["id"]] = group
            created["tag_groups"].append(group["id"])
            for tag_in in group_in.get("tags", []):
                tag: dict[str, Any] = {
                    "id": str(tag_in.get("id") or uuid.uuid4()),
                    "groupId": group["id"],
                    "code": str(tag_in["code"]),
                    "name": str(tag_in.get("name") or tag_in["code"]),
                    "archived": bool(tag_in.get("archived", False)),
                    "createdAt": now,
                    "updatedAt": now,
                    "_company": company_id,
                    "_seq": world.next_seq(),
                }
                world.tags[tag["id"]] = tag
                created["tags"].append(tag["id"])
        for tax_in in body.get("tax_codes", []):
            record = {
                "id": str(tax_in.get("id") or uuid.uuid4()),
                "companyId": company_id,
                "name": str(tax_in["name"]),
                "rate": tax_in.get("rate", 0.25),
                "type": tax_in.get("type", "inclusive"),
                "archived": bool(tax_in.get("archived", False)),
                "code": tax_in.get("code"),
                "ingoingTaxAccount": tax_in.get("ingoingTaxAccount"),
                "outgoingTaxAccount": tax_in.get("outgoingTaxAccount"),
                "accountingIntegrationSystem": tax_in.get("accountingIntegrationSystem"),
                "createdAt": now,
                "updatedAt": now,
                "_seq": world.next_seq(),
            }
            world.tax_codes[record["id"]] = record
            created["tax_codes"].append(record["id"])
        for vendor_in in body.get("vendors", []):
            record = {
                "id": str(vendor_in.get("id") or uuid.uuid4()),
                "companyId": company_id,
                "name": str(vendor_in["name"]),
                "defaultCurrency": str(vendor_in.get("defaultCurrency", "DKK")),
                "state": str(vendor_in.get("state", "ACTIVE")),
                "createdAt": now,
                "updatedAt": now,
                "_seq": world.next_seq(),
            }
            for key in (
                "code",
                "externalId",
                "country",
                "registrationNumber",
                "taxRegistrationNumber",
                "accountingSystem",
            ):
                if vendor_in.get(key) is not None:
                    record[key] = str(vendor_in[key])
            world.vendors[record["id"]] = record
            created["vendors"].append(record["id"])
        for account_in in body.get("accounts", []):
            record = {
                "id": str(account_in.get("id") or uuid.uuid4()),
                "companyId": company_id,
                "externalId": str(account_in["externalId"]),
                "name": str(account_in.get("name") or account_in["externalId"]),
                "archived": bool(account_in.get("archived", False)),
                "code": account_in.get("code"),
                "taxCodeExternalId": account_in.get("taxCodeExternalId"),
                "metadata": account_in.get("metadata"),
                "_linked": bool(account_in.get("linked", False)),
                "_seq": world.next_seq(),
            }
            world.accounts[record["id"]] = record
            created["accounts"].append(record["id"])
        return _ok(created, 201)

    def data(self, request: Request) -> Response:
        company_id = request.arg("company_id")

        def of(records: dict[str, dict[str, Any]], key: str = "companyId") -> list[dict[str, Any]]:
            rows = sorted(records.values(), key=lambda r: r["_seq"])
            return [public(r) for r in rows if company_id is None or r.get(key) == company_id]

        return _ok(
            {
                "tag_groups": of(self.world.tag_groups),
                "tags": of(self.world.tags, "_company"),
                "tax_codes": of(self.world.tax_codes),
                "vendors": of(self.world.vendors),
                "accounts": of(self.world.accounts),
            }
        )

    # -- clients and credentials ----------

    def put_client(self, request: Request) -> Response:
        body = request.json_object()
        client_id = body.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            return bad_request("client_id is required")
        existing = self.world.clients.get(client_id)
        if existing is None:
            if not body.get("client_secret"):
                return bad_request("client_secret is required for a new client")
            existing = Client(
                client_id=client_id,
                client_secret=str(body["client_secret"]),
                redirect_uris=[],
                scopes=[],
            )
        for key in ("client_secret", "name", "application_id"):
            if body.get(key) is not None:
                setattr(existing, key, str(body[key]))
        for key in ("redirect_uris", "scopes"):
            if body.get(key) is not None:
                if not isinstance(body[key], list):
                    return bad_request(f"{key} must be a list")
                setattr(existing, key, [str(v) for v in body[key]])
        if body.get("requires_configuration") is not None:
            existing.requires_configuration = bool(body["requires_configuration"])
        self.world.register_client(existing)
        return _ok(existing.public())

    def list_clients(self, request: Request) -> Response:
        return _ok([c.public() for c in self.world.clients.values()])

    def issue_api_key(self, request: Request) -> Response:
        body = request.json_object()
        company_id = str(body.get("company_id") or "")
        client_id = str(body.get("client_id") or "local-client")
        if company_id not in self.world.companies:
            return bad_request("company_id must name a seeded company")
        if client_id not in self.world.clients:
            return bad_request("client_id must name a registered client")
        key, record = self.world.issue_api_key(company_id, client_id)
        return _ok(
            {"api_key": key, "id": record.id, "company_id": company_id, "client_id": client_id}, 201
        )

    def revoke_api_key(self, request: Request) -> Response:
        body = request.json_object()
        record = None
        if body.get("api_key"):
            record = self.world.api_keys.get(digest(str(body["api_key"])))
        elif body.get("id"):
            record = next((k for k in self.world.api_keys.values() if k.id == body["id"]), None)
        if record is None:
            return not_found("no such API key")
        record.revoked = True
        return _ok({"id": record.id, "revoked": True})

    def revoke_grants(self, request: Request) -> Response:
        """Revoke authorizations (as a user disconnecting the app inside Pleo would)."""
        body = request.json_object() if request.body else {}
        count = 0
        for grant in self.world.grants.values():
            if grant.revoked:
                continue
            if body.get("client_id") not in (None, grant.client_id):
                continue
            if body.get("company_id") not in (None, grant.company_id):
                continue
            self.world.revoke_grant(grant, "revoked through the control API")
            count += 1
        return _ok({"revoked": count})

    def expire_access_tokens(self, request: Request) -> Response:
        now = self.world.now()
        for token in self.world.access_tokens.values():
            token.expires_at = min(token.expires_at, now)
        return _ok({"ok": True})

    def grants(self, request: Request) -> Response:
        return _ok(self.world.grants_view())

    def installations(self, request: Request) -> Response:
        return _ok(self.world.installations_view())

    # -- faults and the log ----------

    def add_fault(self, request: Request) -> Response:
        body = request.json_object()
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            return bad_request(f"kind must be one of {', '.join(FAULT_KINDS)}")
        rule = FaultRule(id=str(uuid.uuid4()), kind=kind)
        for key, cast in (
            ("status", int),
            ("retry_after", int),
            ("latency_ms", int),
            ("hang_ms", int),
            ("rate", float),
            ("count", int),
            ("operation", str),
            ("path_prefix", str),
            ("body", str),
            ("content_type", str),
        ):
            if body.get(key) is not None:
                try:
                    setattr(rule, key, cast(body[key]))
                except (TypeError, ValueError):
                    return bad_request(f"{key} has the wrong type")
        if kind == "error" and not 400 <= rule.status <= 599:
            return bad_request("status must be a 4xx or 5xx code")
        if kind == "response" and not 200 <= rule.status <= 599:
            return bad_request("status must be between 200 and 599")
        if not 0 <= rule.rate <= 1:
            return bad_request("rate is a probability between 0 and 1")
        if body.get("commit") is not None:
            if not isinstance(body["commit"], bool):
                return bad_request("commit must be true or false")
            if body["commit"] and kind == "latency":
                return bad_request("commit applies to error, timeout and response faults")
            rule.commit = body["commit"]
        self.world.faults.append(rule)
        return _ok(vars(rule), 201)

    def list_faults(self, request: Request) -> Response:
        return _ok([vars(rule) for rule in self.world.faults])

    def clear_faults(self, request: Request) -> Response:
        self.world.faults.clear()
        return _ok({"ok": True})

    def requests(self, request: Request) -> Response:
        operation = request.arg("operation")
        return _ok(
            [entry for entry in self.world.request_log if operation in (None, entry["operation"])]
        )

    def clear_requests(self, request: Request) -> Response:
        self.world.request_log.clear()
        self.world.counters.clear()
        self.world.stats.clear()
        return _ok({"ok": True})

    def counters(self, request: Request) -> Response:
        return _ok({"operations": dict(self.world.counters), "events": dict(self.world.stats)})

    def routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        return [
            ("GET", "/_emulator/", self.index),
            ("GET", "/_emulator/health", self.health),
            ("POST", "/_emulator/reset", self.reset),
            ("GET", "/_emulator/settings", self.get_settings),
            ("PUT", "/_emulator/settings", self.put_settings),
            ("POST", "/_emulator/clock", self.advance_clock),
            ("POST", "/_emulator/companies", self.add_company),
            ("GET", "/_emulator/companies", self.list_companies),
            ("POST", "/_emulator/seed", self.seed),
            ("GET", "/_emulator/data", self.data),
            ("POST", "/_emulator/clients", self.put_client),
            ("GET", "/_emulator/clients", self.list_clients),
            ("POST", "/_emulator/api-keys", self.issue_api_key),
            ("POST", "/_emulator/api-keys/revoke", self.revoke_api_key),
            ("POST", "/_emulator/grants/revoke", self.revoke_grants),
            ("POST", "/_emulator/tokens/expire", self.expire_access_tokens),
            ("GET", "/_emulator/grants", self.grants),
            ("GET", "/_emulator/installations", self.installations),
            ("POST", "/_emulator/faults", self.add_fault),
            ("GET", "/_emulator/faults", self.list_faults),
            ("DELETE", "/_emulator/faults", self.clear_faults),
            ("GET", "/_emulator/requests", self.requests),
            ("DELETE", "/_emulator/requests", self.clear_requests),
            ("GET", "/_emulator/counters", self.counters),
        ]
