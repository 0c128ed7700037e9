"""Output: aligned tables and `key: value` blocks for people, JSON for scripts, progress on
stderr (rewritten in place on a terminal, one line per step otherwise)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Sequence

NOTHING = "-"


def when(moment: datetime | None) -> str:
    """A moment in UTC, to the second: `2026-12-02 19:04:05Z`."""
    if moment is None:
        return NOTHING
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cell(value: Any) -> str:
    if value is None or value == "":
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 installation`, `2 installations`: a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [
        max([len(header), *(len(row[index]) for row in cells)])
        for index, header in enumerate(headers)
    ]
    lines = []
    for row in [list(headers), *cells]:
        padded = [text.ljust(widths[index]) for index, text in enumerate(row[:-1])]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """`name: value` lines, the values aligned."""
    width = max((len(name) for name, _ in pairs), default=0)
    return "\n".join(f"{(name + ':').ljust(width + 1)} {cell(value)}" for name, value in pairs)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"not JSON: {type(value).__name__}")


@dataclass
class Console:
    """Where a command talks to the operator besides its result: warnings and progress, both on
    stderr, so `--json` output stays clean for scripts."""

    err: TextIO
    _steps: int = 0
    _pending: str | None = None
    _in_place: bool = field(default=False)

    def warn(self, text: str) -> None:
        self._end_progress()
        self.err.write(f"warning: {text}\n")
        self.err.flush()

    def progress(self, text: str) -> None:
        """One step of a long operation. The first step is held back: an operation that ends
        after one step (a short listing) prints no progress at all."""
        self._steps += 1
        if self._steps == 1:
            self._pending = text
            return
        if self._pending is not None:
            self._show(self._pending)
            self._pending = None
        self._show(text)

    def done(self) -> None:
        self._pending = None
        self._end_progress()

    def _show(self, text: str) -> None:
        if self.err.isatty():
            self.err.write(f"\r\x1b[2K{text}")
            self._in_place = True
        else:
            self.err.write(text + "\n")
        self.err.flush()

    def _end_progress(self) -> None:
        if self._in_place:
            self.err.write("\n")
            self._in_place = False
