"""The deployed adapter is chosen by configuration: a built-in name or `package.module:Class`,
checked for the descriptor's shape, with a message that names what is wrong."""

from __future__ import annotations

import pytest

from pleo_connector.adapters.placeholder import PlaceholderAdapter
from pleo_connector.adapters.registry import load_adapter
from pleo_connector.errors import ConfigurationError

pytestmark = pytest.mark.unit


def test_a_built_in_name_loads_its_descriptor() -> None:
    adapter = load_adapter("placeholder")

    assert isinstance(adapter, PlaceholderAdapter)
    assert adapter.name == "placeholder"
    assert ("DEPT", "Departments") in adapter.offered_tag_groups(None)


def test_an_integrators_class_loads_by_its_path() -> None:
    adapter = load_adapter("pleo_connector.adapters.placeholder:PlaceholderAdapter")

    assert isinstance(adapter, PlaceholderAdapter)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("quickbooks", "neither a built-in adapter"),
        ("no_such_module_here:Adapter", "cannot be imported"),
        ("pleo_connector.adapters.placeholder:Missing", "cannot be imported"),
        ("pleo_connector.adapters.placeholder:PlaceholderConnectionSettings", "lacks"),
    ],
)
def test_a_wrong_adapter_is_refused_by_name(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        load_adapter(spec)

    assert spec in str(raised.value)


def test_the_placeholder_reader_streams_its_dimensions_and_nothing_else() -> None:
    adapter = PlaceholderAdapter()
    settings = adapter.settings_model.model_validate(
        {"source_url": "https://erp.example", "api_token": "token-123"}
    )

    with adapter.open_reader(settings) as reader:
        groups = [group.code for group in reader.tag_groups()]
        rest = [*reader.tags(), *reader.tax_codes(), *reader.vendors(), *reader.accounts()]

    assert groups == [code for code, _ in adapter.offered_tag_groups(settings)]
    assert rest == []
