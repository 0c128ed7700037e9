"""An adapter that reads no records, so an installation can be configured before a real one is
deployed. Its settings show every kind of input the settings form supports, and it offers six
sample dimensions, one more than may be picked, so the settings page's rules show."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

from pleo_connector.adapters.records import (
    SourceAccount,
    SourceTag,
    SourceTagGroup,
    SourceTaxCode,
    SourceVendor,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from types import TracebackType


class PlaceholderConnectionSettings(BaseModel):
    """Connection settings of the placeholder adapter: a URL, a secret, a choice, a number and a
    switch."""

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


class PlaceholderReader:
    """The six dimensions, without tags, and nothing else."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def tag_groups(self) -> Iterator[SourceTagGroup]:
        for code, name in PLACEHOLDER_DIMENSIONS:
            yield SourceTagGroup(code=code, name=name)

    def tags(self) -> Iterator[SourceTag]:
        yield from ()

    def tax_codes(self) -> Iterator[SourceTaxCode]:
        yield from ()

    def vendors(self) -> Iterator[SourceVendor]:
        yield from ()

    def accounts(self) -> Iterator[SourceAccount]:
        yield from ()


class PlaceholderAdapter:
    """The descriptor (`ADAPTER=placeholder`)."""

    name = "placeholder"
    settings_model: type[BaseModel] = PlaceholderConnectionSettings

    def offered_tag_groups(self, settings: BaseModel | None) -> Sequence[tuple[str, str]]:
        return PLACEHOLDER_DIMENSIONS

    def open_reader(self, settings: BaseModel) -> PlaceholderReader:
        return PlaceholderReader()
