"""First request: what a person waits for when a page hits a fresh Lambda environment.

Cold start (`bench_cold_start.py`) measures the handler module's init. The first request also
pays for what the handlers build lazily on purpose (boto3 clients, secrets, the Pleo client,
Jinja2 templates), so this benchmark invokes every function with its `events/` sample in a fresh
worker, then once more warm, on the local stand-ins (DynamoDB Local, moto's server, the Pleo
emulator) with the same worker processes the local world uses. It prints, per function:

    bench: first_request.<Function>.init_median = ... ms       (module import, as Lambda's Init)
    bench: first_request.<Function>.first_median = ... ms      (the first invocation after it)
    bench: first_request.<Function>.warm_median = ... ms       (the next one, same worker)

The figures are loopback figures, from sources rather than the built artifact: they show where
the first request's time goes, not what AWS will measure.

Run with `.venv/bin/python -m bench.bench_first_request [--rounds 5]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def _ensure_paths() -> None:
    for path in (ROOT, ROOT / "layers" / "shared"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh workers per function")
    args = parser.parse_args(argv if argv is not None else [])
    _ensure_paths()

    from local.functions import load_function_specs
    from local.invoker import Invoker
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
            rows: list[tuple[str, float, float, float]] = []
            for name, spec in sorted(specs.items()):
                event_file = EVENTS / f"{Path(spec.code_dir).name}.json"
                event = json.loads(event_file.read_text(encoding="utf-8"))
                inits: list[float] = []
                firsts: list[float] = []
                warms: list[float] = []
                for _ in range(args.rounds):
                    with Invoker({name: spec}, build, log=None) as invoker:
                        first = invoker.invoke(name, event)
                        warm = invoker.invoke(name, event)
                    if first.is_error or warm.is_error:
                        print(f"{name}: the sample event failed: {first.payload}", file=sys.stderr)
                        return 1
                    inits.append(first.init_ms or 0.0)
                    firsts.append(first.duration_ms)
                    warms.append(warm.duration_ms)
                row = (
                    name,
                    statistics.median(inits),
                    statistics.median(firsts),
                    statistics.median(warms),
                )
                rows.append(row)
                print(f"bench: first_request.{name}.init_median = {row[1]:.1f} ms", flush=True)
                print(f"bench: first_request.{name}.first_median = {row[2]:.1f} ms", flush=True)
                print(f"bench: first_request.{name}.warm_median = {row[3]:.1f} ms", flush=True)

    print(f"\nFirst request on loopback, median of {args.rounds} fresh workers per function")
    print(f"  {'function':26} {'init':>9} {'first':>9} {'warm':>9}")
    for name, init_ms, first_ms, warm_ms in rows:
        print(f"  {name:26} {init_ms:7.1f}ms {first_ms:7.1f}ms {warm_ms:7.1f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
