"""Placeholder until the dispatcher lands: it dispatches nothing, so that the local world and the
demo run."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"dispatched": 0}
