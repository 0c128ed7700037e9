"""The External API paths (/v0, /v1), shaped exactly as Pleo's OpenAPI documents describe them.

The caller's credential decides the company (one company per credential); naming another
company is a 403. Records are matched by `code` (accounts: `externalId`) case-insensitively.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from local.pleo_emulator.http import (
    JSON_UTF8,
    HTTPError,
    Request,
    Response,
    api_error,
    bad_request,
    conflict,
    forbidden,
    json_response,
    not_found,
)
from local.pleo_emulator.state import Principal, World, decode_cursor, encode_cursor, public

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

JSON_PLAIN = "application/json"  # the chart-of-accounts document's response media type
PAGING = {"before", "after", "offset", "limit", "sorting_keys", "sorting_order"}
INSTALLATION_STATUSES = {"ACTIVATED", "INACTIVE", "AUTHORIZED", "PENDING_INTEGRATION", "ERROR"}
INSTALLATION_ERRORS = {"NOT_ENTITLED", "AUTH_ERROR"}
# The vendors document describes defaultCurrency as "ISO 4217 currency code (3 letters)" but its
# schema is a bare string: the emulator holds callers to the description (README: assumed).
CURRENCY = re.compile(r"[A-Z]{3}")


def ok(payload: Any, status: int = 200) -> Response:
    return json_response(status, payload)


def no_content() -> Response:
    return Response(204)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.casefold() == b.casefold()


class Api:
    def __init__(self, world: World) -> None:
        self.world = world

    # -- helpers ----------

    def company(self, principal: Principal, requested: str | None) -> str:
        if requested is None or requested == principal.company_id:
            return principal.company_id
        if not requested.strip():
            raise HTTPError(bad_request("the company id is empty"))
        raise HTTPError(forbidden("the credential does not give access to that company"))

    def paginate(
        self, request: Request, records: Iterable[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Cursor pagination as CursorPageInfo describes it (cursors are record positions)."""
        settings = self.world.settings
        after, before, offset_text = (
            request.arg("after"),
            request.arg("before"),
            request.arg("offset"),
        )
        if sum(value is not None for value in (after, before, offset_text)) > 1:
            raise HTTPError(bad_request("before, after and offset are mutually exclusive"))
        limit = settings.page_default_limit
        if request.arg("limit") is not None:
            try:
                limit = int(request.arg("limit") or "")
            except ValueError:
                raise HTTPError(bad_request("limit must be an integer")) from None
            if limit < 1:
                raise HTTPError(bad_request("limit must be at least 1"))
        limit = min(limit, settings.page_max_limit)
        ordered = sorted(records, key=lambda record: record["_seq"])
        start = 0
        if after is not None or before is not None:
            position = decode_cursor(after if after is not None else before or "")
            if position is None:
                raise HTTPError(bad_request("the cursor is not valid"))
            if after is not None:
                start = sum(1 for record in ordered if record["_seq"] <= position)
                page = ordered[start : start + limit]
            else:
                end = sum(1 for record in ordered if record["_seq"] < position)
                start = max(0, end - limit)
                page = ordered[start:end]
        else:
            if offset_text is not None:
                try:
                    start = int(offset_text)
                except ValueError:
                    raise HTTPError(bad_request("offset must be an integer")) from None
                if start < 0:
                    raise HTTPError(bad_request("offset must not be negative"))
            page = ordered[start : start + limit]
        current: dict[str, Any] = {
            "limit": limit,
            "parameters": {},
            "sortingKeys": request.args("sorting_keys"),
            "sortingOrder": request.args("sorting_order"),
        }
        for key, value in request.query:
            if key not in PAGING:
                current["parameters"].setdefault(key, []).append(value)
        if after is not None:
            current["after"] = after
        if before is not None:
            current["before"] = before
        if offset_text is not None:
            current["offset"] = start
        info: dict[str, Any] = {
            "currentRequestPagination": current,
            "hasNextPage": start + len(page) < len(ordered),
            "hasPreviousPage": start > 0,
            "total": len(ordered),
        }
        if page:
            info["startCursor"] = encode_cursor(page[0]["_seq"])
            info["endCursor"] = encode_cursor(page[-1]["_seq"])
        return page, info

    def _stamp(self, record: dict[str, Any], created: bool = False) -> dict[str, Any]:
        now = self.world.iso()
        if created:
            record["createdAt"] = now
            record["_seq"] = self.world.next_seq()
        record["updatedAt"] = now
        return record

    # -- installations and introspect ----------

    def _installation(self, principal: Principal) -> dict[str, Any] | None:
        return self.world.installations.get((principal.client_id, principal.company_id))

    def get_installation(self, request: Request, principal: Principal) -> Response:
        self.company(principal, request.arg("company_id"))
        installation = self._installation(principal)
        if installation is None:
            return not_found("no installation for this client and company")
        return ok(installation)

    def create_installation(self, request: Request, principal: Principal) -> Response:
        body = request.json_object()
        status = body.get("status", "ACTIVATED")
        if status not in INSTALLATION_STATUSES:
            return bad_request(f"unknown installation status {status!r}")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            return bad_request("metadata must be an object")
        client = self.world.clients.get(principal.client_id)
        if client is None:
            return bad_request("the credential's application is not registered")
        installation = self.world.install(client, principal.company_id, status)
        installation["metadata"] = metadata
        return ok(installation)

    def update_installation(self, request: Request, principal: Principal) -> Response:
        installation = self._installation(principal)
        body = request.json_object()
        status = body.get("status")
        if status not in INSTALLATION_STATUSES:
            return bad_request("status is required and must be an InstallationStatus")
        error_code = body.get("errorCode")
        if error_code is not None and error_code not in INSTALLATION_ERRORS:
            return bad_request("errorCode must be NOT_ENTITLED or AUTH_ERROR")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            return bad_request("metadata must be an object")
        if installation is None:
            return not_found("no installation for this client and company")
        installation["status"] = status
        if error_code is None:
            installation.pop("errorCode", None)
        else:
            installation["errorCode"] = error_code
        # PUT replaces: metadata left out becomes empty.
        installation["metadata"] = metadata or {}
        installation["updatedAt"] = self.world.iso()
        return ok(installation)

    def activate_installation(self, request: Request, principal: Principal) -> Response:
        installation = self._installation(principal)
        if installation is None:
            return not_found("no installation for this client and company")
        installation["status"] = "ACTIVATED"
        installation.pop("errorCode", None)
        installation["updatedAt"] = self.world.iso()
        return ok(installation)

    def delete_installation(self, request: Request, principal: Principal) -> Response:
        key = (principal.client_id, principal.company_id)
        if self.world.installations.pop(key, None) is None:
            return not_found("no installation for this client and company")
        self.world.revoke_grants_of(
            principal.client_id, principal.company_id, "installation deleted"
        )
        return no_content()

    def introspect(self, request: Request, principal: Principal) -> Response:
        client = self.world.clients.get(principal.client_id)
        data = {
            "authMethod": principal.auth_method,
            "clientId": principal.client_id,
            "scope": principal.scope,
            "subjectURN": f"urn:pleo:company:{principal.company_id}",
        }
        if client is not None:
            data["applicationName"] = client.name
        return ok({"data": data})

    # -- tag groups ----------

    def _group(self, principal: Principal, group_id: str) -> dict[str, Any]:
        group = self.world.tag_groups.get(group_id)
        if group is None or group["companyId"] != principal.company_id:
            raise HTTPError(not_found("tag group not found"))
        return group

    def _group_view(self, group: dict[str, Any], with_count: bool = False) -> dict[str, Any]:
        view = public(group)
        if with_count:
            view["totalTagsCount"] = sum(
                1 for tag in self.world.tags.values() if tag["groupId"] == group["id"]
            )
        return view

    def _check_group_code(self, company_id: str, code: str, exclude: str | None = None) -> None:
        for group in self.world.tag_groups.values():
            if (
                group["companyId"] == company_id
                and group["id"] != exclude
                and _same(group["code"], code)
            ):
                raise HTTPError(conflict(f"a tag group with code {code!r} exists"))

    def list_tag_groups(self, request: Request, principal: Principal) -> Response:
        company_id = request.arg("company_id")
        organization_id = request.arg("organization_id")
        if company_id is None and organization_id is None:
            return bad_request("company_id or organization_id is required")
        if company_id is None:
            own = self.world.companies.get(principal.company_id, {})
            if organization_id != own.get("organizationId"):
                return forbidden("the credential does not give access to that organization")
        company = self.company(principal, company_id)
        include_archived = request.arg("include_archived") == "true"
        with_count = request.arg("include_tags_count") == "true"
        groups = sorted(
            (g for g in self.world.tag_groups.values() if g["companyId"] == company),
            key=lambda g: g["_seq"],
        )
        return ok(
            {
                "data": [
                    self._group_view(g, with_count)
                    for g in groups
                    if include_archived or not g["archived"]
                ]
            }
        )

    def create_tag_group(self, request: Request, principal: Principal) -> Response:
        company_id = self.company(principal, request.arg("company_id"))
        body = request.json_object()
        code, name = _required_str(body, "code"), _required_str(body, "name")
        self._check_group_code(company_id, code)
        group = self._stamp(
            {
                "id": str(uuid.uuid4()),
                "companyId": company_id,
                "code": code,
                "name": name,
                "archived": bool(body.get("archived", False)),
                "metadata": dict(body.get("metadata") or {}),
            },
            created=True,
        )
        self.world.tag_groups[group["id"]] = group
        return ok({"data": self._group_view(group)})

    def get_tag_group(self, request: Request, principal: Principal, groupId: str) -> Response:
        return ok({"data": self._group_view(self._group(principal, groupId))})

    def update_tag_group(self, request: Request, principal: Principal, groupId: str) -> Response:
        group = self._group(principal, groupId)
        body = request.json_object()
        code, name = _required_str(body, "code"), _required_str(body, "name")
        self._check_group_code(group["companyId"], code, exclude=group["id"])
        group.update(
            code=code,
            name=name,
            archived=bool(body.get("archived", False)),
            metadata=dict(body.get("metadata") or {}),
        )
        self._stamp(group)
        return ok({"data": self._group_view(group)})

    def delete_tag_group(self, request: Request, principal: Principal, groupId: str) -> Response:
        group = self._group(principal, groupId)
        del self.world.tag_groups[group["id"]]
        for tag_id in [t["id"] for t in self.world.tags.values() if t["groupId"] == group["id"]]:
            del self.world.tags[tag_id]
        return no_content()

    # -- tags ----------

    def _tag(self, principal: Principal, tag_id: str) -> dict[str, Any]:
        tag = self.world.tags.get(tag_id)
        if tag is None or tag["_company"] != principal.company_id:
            raise HTTPError(not_found("tag not found"))
        return tag

    def _check_tag_code(self, group_id: str, code: str, exclude: str | None = None) -> None:
        for tag in self.world.tags.values():
            if tag["groupId"] == group_id and tag["id"] != exclude and _same(tag["code"], code):
                raise HTTPError(conflict(f"a tag with code {code!r} exists in this group"))

    def list_group_tags(self, request: Request, principal: Principal, groupId: str) -> Response:
        group = self._group(principal, groupId)
        include_archived = request.arg("include_archived") == "true"
        tags = [
            t
            for t in self.world.tags.values()
            if t["groupId"] == group["id"] and (include_archived or not t["archived"])
        ]
        page, info = self.paginate(request, tags)
        return ok({"data": [public(t) for t in page], "pagination": info})

    def create_tag(self, request: Request, principal: Principal, groupId: str) -> Response:
        group = self._group(principal, groupId)
        body = request.json_object()
        code = _required_str(body, "code")
        self._check_tag_code(group["id"], code)
        tag = self._stamp(
            {
                "id": str(uuid.uuid4()),
                "groupId": group["id"],
                "code": code,
                "name": str(body.get("name") or code),
                "archived": bool(body.get("archived", False)),
                "_company": group["companyId"],
            },
            created=True,
        )
        self.world.tags[tag["id"]] = tag
        return ok({"data": public(tag)}, 201)

    def get_tag(self, request: Request, principal: Principal, tagId: str) -> Response:
        return ok({"data": public(self._tag(principal, tagId))})

    def update_tag(self, request: Request, principal: Principal, tagId: str) -> Response:
        tag = self._tag(principal, tagId)
        body = request.json_object()
        code = _required_str(body, "code")
        self._check_tag_code(tag["groupId"], code, exclude=tag["id"])
        tag.update(code=code, archived=bool(body.get("archived", False)))
        if body.get("name") is not None:
            tag["name"] = str(body["name"])
        self._stamp(tag)
        return ok({"data": public(tag)})

    def delete_tag(self, request: Request, principal: Principal, tagId: str) -> Response:
        tag = self._tag(principal, tagId)
        del self.world.tags[tag["id"]]
        return ok({})  # the document: a `default` JSON body without schema

    def _bulk_tags(self, principal: Principal, body: dict[str, Any]) -> list[dict[str, Any]]:
        self.company(principal, _required_str(body, "companyId"))
        tag_ids = body.get("tagIds")
        if not isinstance(tag_ids, list) or not 1 <= len(tag_ids) <= 100:
            raise HTTPError(bad_request("tagIds must hold 1 to 100 ids"))
        return [self._tag(principal, str(tag_id)) for tag_id in tag_ids]

    def archive_tags(self, request: Request, principal: Principal) -> Response:
        body = request.json_object()
        archived = body.get("archived")
        if not isinstance(archived, bool):
            return bad_request("archived is required")
        tags = self._bulk_tags(principal, body)
        for tag in tags:
            if tag["archived"] != archived:
                tag["archived"] = archived
                self._stamp(tag)
        return ok({"data": [public(tag) for tag in tags]})

    def delete_tags(self, request: Request, principal: Principal) -> Response:
        for tag in self._bulk_tags(principal, request.json_object()):
            del self.world.tags[tag["id"]]
        return no_content()

    def _search_tags(
        self,
        company_id: str,
        *,
        archived: bool | None,
        include_archived: bool,
        group_ids: list[str],
        tag_ids: list[str],
        text: str | None,
    ) -> list[dict[str, Any]]:
        result = []
        for tag in self.world.tags.values():
            if tag["_company"] != company_id:
                continue
            if archived is not None:
                if tag["archived"] != archived:
                    continue
            elif not include_archived and tag["archived"]:
                continue
            if group_ids and tag["groupId"] not in group_ids:
                continue
            if tag_ids and tag["id"] not in tag_ids:
                continue
            if text and text.casefold() not in str(tag.get("name", "")).casefold():
                continue
            result.append(tag)
        return result

    def search_tags(self, request: Request, principal: Principal) -> Response:
        company_id = self.company(principal, request.arg("company_id"))
        body = request.json_object() if request.body else {}
        tags = self._search_tags(
            company_id,
            archived=body.get("archived"),
            include_archived=bool(body.get("includeArchived", False)),
            group_ids=_list(body, "tagGroupIds"),
            tag_ids=_list(body, "tagIds"),
            text=_optional_str(body, "textSearch"),
        )
        page, info = self.paginate(request, tags)
        return ok({"data": [public(t) for t in page], "pagination": info})

    def search_tags_deprecated(self, request: Request, principal: Principal) -> Response:
        company_id = self.company(principal, request.arg("company_id"))
        tags = self._search_tags(
            company_id,
            archived=None,
            include_archived=request.arg("include_archived") == "true",
            group_ids=request.args("tag_group_id"),
            tag_ids=[],
            text=request.arg("text_search"),
        )
        page, info = self.paginate(request, tags)
        return ok({"data": [public(t) for t in page], "pagination": info})

    # -- tax codes ----------

    def _tax_code(self, principal: Principal, tax_code_id: str) -> dict[str, Any]:
        record = self.world.tax_codes.get(tax_code_id)
        if record is None or record["companyId"] != principal.company_id:
            raise HTTPError(not_found("tax code not found"))
        return record

    def _tax_fields(
        self, principal: Principal, body: dict[str, Any], exclude: str | None
    ) -> dict[str, Any]:
        company_id = self.company(principal, _required_str(body, "companyId"))
        rate = body.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise HTTPError(bad_request("rate is required and must be a number"))
        kind = body.get("type")
        if kind not in ("inclusive", "exclusive", "reverse"):
            raise HTTPError(bad_request("type must be inclusive, exclusive or reverse"))
        code = body.get("code")
        if code is not None:
            for other in self.world.tax_codes.values():
                if (
                    other["companyId"] == company_id
                    and other["id"] != exclude
                    and _same(other.get("code"), str(code))
                ):
                    raise HTTPError(conflict(f"a tax code with code {code!r} exists"))
        return {
            "companyId": company_id,
            "name": _required_str(body, "name"),
            "rate": rate,
            "type": kind,
            "archived": bool(body.get("archived", False)),
            "code": code,
            "ingoingTaxAccount": body.get("ingoingTaxAccount"),
            "outgoingTaxAccount": body.get("outgoingTaxAccount"),
        }

    def create_tax_code(self, request: Request, principal: Principal) -> Response:
        fields = self._tax_fields(principal, request.json_object(), None)
        record = self._stamp(
            {"id": str(uuid.uuid4()), "accountingIntegrationSystem": None, **fields}, created=True
        )
        self.world.tax_codes[record["id"]] = record
        return ok({"data": public(record)})

    def get_tax_code(self, request: Request, principal: Principal, taxCodeId: str) -> Response:
        return ok({"data": public(self._tax_code(principal, taxCodeId))})

    def update_tax_code(self, request: Request, principal: Principal, taxCodeId: str) -> Response:
        record = self._tax_code(principal, taxCodeId)
        record.update(self._tax_fields(principal, request.json_object(), record["id"]))
        self._stamp(record)
        return ok({"data": public(record)})

    def delete_tax_code(self, request: Request, principal: Principal, taxCodeId: str) -> Response:
        record = self._tax_code(principal, taxCodeId)
        del self.world.tax_codes[record["id"]]
        return ok({})  # the document: a `default` JSON body without schema

    def search_tax_codes(self, request: Request, principal: Principal) -> Response:
        company_id = self.company(principal, request.arg("company_id"))
        body = request.json_object() if request.body else {}
        archived, code, kind = body.get("archived"), _optional_str(body, "code"), body.get("type")
        ids = _list(body, "taxCodeIds")
        found = [
            r
            for r in self.world.tax_codes.values()
            if r["companyId"] == company_id
            and (archived is None or r["archived"] == archived)
            and (code is None or _same(r.get("code"), code))
            and (kind is None or r["type"] == kind)
            and (not ids or r["id"] in ids)
        ]
        page, info = self.paginate(request, found)
        return ok({"data": [public(r) for r in page], "pagination": info})

    # -- vendors ----------

    def _vendor(self, principal: Principal, vendor_id: str) -> dict[str, Any]:
        record = self.world.vendors.get(vendor_id)
        if record is None or record["companyId"] != principal.company_id:
            raise HTTPError(not_found("vendor not found"))
        return record

    def _vendor_clash(
        self, company_id: str, body: dict[str, Any], exclude: str | None
    ) -> str | None:
        for other in self.world.vendors.values():
            if other["companyId"] != company_id or other["id"] == exclude:
                continue
            for key in ("externalId", "code"):
                if _same(other.get(key), body.get(key)):
                    return f"a vendor with {key} {body.get(key)!r} exists"
        return None

    def _vendor_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        currency = _required_str(body, "defaultCurrency")
        if not CURRENCY.fullmatch(currency):
            raise HTTPError(
                bad_request(f"defaultCurrency must be a 3-letter ISO 4217 code, got {currency!r}")
            )
        fields: dict[str, Any] = {"name": _required_str(body, "name"), "defaultCurrency": currency}
        for key in ("code", "externalId", "country", "registrationNumber", "taxRegistrationNumber"):
            if body.get(key) is not None:
                fields[key] = str(body[key])
        return fields

    def create_vendor(self, request: Request, principal: Principal) -> Response:
        body = request.json_object()
        company_id = self.company(principal, _required_str(body, "companyId"))
        fields = self._vendor_fields(body)
        clash = self._vendor_clash(company_id, fields, None)
        if clash:
            return conflict(clash)
        record = self._stamp(
            {"id": str(uuid.uuid4()), "companyId": company_id, "state": "ACTIVE", **fields},
            created=True,
        )
        self.world.vendors[record["id"]] = record
        return ok({"data": public(record)}, 201)

    def get_vendor(self, request: Request, principal: Principal, id: str) -> Response:
        return ok({"data": public(self._vendor(principal, id))})

    def update_vendor(self, request: Request, principal: Principal, id: str) -> Response:
        record = self._vendor(principal, id)
        body = request.json_object()
        self.company(principal, _required_str(body, "companyId"))
        _required_str(body, "externalId")
        state = body.get("state")
        if state not in ("DRAFT", "ACTIVE", "ARCHIVED"):
            return bad_request("state must be DRAFT, ACTIVE or ARCHIVED")
        fields = self._vendor_fields(body)
        clash = self._vendor_clash(record["companyId"], fields, record["id"])
        if clash:
            return conflict(clash)
        for key in ("code", "country", "registrationNumber", "taxRegistrationNumber"):
            record.pop(key, None)  # PUT replaces the optional fields too
        record.update(fields, state=state)
        self._stamp(record)
        return ok({"data": public(record)})

    def activate_vendor(self, request: Request, principal: Principal, id: str) -> Response:
        record = self._vendor(principal, id)
        body = request.json_object()
        fields = {"externalId": _required_str(body, "externalId")}
        if body.get("code") is not None:
            fields["code"] = str(body["code"])
        clash = self._vendor_clash(record["companyId"], fields, record["id"])
        if clash:
            return conflict(clash)
        record.update(fields, state="ACTIVE")
        self._stamp(record)
        return no_content()

    def archive_vendor(self, request: Request, principal: Principal, id: str) -> Response:
        record = self._vendor(principal, id)
        record["state"] = "ARCHIVED"
        self._stamp(record)
        return no_content()

    def search_vendors(self, request: Request, principal: Principal) -> Response:
        requested = request.arg("company_id")
        if requested is None:
            return bad_request("company_id is required")
        company_id = self.company(principal, requested)
        body = request.json_object() if request.body else {}

        def any_of(key: str, value: Any, casefold: bool = False) -> bool:
            wanted = _list(body, key)
            if not wanted:
                return True
            if casefold:
                return any(_same(value, str(w)) for w in wanted)
            return value in wanted

        name = body.get("name")
        found = [
            v
            for v in self.world.vendors.values()
            if v["companyId"] == company_id
            and any_of("ids", v["id"])
            and any_of("codes", v.get("code"), casefold=True)
            and any_of("externalIds", v.get("externalId"), casefold=True)
            and any_of("taxRegistrationNumbers", v.get("taxRegistrationNumber"))
            and any_of("countries", v.get("country"))
            and any_of("accountingSystems", v.get("accountingSystem"))
            and any_of("states", v["state"])
            and (not name or str(name).casefold() in v["name"].casefold())
        ]
        page, info = self.paginate(request, found)
        return ok({"data": [public(v) for v in page], "pagination": info})

    # -- chart of accounts ----------

    def _account(self, principal: Principal, account_id: str) -> dict[str, Any]:
        record = self.world.accounts.get(account_id)
        if record is None or record["companyId"] != principal.company_id:
            raise HTTPError(not_found("account not found"))
        return record

    def _account_by_external_id(self, company_id: str, external_id: str) -> dict[str, Any] | None:
        for record in self.world.accounts.values():
            if record["companyId"] == company_id and _same(record["externalId"], external_id):
                return record
        return None

    def _check_tax_code_reference(self, company_id: str, reference: Any) -> None:
        if reference is None:
            return
        if not any(
            r["companyId"] == company_id and _same(r.get("code"), str(reference))
            for r in self.world.tax_codes.values()
        ):
            raise HTTPError(
                _coa(api_error(400, "bad_request", f"unknown taxCodeExternalId {reference!r}"))
            )

    @staticmethod
    def _account_fields(item: dict[str, Any]) -> dict[str, Any]:
        return {
            "externalId": str(item.get("externalId") or ""),
            "name": str(item.get("name") or ""),
            "archived": bool(item.get("archived", False)),
            "code": item.get("code"),
            "taxCodeExternalId": item.get("taxCodeExternalId"),
            "metadata": item.get("metadata"),
        }

    def _new_account(self, company_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        record = self._stamp(
            {"id": str(uuid.uuid4()), "companyId": company_id, **fields}, created=True
        )
        record.pop("createdAt")
        record.pop("updatedAt")
        self.world.accounts[record["id"]] = record
        return record

    @staticmethod
    def _account_problems(fields: dict[str, Any]) -> list[str]:
        problems = []
        if not fields["externalId"]:
            problems.append("EXTERNAL_ID_EMPTY")
        elif len(fields["externalId"]) > 255:
            problems.append("EXTERNAL_ID_TOO_LONG")
        if not fields["name"]:
            problems.append("NAME_EMPTY")
        elif len(fields["name"]) > 255:
            problems.append("NAME_TOO_LONG")
        if fields["code"] is not None and len(str(fields["code"])) > 255:
            problems.append("CODE_TOO_LONG")
        return problems

    def create_account(self, request: Request, principal: Principal) -> Response:
        body = request.json_object()
        company_id = self.company(principal, _required_str(body, "companyId"))
        fields = self._account_fields(body)
        problems = self._account_problems(fields)
        if problems:
            return _coa(bad_request(", ".join(problems)))
        self._check_tax_code_reference(company_id, fields["taxCodeExternalId"])
        existing = self._account_by_external_id(company_id, fields["externalId"])
        if existing is not None:
            if all(existing.get(k) == v for k, v in fields.items()):
                return _coa(ok({"data": public(existing)}))  # matched an existing account
            return _coa(conflict(f"an account with externalId {fields['externalId']!r} exists"))
        record = self._new_account(company_id, fields)
        return _coa(ok({"data": public(record)}, 201))

    def create_accounts_batch(self, request: Request, principal: Principal) -> Response:
        body = request.json_object()
        company_id = self.company(principal, _required_str(body, "companyId"))
        items = body.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 1000:
            return _coa(bad_request("items must hold 1 to 1000 accounts"))
        created, failed = [], []
        for item in items:
            if not isinstance(item, dict):
                return _coa(bad_request("each item must be an object"))
            fields = self._account_fields(item)
            reasons = self._account_problems(fields)
            if not reasons and self._account_by_external_id(company_id, fields["externalId"]):
                reasons = ["EXTERNAL_ID_ALREADY_EXISTS"]
            if reasons:
                failed.append({"reasons": reasons, "request": item})
                continue
            created.append(public(self._new_account(company_id, fields)))
        return _coa(ok({"data": {"created": created, "failed": failed}}, 201))

    def get_account(self, request: Request, principal: Principal, accountId: str) -> Response:
        return _coa(ok({"data": public(self._account(principal, accountId))}))

    def update_account(self, request: Request, principal: Principal, accountId: str) -> Response:
        record = self._account(principal, accountId)
        body = request.json_object()
        fields = self._account_fields({**body, "externalId": record["externalId"]})
        problems = [p for p in self._account_problems(fields) if not p.startswith("EXTERNAL")]
        if problems:
            return _coa(bad_request(", ".join(problems)))
        self._check_tax_code_reference(record["companyId"], fields["taxCodeExternalId"])
        record.update(fields)
        return _coa(ok({"data": public(record)}))

    def delete_account(self, request: Request, principal: Principal, accountId: str) -> Response:
        record = self._account(principal, accountId)
        if record.get("_linked"):
            return _coa(conflict("the account is linked to accounting entries: archive it instead"))
        del self.world.accounts[record["id"]]
        return no_content()

    def search_accounts(self, request: Request, principal: Principal) -> Response:
        body = request.json_object()
        company_id = self.company(principal, _required_str(body, "companyId"))
        archived = body.get("archived")
        codes = [c for c in _list(body, "codes") if c is not None]
        if body.get("code") is not None:
            codes.append(body["code"])
        ids = [i for i in _list(body, "ids") if i is not None]
        external_id, name = _optional_str(body, "externalId"), body.get("name")
        found = [
            r
            for r in self.world.accounts.values()
            if r["companyId"] == company_id
            and (archived is None or r["archived"] == archived)
            and (not codes or any(_same(r.get("code"), str(c)) for c in codes))
            and (not ids or r["id"] in ids)
            and (external_id is None or _same(r["externalId"], external_id))
            and (not name or str(name).casefold() in r["name"].casefold())
        ]
        page, info = self.paginate(request, found)
        return _coa(ok({"data": [public(r) for r in page], "pagination": info}))

    # -- companies ----------

    def _visible_companies(self, principal: Principal) -> list[dict[str, Any]]:
        company = self.world.companies.get(principal.company_id)
        return [company] if company else []

    def list_companies(self, request: Request, principal: Principal) -> Response:
        organization_id = request.arg("organization_id")
        companies = [
            c
            for c in self._visible_companies(principal)
            if organization_id is None or c.get("organizationId") == organization_id
        ]
        page, info = self.paginate(request, companies)
        return ok({"data": [public(c) for c in page], "pagination": info})

    def get_company(self, request: Request, principal: Principal, companyId: str) -> Response:
        if companyId not in self.world.companies:
            return not_found("company not found")
        if companyId != principal.company_id:
            return forbidden("the credential does not give access to that company")
        return ok({"data": public(self.world.companies[companyId])})

    def routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        return [
            ("GET", "/v1/installations/me", self.get_installation),
            ("POST", "/v1/installations/me", self.create_installation),
            ("PUT", "/v1/installations/me", self.update_installation),
            ("DELETE", "/v1/installations/me", self.delete_installation),
            ("POST", "/v1/installations/me:activate", self.activate_installation),
            ("GET", "/v1/introspect", self.introspect),
            ("GET", "/v0/tag-groups", self.list_tag_groups),
            ("POST", "/v0/tag-groups", self.create_tag_group),
            ("GET", "/v0/tag-groups/{groupId}", self.get_tag_group),
            ("PUT", "/v0/tag-groups/{groupId}", self.update_tag_group),
            ("DELETE", "/v0/tag-groups/{groupId}", self.delete_tag_group),
            ("GET", "/v0/tag-groups/{groupId}/tags", self.list_group_tags),
            ("POST", "/v0/tag-groups/{groupId}/tags", self.create_tag),
            ("GET", "/v0/tags", self.search_tags_deprecated),
            ("DELETE", "/v0/tags", self.delete_tags),
            ("POST", "/v0/tags/archive", self.archive_tags),
            ("POST", "/v0/tags:search", self.search_tags),
            ("GET", "/v0/tags/{tagId}", self.get_tag),
            ("PUT", "/v0/tags/{tagId}", self.update_tag),
            ("DELETE", "/v0/tags/{tagId}", self.delete_tag),
            ("POST", "/v0/tax-codes", self.create_tax_code),
            ("POST", "/v0/tax-codes:search", self.search_tax_codes),
            ("GET", "/v0/tax-codes/{taxCodeId}", self.get_tax_code),
            ("PUT", "/v0/tax-codes/{taxCodeId}", self.update_tax_code),
            ("DELETE", "/v0/tax-codes/{taxCodeId}", self.delete_tax_code),
            ("POST", "/v1/vendors", self.create_vendor),
            ("POST", "/v1/vendors:search", self.search_vendors),
            ("GET", "/v1/vendors/{id}", self.get_vendor),
            ("PUT", "/v1/vendors/{id}", self.update_vendor),
            ("POST", "/v1/vendors/{id}:activate", self.activate_vendor),
            ("POST", "/v1/vendors/{id}:archive", self.archive_vendor),
            ("POST", "/v1/chart-of-accounts", self.create_account),
            ("POST", "/v1/chart-of-accounts/batch", self.create_accounts_batch),
            ("POST", "/v1/chart-of-accounts:search", self.search_accounts),
            ("GET", "/v1/chart-of-accounts/{accountId}", self.get_account),
            ("PUT", "/v1/chart-of-accounts/{accountId}", self.update_account),
            ("DELETE", "/v1/chart-of-accounts/{accountId}", self.delete_account),
            ("GET", "/v1/companies", self.list_companies),
            ("GET", "/v1/companies/{companyId}", self.get_company),
        ]


def _coa(response: Response) -> Response:
    """The chart-of-accounts document declares `application/json` (no charset) for its bodies."""
    response.headers = [
        ("Content-Type", JSON_PLAIN)
        if key == "Content-Type" and value == JSON_UTF8
        else (key, value)
        for key, value in response.headers
    ]
    return response


def _required_str(body: dict[str, Any], key: str) -> str:
    """A string field the schema requires. An empty one is a value like any other: the documents
    give these fields no minLength (README: documented or assumed)."""
    value = body.get(key)
    if value is None:
        raise HTTPError(bad_request(f"{key} is required"))
    if not isinstance(value, str):
        raise HTTPError(bad_request(f"{key} must be a string, got {type(value).__name__}"))
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _required_str(body, key)


def _list(body: dict[str, Any], key: str) -> list[Any]:
    """A search filter given as a list (absent or null: no filter)."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise HTTPError(bad_request(f"{key} must be a list, got {type(value).__name__}"))
    return value
