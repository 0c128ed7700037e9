"""Placeholder until this function's handler lands: a clear 503 so the local world and the demo run."""

from __future__ import annotations

import json
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 503,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": "not implemented yet", "route": event.get("routeKey")}),
    }
