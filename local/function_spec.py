"""One function of template.yaml as plain data: what SAM CLI's providers read
(local/sam_template.py) and what the local world runs (local/functions.py). Standard library only:
both virtualenvs import it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from local.services import ROOT

DEFAULT_TEMPLATE = ROOT / "template.yaml"


@dataclass(frozen=True)
class FunctionSpec:
    """One function as `sam local` would run it: code, layers, limits, environment, events."""

    name: str
    handler: str
    code_dir: str
    layer_dirs: tuple[str, ...]
    runtime: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str] = field(default_factory=dict)
    events: dict[str, Any] = field(default_factory=dict)

    def events_of_type(self, event_type: str) -> dict[str, dict[str, Any]]:
        return {
            name: event for name, event in self.events.items() if event.get("Type") == event_type
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layer_dirs"] = list(self.layer_dirs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FunctionSpec:
        return cls(**{**data, "layer_dirs": tuple(data["layer_dirs"])})
