"""Planner memory and time: plan a generated source of 100,000 entities (mixed kinds) against an
empty Pleo (everything is created) and against a fully synced one (nothing to do). Prints:

    bench: planner_100k_peak_rss = ... MB     (the larger of the two scenarios; goal <= 256)
    bench: planner_100k_s = ... s             (the slower of the two)
    bench: planner_100k.<scenario>.peak_rss = ... MB
    bench: planner_100k.<scenario>.baseline_rss = ... MB
    bench: planner_100k.<scenario>.plan_s = ... s

Each scenario runs in a fresh interpreter, so its peak RSS is its own: the interpreter, the
layer's imports, the Pleo entries a worker would hold (all of them, in the synced scenario), and
the planning. The source streams from a generator, as a reader streams a document. The baseline
is the RSS just before planning. Run with `.venv/bin/python -m bench.bench_planner [--entities N]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
SCENARIOS = ("empty_pleo", "synced_pleo")
GROUPS = 5
TAX_CODES = 100

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    from pleo_connector.adapters.records import (
        SourceAccount,
        SourceTag,
        SourceTagGroup,
        SourceTaxCode,
        SourceVendor,
    )
    from pleo_connector.sync.model import Entry


def _ensure_paths() -> None:
    """Make `pleo_connector` importable when run as a script or with -m."""
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


def split(entities: int) -> dict[str, int]:
    """How many of each kind make `entities`: half tags, then vendors, then accounts."""
    rest = entities - GROUPS - TAX_CODES
    tags, vendors = rest // 2, rest * 3 // 10
    return {
        "tag_groups": GROUPS,
        "tags": tags,
        "tax_codes": TAX_CODES,
        "vendors": vendors,
        "accounts": rest - tags - vendors,
    }


class GeneratedReader:
    """A source of the given size, generated record by record (nothing is held)."""

    def __init__(self, entities: int) -> None:
        self.counts = split(entities)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def tag_groups(self) -> Iterator[SourceTagGroup]:
        from pleo_connector.adapters.records import SourceTagGroup

        for n in range(self.counts["tag_groups"]):
            yield SourceTagGroup(code=f"DIM{n}", name=f"Dimension {n}")

    def tags(self) -> Iterator[SourceTag]:
        from pleo_connector.adapters.records import SourceTag

        for n in range(self.counts["tags"]):
            yield SourceTag(
                group_code=f"DIM{n % GROUPS}", code=f"T-{n:06d}", name=f"Tag number {n}"
            )

    def tax_codes(self) -> Iterator[SourceTaxCode]:
        from pleo_connector.adapters.records import SourceTaxCode

        for n in range(self.counts["tax_codes"]):
            yield SourceTaxCode(code=f"TX{n}", name=f"Tax {n}", rate=Decimal(n % 26) / 100)

    def vendors(self) -> Iterator[SourceVendor]:
        from pleo_connector.adapters.records import SourceVendor

        for n in range(self.counts["vendors"]):
            yield SourceVendor(
                external_id=f"V-{n:06d}",
                code=f"V-{n:06d}",
                name=f"Vendor company number {n} ApS",
                currency=("DKK", "SEK", "EUR")[n % 3],
                country=("DK", "SE", "DE")[n % 3],
                registration_number=f"{10_000_000 + n}",
                tax_registration_number=f"DK{10_000_000 + n}",
            )

    def accounts(self) -> Iterator[SourceAccount]:
        from pleo_connector.adapters.records import SourceAccount

        for n in range(self.counts["accounts"]):
            yield SourceAccount(
                external_id=f"{100_000 + n}",
                code=f"{100_000 + n}",
                name=f"Account {n}",
                tax_code=f"TX{n % TAX_CODES}",
            )


def synced_entries(reader: GeneratedReader) -> list[Entry]:
    """Pleo as a full sync of `reader` leaves it, as the Pleo-side reader would describe it."""
    from pleo_connector.sync import normalise
    from pleo_connector.sync.model import Entry, Kind, match_key, tag_key

    entries: list[Entry] = []

    def add(kind: Kind, key: str, values: dict[str, Any], parent: str | None = None) -> None:
        pleo_id = f"00000000-0000-4000-8000-{len(entries):012d}"  # the length of a UUID
        entries.append(Entry(kind, key, values, pleo_id=pleo_id, parent=parent))

    for group in reader.tag_groups():
        values = normalise.tag_group_values(code=group.code, name=group.name)
        add(Kind.TAG_GROUP, match_key(group.code), values)
    for tag in reader.tags():
        values = normalise.tag_values(code=tag.code, name=tag.name)
        add(Kind.TAG, tag_key(tag.group_code, tag.code), values, match_key(tag.group_code))
    for tax in reader.tax_codes():
        values = normalise.tax_code_values(
            code=tax.code, name=tax.name, rate_value=float(tax.rate), type=tax.kind.value
        )
        add(Kind.TAX_CODE, match_key(tax.code), values)
    for vendor in reader.vendors():
        values = normalise.vendor_values(
            external_id=vendor.external_id,
            code=vendor.code,
            name=vendor.name,
            default_currency=vendor.currency,
            country_code=vendor.country,
            registration_number=vendor.registration_number,
            tax_registration_number=vendor.tax_registration_number,
        )
        add(Kind.VENDOR, match_key(vendor.external_id), values)
    for account in reader.accounts():
        values = normalise.account_values(
            external_id=account.external_id,
            code=account.code,
            name=account.name,
            tax_code_external_id=account.tax_code,
        )
        add(Kind.ACCOUNT, match_key(account.external_id), values)
    return entries


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(scenario: str, entities: int) -> dict[str, Any]:
    """Plan once in this process; the figures, and whether the plan is the expected one."""
    _ensure_paths()
    from pleo_connector.installation_config import SyncChoices
    from pleo_connector.sync.model import Action
    from pleo_connector.sync.planner import plan_sync

    choices = SyncChoices(tag_groups=[f"DIM{n}" for n in range(GROUPS)])
    pleo = synced_entries(GeneratedReader(entities)) if scenario == "synced_pleo" else []
    owned = {(entry.kind, entry.pleo_id) for entry in pleo if entry.pleo_id is not None}
    baseline = _rss_mb()
    started = time.perf_counter()
    with GeneratedReader(entities) as reader:
        plan = plan_sync(reader, pleo, owned, choices)
    seconds = time.perf_counter() - started
    creates = sum(1 for change in plan.changes if change.action is Action.CREATE)
    expected = not plan.changes if scenario == "synced_pleo" else creates == entities
    return {
        "scenario": scenario,
        "entities": entities,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _rss_mb(),
        "plan_s": seconds,
        "changes": len(plan.changes),
        "problems": len(plan.problems),
        "ok": expected and not plan.problems,
    }


def _run_child(scenario: str, entities: int) -> dict[str, Any]:
    """One scenario in a fresh interpreter, so that its peak RSS is its own."""
    command = [sys.executable, "-m", "bench.bench_planner", "--child", scenario]
    done = subprocess.run(
        [*command, "--entities", str(entities)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{scenario} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.entities)))
        return 0

    results = [_run_child(scenario, args.entities) for scenario in SCENARIOS]
    print(f"bench: planner_100k_peak_rss = {max(r['peak_rss_mb'] for r in results):.1f} MB")
    print(f"bench: planner_100k_s = {max(r['plan_s'] for r in results):.2f} s")
    for r in results:
        name = f"planner_100k.{r['scenario']}"
        print(f"bench: {name}.peak_rss = {r['peak_rss_mb']:.1f} MB")
        print(f"bench: {name}.baseline_rss = {r['baseline_rss_mb']:.1f} MB")
        print(f"bench: {name}.plan_s = {r['plan_s']:.2f} s")
    print()
    header = f"{'scenario':<14}{'entities':>10}{'changes':>10}{'before MB':>11}{'peak MB':>10}"
    print(f"{header}{'s':>8}")
    for r in results:
        print(
            f"{r['scenario']:<14}{r['entities']:>10}{r['changes']:>10}"
            f"{r['baseline_rss_mb']:>11.1f}{r['peak_rss_mb']:>10.1f}{r['plan_s']:>8.2f}"
        )
    # A plan other than the expected one (all created, or nothing to do) is a broken planner.
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
