"""The web functions never load piecash or SQLAlchemy, even where `ADAPTER=gnucash`: they do not
get the GnuCash layer, so an import of either would fail there (and would cost their cold
start). Each handler module is imported afresh with both made unimportable, and the settings
page is built with the GnuCash adapter's form and tag groups."""

from __future__ import annotations

import importlib.abc
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from pleo_connector.adapters.gnucash import GnuCashAdapter
from pleo_connector.adapters.registry import load_adapter
from pleo_connector.adapters.sources import SourceOpener, SourcePolicy
from pleo_connector.composition.roots import SettingsFunction, WebParts
from pleo_connector.vocabulary import InstallationStatus
from pleo_connector.web.pages import settings_page
from tests.support.handlers import load_handler_module
from tests.unit.connect.fakes import (
    INSTALLATION,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleoClients,
    installation,
    record,
    settings_deps,
    web_settings,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

pytestmark = pytest.mark.unit

WEB_FUNCTIONS = ["oauth", "api_key_install", "settings", "disconnect", "health", "sync_dispatcher"]
HEAVY = ("piecash", "sqlalchemy", "sqlalchemy_utils", "pleo_connector.adapters.gnucash_book")


class Blocker(importlib.abc.MetaPathFinder):
    """Refuses the heavy modules, and remembers who asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.startswith(HEAVY):
            self.asked.append(fullname)
            raise ImportError(f"{fullname} is not in this function's layers")
        return None


@pytest.fixture
def blocker(monkeypatch: pytest.MonkeyPatch) -> Blocker:
    """The heavy modules forgotten (put back after the test) and refused from now on."""
    for name in list(sys.modules):
        if name.startswith(HEAVY):
            monkeypatch.delitem(sys.modules, name)
    found = Blocker()
    monkeypatch.setattr(sys, "meta_path", [found, *sys.meta_path])
    monkeypatch.setenv("ADAPTER", "gnucash")
    return found


@pytest.mark.parametrize("function", WEB_FUNCTIONS)
def test_a_web_function_imports_without_piecash(blocker: Blocker, function: str) -> None:
    load_handler_module(function)

    assert blocker.asked == []


def test_the_settings_page_renders_the_gnucash_form_without_piecash(blocker: Blocker) -> None:
    app = load_handler_module("settings")
    adapter = load_adapter("gnucash")
    local = record(InstallationStatus.AUTHORIZED)
    deps = replace(
        settings_deps(
            FakeInstallations(local), FakePleoClients(FakeInstallationsApi(installation()))
        ),
        adapter=adapter,
    )
    function = SettingsFunction(WebParts(web_settings()), deps)

    view = app._view(function, INSTALLATION, "csrf")
    page = settings_page(view, site=function.web.site)

    assert "GnuCash book" in str(page.body)
    assert "Customers" in str(page.body)
    adapter.settings_model.model_validate({"book": "s3://acme-books/books/demo.gnucash"})
    assert blocker.asked == []


def test_the_blocker_catches_the_reader(blocker: Blocker) -> None:
    """The check itself: opening a reader is what needs piecash, and it is caught."""
    adapter = GnuCashAdapter(SourceOpener(SourcePolicy(allow_local=True)))
    settings = adapter.settings_model.model_validate({"book": "/tmp/book.gnucash"})

    with pytest.raises(ImportError):
        adapter.open_reader(settings)

    assert "pleo_connector.adapters.gnucash_book" in blocker.asked
