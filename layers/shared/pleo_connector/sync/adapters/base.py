"""The contract between the sync engine and an accounting system, plus a placeholder adapter.

An adapter reads the four kinds of master data and declares its own connection settings as a
pydantic model, from which the settings page renders its form (fields typed `SecretStr` are
password inputs and are stored encrypted). The record types here are the minimum the settings
page needs; the sync engine may widen them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr


@dataclass(frozen=True, slots=True)
class SourceTag:
    code: str
    name: str
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceTagGroup:
    code: str
    name: str
    archived: bool = False
    tags: tuple[SourceTag, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SourceTaxCode:
    code: str
    name: str
    rate: str | None = None
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceVendor:
    code: str
    name: str
    archived: bool = False


@dataclass(frozen=True, slots=True)
class SourceAccount:
    external_id: str
    name: str
    code: str | None = None
    archived: bool = False


class AccountingAdapter(Protocol):
    """What the sync engine and the settings page need from an accounting system."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]

    def tag_groups(self) -> Sequence[SourceTagGroup]: ...

    def tax_codes(self) -> Sequence[SourceTaxCode]: ...

    def vendors(self) -> Sequence[SourceVendor]: ...

    def accounts(self) -> Sequence[SourceAccount]: ...


class PlaceholderConnectionSettings(BaseModel):
    """Connection settings of the placeholder adapter.

    It stands in until the reference adapters (GnuCash, JSON snapshot) land, and shows every kind
    of input the settings form supports: a URL, a secret, a choice, a number and a switch.
    """

    model_config = ConfigDict(extra="ignore")

    source_url: HttpUrl = Field(
        title="Source URL",
        description="Where the accounting system's data can be read.",
    )
    api_token: SecretStr = Field(
        title="API token",
        min_length=8,
        max_length=512,
        description="The token the accounting system issued for this connection.",
    )
    environment: Literal["sandbox", "production"] = Field(
        default="production", description="Which of the accounting system's environments to use."
    )
    company_code: str = Field(
        default="",
        max_length=64,
        description="The company in the accounting system, when it holds several.",
    )
    timeout_s: int = Field(
        default=20, ge=1, le=60, title="Timeout (seconds)", description="Per request."
    )
    include_archived: bool = Field(
        default=False, description="Also read records the accounting system has archived."
    )


PLACEHOLDER_DIMENSIONS = (
    ("DEPT", "Departments"),
    ("PROJ", "Projects"),
    ("COST", "Cost centres"),
    ("REGION", "Regions"),
    ("CLIENT", "Clients"),
    ("PRODUCT", "Product lines"),
)


class PlaceholderAdapter:
    """Reads no records: an installation can be configured before a real adapter exists. It offers
    six sample dimensions, one more than may be picked, so the settings page's rules show."""

    name: ClassVar[str] = "placeholder"
    settings_model: ClassVar[type[BaseModel]] = PlaceholderConnectionSettings

    def __init__(self, settings: PlaceholderConnectionSettings) -> None:
        self.settings = settings

    def tag_groups(self) -> Sequence[SourceTagGroup]:
        return tuple(SourceTagGroup(code=code, name=name) for code, name in PLACEHOLDER_DIMENSIONS)

    def tax_codes(self) -> Sequence[SourceTaxCode]:
        return ()

    def vendors(self) -> Sequence[SourceVendor]:
        return ()

    def accounts(self) -> Sequence[SourceAccount]:
        return ()
