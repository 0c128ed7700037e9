"""Which adapter this deployment uses: chosen by the operator (stack parameter `Adapter`,
environment `ADAPTER`), never by a request.

A value is a built-in name, or `package.module:attribute` for an integrator's own descriptor (an
object, or a class that takes no arguments). It is resolved once per process and checked for the
descriptor's shape, so a typo fails at the first request with a message that names it.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, cast

from pydantic import BaseModel

from pleo_connector.errors import ConfigurationError

if TYPE_CHECKING:
    from pleo_connector.adapters.base import AdapterDescriptor

BUILT_IN: dict[str, str] = {
    "gnucash": "pleo_connector.adapters.gnucash:GnuCashAdapter",
    "json": "pleo_connector.adapters.json_snapshot:JsonSnapshotAdapter",
    "placeholder": "pleo_connector.adapters.placeholder:PlaceholderAdapter",
}
DEFAULT_ADAPTER = "placeholder"


@cache
def load_adapter(spec: str) -> AdapterDescriptor:
    """The descriptor named by `spec` (a built-in name or `package.module:attribute`)."""
    target = BUILT_IN.get(spec, spec)
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        known = ", ".join(sorted(BUILT_IN))
        raise ConfigurationError(
            f"ADAPTER={spec!r} is neither a built-in adapter ({known}) nor 'package.module:Class'"
        )
    try:
        found: object = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(f"ADAPTER={spec!r} cannot be imported: {error}") from None
    # The shape is checked first (a class shows its attributes too), so a class that is not an
    # adapter is named as such rather than failing in its constructor.
    _check_shape(spec, found)
    if isinstance(found, type):
        try:
            found = found()
        except Exception as error:
            raise ConfigurationError(
                f"ADAPTER={spec!r} could not be created without arguments: {type(error).__name__}"
            ) from None
    return cast("AdapterDescriptor", found)


def _check_shape(spec: str, descriptor: object) -> None:
    name = getattr(descriptor, "name", None)
    model = getattr(descriptor, "settings_model", None)
    missing = [
        what
        for what, ok in (
            ("a string `name`", isinstance(name, str) and bool(name)),
            (
                "a pydantic `settings_model`",
                isinstance(model, type) and issubclass(model, BaseModel),
            ),
            ("`offered_tag_groups()`", callable(getattr(descriptor, "offered_tag_groups", None))),
            ("`open_reader()`", callable(getattr(descriptor, "open_reader", None))),
        )
        if not ok
    ]
    if missing:
        raise ConfigurationError(
            f"ADAPTER={spec!r} is not an adapter: it lacks {', '.join(missing)}"
        )
