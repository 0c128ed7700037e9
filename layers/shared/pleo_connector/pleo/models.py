"""Pydantic models of Pleo's payloads.

Pleo adds fields and its specs disagree on enum values, so every model keeps fields it does not
know (`extra="allow"`) and every enum field keeps an unknown value as a plain string instead of
failing the whole response.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from pleo_connector.pleo.errors import MalformedResponseError
from pleo_connector.vocabulary import InstallationErrorCode, InstallationStatus

COMPANY_URN_PREFIX = "urn:pleo:company:"


def _lenient(enum: type[StrEnum]) -> BeforeValidator:
    def parse(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return enum(value)
            except ValueError:
                return value
        return value

    return BeforeValidator(parse)


def company_id_from_urn(urn: str | None) -> str | None:
    """`urn:pleo:company:<uuid>` -> `<uuid>`; None for an organisation or anything else."""
    if urn and urn.startswith(COMPANY_URN_PREFIX):
        return urn[len(COMPANY_URN_PREFIX) :] or None
    return None


class PleoModel(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, unknown fields kept. Each model is
    built on first use (`defer_build`): a page's request reads one or two of them, not all."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=False,
        defer_build=True,
    )


class Installation(PleoModel):
    """`InstallationResponse` (App Marketplace API): not wrapped in `data`."""

    id: str
    application_id: str | None = None
    resource: str | None = None
    status: Annotated[InstallationStatus | str, _lenient(InstallationStatus)]
    error_code: Annotated[InstallationErrorCode | str | None, _lenient(InstallationErrorCode)] = (
        None
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def company_id(self) -> str | None:
        return company_id_from_urn(self.resource)

    def known_status(self) -> InstallationStatus:
        """The status as one this app acts on; a status Pleo added since is refused loudly
        (parsing stays lenient, acting on an unknown state does not)."""
        if isinstance(self.status, InstallationStatus):
            return self.status
        raise MalformedResponseError("Pleo reported an installation status this app does not know")


class IntrospectedAuthMethod(StrEnum):
    """How Pleo says a credential authenticates (`ExternalClientModel.authMethod`)."""

    OAUTH2 = "OAUTH2"
    API_KEY = "API_KEY"
    NONE = "NONE"


class Introspection(PleoModel):
    """`ExternalClientModel` from `GET /v1/introspect`: who the credential belongs to."""

    auth_method: Annotated[IntrospectedAuthMethod | str, _lenient(IntrospectedAuthMethod)]
    client_id: str | None = None
    scope: str | None = None
    application_name: str | None = None
    subject_urn: str | None = Field(default=None, alias="subjectURN")

    @property
    def company_id(self) -> str | None:
        return company_id_from_urn(self.subject_urn)

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset((self.scope or "").split())


class PageOrder(StrEnum):
    ASC = "ASC"
    ASC_NULLS_FIRST = "ASC_NULLS_FIRST"
    ASC_NULLS_LAST = "ASC_NULLS_LAST"
    DESC = "DESC"
    DESC_NULLS_FIRST = "DESC_NULLS_FIRST"
    DESC_NULLS_LAST = "DESC_NULLS_LAST"


class PageInfo(PleoModel):
    """`CursorPageInfo`: page forward with `after=<end_cursor>` while `has_next_page`."""

    has_next_page: bool = False
    has_previous_page: bool = False
    start_cursor: str | None = None
    end_cursor: str | None = None
    total: int | None = None


class Page[ItemT: BaseModel](BaseModel):
    """One page of a cursor-paginated list."""

    model_config = ConfigDict(extra="allow")

    data: list[ItemT]
    pagination: PageInfo = Field(default_factory=PageInfo)


class TagGroup(PleoModel):
    id: str
    company_id: str | None = None
    code: str | None = None
    name: str | None = None
    archived: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)
    total_tags_count: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Tag(PleoModel):
    id: str
    group_id: str | None = None
    code: str | None = None
    name: str | None = None
    archived: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class TaxCodeType(StrEnum):
    INCLUSIVE = "inclusive"
    EXCLUSIVE = "exclusive"
    REVERSE = "reverse"


class TaxCode(PleoModel):
    id: str
    company_id: str | None = None
    name: str | None = None
    code: str | None = None
    rate: float | None = None
    type: Annotated[TaxCodeType | str | None, _lenient(TaxCodeType)] = None
    archived: bool = False
    ingoing_tax_account: str | None = None
    outgoing_tax_account: str | None = None
    accounting_integration_system: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class VendorState(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class Vendor(PleoModel):
    id: str
    company_id: str | None = None
    name: str | None = None
    default_currency: str | None = None
    state: Annotated[VendorState | str | None, _lenient(VendorState)] = None
    code: str | None = None
    external_id: str | None = None
    country: str | None = None
    registration_number: str | None = None
    tax_registration_number: str | None = None
    accounting_system: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Account(PleoModel):
    """A chart-of-accounts entry (`BookkeepingAccountRestModelV1`)."""

    id: str
    company_id: str | None = None
    external_id: str | None = None
    name: str | None = None
    archived: bool = False
    code: str | None = None
    tax_code_external_id: str | None = None
    metadata: dict[str, Any] | None = None


class AccountBatchFailure(PleoModel):
    """One item of a batch create that Pleo refused, with its reasons."""

    reasons: list[str] = Field(default_factory=list)
    request: dict[str, Any] = Field(default_factory=dict)


class AccountBatchResult(PleoModel):
    created: list[Account] = Field(default_factory=list)
    failed: list[AccountBatchFailure] = Field(default_factory=list)


class Address(PleoModel):
    address_line1: str | None = Field(default=None, alias="addressLine1")
    address_line2: str | None = Field(default=None, alias="addressLine2")
    locality: str | None = None
    postal_code: str | None = None
    region: str | None = None
    country: str | None = None


class Company(PleoModel):
    id: str
    name: str | None = None
    organization_id: str | None = None
    registration_number: str | None = None
    address: Address | None = None
