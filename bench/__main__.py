"""Run every benchmark of this folder: `python -m bench` (what `make bench` does).

`python -m bench cold_start` runs only the modules whose name contains one of the arguments.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from pathlib import Path


def discover(selected: list[str]) -> list[str]:
    """Module names of bench/bench_*.py, sorted, filtered by `selected` when given."""
    names = sorted(path.stem for path in Path(__file__).parent.glob("bench_*.py"))
    if selected:
        names = [name for name in names if any(word in name for word in selected)]
    return names


def main(argv: list[str]) -> int:
    failed: list[str] = []
    names = discover(argv)
    if not names:
        print(f"no benchmark matches {argv}", file=sys.stderr)
        return 2
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        entry = getattr(module, "main", None)
        if entry is None:
            continue
        print(f"# {name}", flush=True)
        try:
            # Benchmarks that take an argv get an empty one: the selection words are not theirs.
            status = entry([]) if inspect.signature(entry).parameters else entry()
        except Exception:
            traceback.print_exc()
            status = 1
        if status:
            failed.append(name)
    if failed:
        print(f"# failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
