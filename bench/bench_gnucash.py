"""GnuCash reader memory and time: read and plan a generated book of 100,000 entities (accounts,
vendors, jobs and customers: `local.gnucash_books.write_large_book`) as the worker does, against
an empty Pleo (everything is created) and against a fully synced one (nothing to do). Prints:

    bench: gnucash_100k_peak_rss = ... MB      (the larger of the two scenarios; goal <= 256)
    bench: gnucash_100k_s = ... s              (open, read and plan: the slower of the two)
    bench: gnucash_100k.<scenario>.peak_rss = ... MB
    bench: gnucash_100k.<scenario>.baseline_rss = ... MB
    bench: gnucash_100k.<scenario>.read_plan_s = ... s
    bench: gnucash_100k.read_only_s = ... s     (open and stream every record, no planning)
    bench: gnucash_100k.book_size = ... MB
    bench: gnucash_100k.generate_s = ... s

Each scenario runs in a fresh interpreter (as bench_planner does), so its peak RSS is its own:
the interpreter, the layer's imports and piecash's, the Pleo entries a worker would hold (all of
them, in the synced scenario), then opening the book, streaming it and planning. The baseline is
the RSS just before the book is opened. Run with `.venv/bin/python -m bench.bench_gnucash
[--entities N]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
SCENARIOS = ("empty_pleo", "synced_pleo", "read_only")
CHOICES = {"tag_groups": ["JOBS", "CUSTOMERS"], "tax_codes": True, "vendors": True}


def _ensure_paths() -> None:
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(scenario: str, book: str) -> dict[str, Any]:
    """Read (and plan) the book once in this process."""
    _ensure_paths()
    from bench.bench_planner import synced_entries
    from pleo_connector.adapters.gnucash import GnuCashAdapter, GnuCashSettings
    from pleo_connector.adapters.sources import SourceOpener, SourcePolicy
    from pleo_connector.installation_config import SyncChoices
    from pleo_connector.sync.planner import plan_sync

    adapter = GnuCashAdapter(SourceOpener(SourcePolicy(allow_local=True)))
    settings = GnuCashSettings(book=book)
    choices = SyncChoices.model_validate(CHOICES)
    pleo = []
    if scenario == "synced_pleo":
        with adapter.open_reader(settings) as reader:
            pleo = synced_entries(reader)  # type: ignore[arg-type]
    owned = {(entry.kind, entry.pleo_id) for entry in pleo if entry.pleo_id is not None}
    baseline = _rss_mb()
    started = time.perf_counter()
    records = changes = problems = 0
    with adapter.open_reader(settings) as reader:
        if scenario == "read_only":
            for stream in (reader.tags, reader.tax_codes, reader.vendors, reader.accounts):
                records += sum(1 for _ in stream())
        else:
            plan = plan_sync(reader, pleo, owned, choices)
            changes, problems = len(plan.changes), len(plan.problems)
    seconds = time.perf_counter() - started
    expected = {"synced_pleo": changes == 0, "empty_pleo": changes > 0, "read_only": records > 0}
    return {
        "scenario": scenario,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _rss_mb(),
        "seconds": seconds,
        "changes": changes,
        "records": records,
        "problems": problems,
        "ok": expected[scenario] and not problems,
    }


def _run_child(scenario: str, book: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.bench_gnucash", "--child", scenario, "--book"]
    done = subprocess.run(
        [*command, str(book)], cwd=ROOT, capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"{scenario} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--book", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.book)))
        return 0

    from local.gnucash_books import write_large_book

    with tempfile.TemporaryDirectory(prefix="bench-gnucash-") as folder:
        book = Path(folder) / "large.gnucash"
        started = time.perf_counter()
        write_large_book(book, args.entities)
        generated_s = time.perf_counter() - started
        size_mb = book.stat().st_size / (1024 * 1024)
        results = {scenario: _run_child(scenario, book) for scenario in SCENARIOS}

    planned = [results["empty_pleo"], results["synced_pleo"]]
    print(f"bench: gnucash_100k_peak_rss = {max(r['peak_rss_mb'] for r in planned):.1f} MB")
    print(f"bench: gnucash_100k_s = {max(r['seconds'] for r in planned):.2f} s")
    for r in planned:
        name = f"gnucash_100k.{r['scenario']}"
        print(f"bench: {name}.peak_rss = {r['peak_rss_mb']:.1f} MB")
        print(f"bench: {name}.baseline_rss = {r['baseline_rss_mb']:.1f} MB")
        print(f"bench: {name}.read_plan_s = {r['seconds']:.2f} s")
    print(f"bench: gnucash_100k.read_only_s = {results['read_only']['seconds']:.2f} s")
    print(f"bench: gnucash_100k.book_size = {size_mb:.1f} MB")
    print(f"bench: gnucash_100k.generate_s = {generated_s:.2f} s")
    print()
    print(f"{'scenario':<14}{'changes':>10}{'records':>10}{'before MB':>11}{'peak MB':>10}{'s':>8}")
    for r in results.values():
        print(
            f"{r['scenario']:<14}{r['changes']:>10}{r['records']:>10}"
            f"{r['baseline_rss_mb']:>11.1f}{r['peak_rss_mb']:>10.1f}{r['seconds']:>8.2f}"
        )
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
