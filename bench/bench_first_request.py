"""First request: what a person waits for when a page hits a fresh Lambda environment.

Cold start (`bench_cold_start.py`) measures the handler module's init. The first request also
pays for what the handlers build lazily on purpose (boto3 and its clients, the first Secrets
Manager read, the first DynamoDB call, the Pleo client, Jinja2 templates), so this benchmark
invokes every function with its `events/` sample in a fresh worker, then once more warm, on the
local stand-ins (DynamoDB Local, moto's server, the Pleo emulator) with the same worker processes
the local world uses. In the same run and the same way it measures the baseline that nearly every
Python Lambda pays anyway: `import boto3`, one client and one DynamoDB call
(bench/first_request/baseline). A probe (bench/first_request/probe) loads each real handler and
times, inside the worker, the boto3 import, the sessions and clients, and every AWS and Pleo call,
so the report says where the difference to the baseline goes. It prints, per function:

    bench: first_request.<Function>.init_median = ... ms       (module import, as Lambda's Init)
    bench: first_request.<Function>.first_median = ... ms      (the first invocation after it)
    bench: first_request.<Function>.cold_median = ... ms       (init + first, per worker)
    bench: first_request.<Function>.ratio_to_baseline = ... x  (cold over the baseline's cold)
    bench: first_request.<Function>.warm_median = ... ms       (the next one, same worker)

The figures are loopback figures, from sources rather than the built artifact: they show where
the first request's time goes, not what AWS will measure.

Run with `.venv/bin/python -m bench.bench_first_request [--rounds 7]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.bench_cold_start import VARIANTS, Variant, bench_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.function_spec import FunctionSpec

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
PROBE_DIR = ROOT / "bench" / "first_request" / "probe"
BASELINE_DIR = ROOT / "bench" / "first_request" / "baseline"
STACK_DIR = ROOT / "bench" / "first_request" / "stack"
BASELINE = "baseline"
BASELINE_LABEL = "import boto3 + client + call"
STACK = "stack"
STACK_LABEL = "the same on the app's libraries"
TARGET_RATIO = 1.5
# The items the probe times, in the order the table shows them; the rest is the app's own code.
ITEMS = (
    "import boto3/botocore",
    "boto3 sessions and clients",
    "secretsmanager calls",
    "dynamodb calls",
    "kms calls",
    "sqs calls",
    "Pleo API calls",
    "lazy imports",
)


@dataclass
class Row:
    """One function (or the baseline) under one variant, over all its fresh workers."""

    name: str
    spec: FunctionSpec
    event: Any
    variant: Variant
    inits: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)
    warms: list[float] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name if not self.variant.name else f"{self.name}.{self.variant.name}"

    @property
    def colds(self) -> list[float]:
        return [init + first for init, first in zip(self.inits, self.firsts, strict=True)]

    def item_median(self, item: str) -> float:
        """Median over workers of one probed item, init and first request together."""
        return statistics.median(
            float(probe["init"].get(item, 0.0) + probe["first"].get(item, 0.0))
            for probe in self.probes
        )

    def rest_median(self, phase: str) -> float:
        """What the probe's items leave of init or of the first request: the app's own imports
        (init) or its own code (first request)."""
        return statistics.median(
            float(probe[f"{phase}_ms"]) - float(sum(probe[phase].values())) for probe in self.probes
        )

    def calls(self) -> dict[str, int]:
        return dict(self.probes[0]["calls"]) if self.probes else {}


def _ensure_paths() -> None:
    for path in (ROOT, ROOT / "layers" / "shared"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def probed(spec: FunctionSpec) -> FunctionSpec:
    """The same function, run through the probe: its first layer, in front of the real ones."""
    return dataclasses.replace(
        spec, handler="bench_probe.handler", layer_dirs=(str(PROBE_DIR), *spec.layer_dirs)
    )


def baseline_spec(like: FunctionSpec) -> FunctionSpec:
    """The baseline as a function: the environment (table, endpoints) of `like`, no layers."""
    return dataclasses.replace(
        like, name="BaselineFunction", code_dir=str(BASELINE_DIR), layer_dirs=()
    )


def stack_spec(like: FunctionSpec) -> FunctionSpec:
    """The stack's floor as a function: the baseline's work on the libraries of `like`'s layers
    (Powertools, pydantic), none of the app's code."""
    return dataclasses.replace(like, name="StackFunction", code_dir=str(STACK_DIR))


def probe_environment(
    build: Callable[[FunctionSpec], dict[str, str]], row: Row, out: Path
) -> Callable[[FunctionSpec], dict[str, str]]:
    real_handler = row.spec.handler

    def environment(spec: FunctionSpec) -> dict[str, str]:
        return {
            **build(spec),
            **row.variant.environment,
            "BENCH_PROBE_HANDLER": real_handler,
            "BENCH_PROBE_OUT": str(out),
        }

    return environment


