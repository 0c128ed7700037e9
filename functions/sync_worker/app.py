"""Placeholder until the sync worker lands: accepts every message, so the local world and the demo
run (a partial batch response with no failures)."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"batchItemFailures": []}
