"""Read what a handler printed: JSON log lines and EMF metric lines, told apart by EMF's `_aws`."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Printed:
    logs: list[dict[str, Any]] = field(default_factory=list)
    emf: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[float]]:
        """(metric name, its dimensions sorted) -> every value printed for it."""
        found: defaultdict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = defaultdict(list)
        for line in self.emf:
            for directive in line["_aws"]["CloudWatchMetrics"]:
                (names,) = directive["Dimensions"]
                dimensions = tuple(sorted((name, str(line[name])) for name in names))
                for metric in directive["Metrics"]:
                    value = line[metric["Name"]]
                    found[(metric["Name"], dimensions)] += (
                        value if isinstance(value, list) else [value]
                    )
        return dict(found)

    def units(self) -> dict[str, str]:
        return {
            metric["Name"]: metric["Unit"]
            for line in self.emf
            for directive in line["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]
        }

    def namespaces(self) -> set[str]:
        return {
            directive["Namespace"]
            for line in self.emf
            for directive in line["_aws"]["CloudWatchMetrics"]
        }


def read_printed(stdout: str) -> Printed:
    """Every line must be JSON: a handler prints nothing else."""
    printed = Printed()
    for line in stdout.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        (printed.emf if "_aws" in entry else printed.logs).append(entry)
    return printed