def measure(rows: list[Row], build: Callable[[FunctionSpec], dict[str, str]], rounds: int) -> None:
    """Round-robin over the rows, so a busy moment of the shared machine hits all of them alike:
    each round starts one fresh worker per row, invokes it twice, and stops it."""
    from local.invoker import Invoker

    with tempfile.TemporaryDirectory(prefix="bench-probe-") as scratch:
        for round_number in range(rounds + 1):  # round 0 warms the page cache and is dropped
            for index, row in enumerate(rows):
                out = Path(scratch) / f"{index}-{round_number}.jsonl"
                spec = probed(row.spec)
                environment = probe_environment(build, row, out)
                with Invoker({spec.name: spec}, environment, log=None) as invoker:
                    first = invoker.invoke(spec.name, row.event)
                    warm = invoker.invoke(spec.name, row.event)
                if first.is_error or warm.is_error:
                    raise RuntimeError(f"{row.label}: the sample event failed: {first.payload}")
                if not round_number:
                    continue
                row.inits.append(first.init_ms or 0.0)
                row.firsts.append(first.duration_ms)
                row.warms.append(warm.duration_ms)
                row.probes.append(json.loads(out.read_text(encoding="utf-8").splitlines()[0]))


def _label(row: Row) -> str:
    return {BASELINE: BASELINE_LABEL, STACK: STACK_LABEL}.get(row.name, row.label)


def report(rows: list[Row], rounds: int) -> list[str]:
    baseline = next(row for row in rows if row.name == BASELINE)
    stack = next(row for row in rows if row.name == STACK)
    base = statistics.median(baseline.colds)
    floor = statistics.median(stack.colds)
    lines = [
        bench_line("first_request.baseline.cold_median", base, "ms"),
        bench_line("first_request.stack.cold_median", floor, "ms"),
        bench_line("first_request.stack.ratio_to_baseline", floor / base, "x"),
    ]
    for row in rows:
        if row in (baseline, stack):
            continue
        key = f"first_request.{row.label}"
        cold = statistics.median(row.colds)
        lines.append(bench_line(f"{key}.init_median", statistics.median(row.inits), "ms"))
        lines.append(bench_line(f"{key}.first_median", statistics.median(row.firsts), "ms"))
        lines.append(bench_line(f"{key}.cold_median", cold, "ms"))
        lines.append(bench_line(f"{key}.ratio_to_baseline", cold / base, "x"))
        lines.append(bench_line(f"{key}.ratio_to_stack", cold / floor, "x"))
        lines.append(bench_line(f"{key}.warm_median", statistics.median(row.warms), "ms"))

    lines += [
        "",
        f"First request on loopback, median of {rounds} fresh workers per row "
        f"(cold = init + first; target <= {TARGET_RATIO}x the baseline)",
        f"  {'':34} {'init':>8} {'first':>8} {'cold':>8} {'x base':>7} {'x stack':>8} {'warm':>7}",
    ]
    for row in rows:
        cold = statistics.median(row.colds)
        ratio = cold / base
        verdict = "" if row is baseline else ("met" if ratio <= TARGET_RATIO else "NOT met")
        lines.append(
            f"  {_label(row):34} {statistics.median(row.inits):6.1f}ms "
            f"{statistics.median(row.firsts):6.1f}ms {cold:6.1f}ms {ratio:6.2f}x "
            f"{cold / floor:7.2f}x {statistics.median(row.warms):5.1f}ms  {verdict}"
        )

    short: tuple[str, ...] = (
        "boto3",
        "clients",
        "secrets",
        "dynamodb",
        "kms",
        "sqs",
        "pleo",
        "lazy imp",
    )
    short += ("app init", "app 1st")
    lines += [
        "",
        "Where init + first go (ms, median per item over the workers). `boto3`: its first import,",
        "wherever it happens; `lazy imp`: the other modules the first request imports; the rest is",
        "the app's own: `app init` its imports and module code, `app 1st` its code on the request",
        "  " + f"{'':34}" + "".join(f"{name:>9}" for name in short),
    ]
    for row in rows:
        figures = [row.item_median(item) for item in ITEMS]
        figures += [row.rest_median("init"), row.rest_median("first")]
        lines.append("  " + f"{_label(row):34}" + "".join(f"{value:9.1f}" for value in figures))
    lines += ["", "AWS and Pleo calls of the first request (one worker):"]
    for row in rows:
        calls = ", ".join(f"{name} x{count}" for name, count in sorted(row.calls().items()))
        lines.append(f"  {_label(row):34} {calls or '-'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="fresh workers per function")
    args = parser.parse_args(argv if argv is not None else [])
    _ensure_paths()

    from local.functions import load_function_specs
    from local.services import PORTS, free_port
    from local.world import WorldConfig, environment_builder, world_or_temporary

    with tempfile.TemporaryDirectory(prefix="bench-first-request-") as state_dir:
        config = WorldConfig(
            ports={name: free_port() for name, *_ in PORTS}, state_dir=Path(state_dir)
        )
        with world_or_temporary(config, out=sys.stderr) as target:
            specs = load_function_specs(config.template, target.resources, config.base_dir)
            build = environment_builder(
                config, target.dynamodb_url, target.moto_url, target.emulator_url
            )
            health = specs["HealthFunction"]
            health_event = json.loads((EVENTS / "health.json").read_text(encoding="utf-8"))
            rows = [
                Row(BASELINE, baseline_spec(health), {}, VARIANTS[0]),
                Row(STACK, stack_spec(health), health_event, VARIANTS[0]),
            ]
            for variant in VARIANTS:
                for name, spec in sorted(specs.items()):
                    event_file = EVENTS / f"{Path(spec.code_dir).name}.json"
                    event = json.loads(event_file.read_text(encoding="utf-8"))
                    rows.append(Row(name, spec, event, variant))
            try:
                measure(rows, build, args.rounds)
            except RuntimeError as failure:
                print(failure, file=sys.stderr)
                return 1
    print("\n".join(report(rows, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
