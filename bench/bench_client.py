"""Pleo client throughput against the emulator on loopback, beside bare httpx.

Requests per second of `PleoClient.introspect()` (one authenticated GET, parsed into a model),
with 0 ms and 200 ms of latency injected by the emulator's control API, at concurrency 1 and 16.
The baseline is bare httpx making the same request (same URL, same Authorization header, the
JSON body parsed, the same connection limits) against the same emulator, in the same run: runs of
the two alternate `--repeats` times per setting and the medians are compared, so a busy moment of
the shared machine hits both alike. Each run is bounded in count and in time. The emulator's own
rate limit is switched off, so the figures measure the client and the loopback, not the 600/min
throttle. Prints, per latency L and concurrency C:

    bench: client.rps.latencyL.cC = N req/s           (PleoClient)
    bench: client.httpx_rps.latencyL.cC = N req/s     (bare httpx)
    bench: client.ratio_to_httpx.latencyL.cC = R x    (the goal is >= 0.5 at 0 ms latency)

Run with `.venv/bin/python -m bench.bench_client [--requests 400] [--seconds 5] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
TARGET_RATIO = 0.5


def _ensure_paths() -> None:
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


async def _measure_bare(
    url: str, api_key: str, concurrency: int, requests: int, seconds: float
) -> tuple[float, float]:
    """The same as `_measure`, with httpx alone: the GET, its status checked, its JSON parsed."""
    import httpx

    header = "Basic " + base64.b64encode(f"{api_key}:".encode()).decode("ascii")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=10, headers={"Authorization": header}
    ) as http:

        async def introspect() -> None:
            response = await http.get("/v1/introspect")
            response.raise_for_status()
            response.json()

        return await _run(introspect, concurrency, requests, seconds)


async def _measure(
    url: str, api_key: str, concurrency: int, requests: int, seconds: float
) -> tuple[float, float]:
    """Requests per second: `concurrency` workers share `requests` calls, stopping at `seconds`."""
    import httpx

    from pleo_connector.pleo.auth import ApiKeyAuth
    from pleo_connector.pleo.client import PleoClient

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(limits=limits, timeout=10) as http,
        PleoClient(url, ApiKeyAuth(api_key), http=http) as pleo,
    ):

        async def introspect() -> None:
            await pleo.introspect()

        return await _run(introspect, concurrency, requests, seconds)


async def _run(
    call: Callable[[], Awaitable[None]], concurrency: int, requests: int, seconds: float
) -> tuple[float, float]:
    """Requests per second of `call`, after one call that warms the connection pool, and this
    process's CPU milliseconds per request (the emulator's are its own process's)."""
    await call()
    remaining = requests
    done = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    stop_at = started + seconds

    async def worker() -> None:
        nonlocal remaining, done
        while remaining > 0 and time.perf_counter() < stop_at:
            remaining -= 1
            await call()
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_ms = (time.process_time() - cpu_started) * 1000 / max(done, 1)
    return (done / elapsed if elapsed > 0 else 0.0), cpu_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="at most this many per run")
    parser.add_argument("--seconds", type=float, default=5.0, help="at most this long per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternating")
    args = parser.parse_args(argv if argv is not None else [])
    _ensure_paths()

    from local.pleo_emulator.control_client import EmulatorControl
    from local.pleo_emulator.launcher import start_pleo_emulator
    from local.services import free_port

    with tempfile.TemporaryDirectory(prefix="bench-client-") as logs:
        service = start_pleo_emulator(free_port(), Path(logs))
        control = EmulatorControl(service.url)
        try:
            control.reset()
            control.set_rate_limit(None)
            api_key = control.issue_api_key()
            rows: list[tuple[str, float, float, float, float]] = []
            for latency_ms in (0, 200):
                control.clear_faults()
                if latency_ms:
                    control.inject_fault("latency", latency_ms=latency_ms, rate=1.0)
                for concurrency in (1, 16):
                    runs: dict[str, list[float]] = {"httpx": [], "client": []}
                    cpu: dict[str, list[float]] = {"httpx": [], "client": []}
                    for _ in range(args.repeats):
                        for kind, measure in (("httpx", _measure_bare), ("client", _measure)):
                            rps, cpu_ms = asyncio.run(
                                measure(
                                    service.url, api_key, concurrency, args.requests, args.seconds
                                )
                            )
                            runs[kind].append(rps)
                            cpu[kind].append(cpu_ms)
                    setting = f"latency{latency_ms}.c{concurrency}"
                    bare = statistics.median(runs["httpx"])
                    client = statistics.median(runs["client"])
                    bare_cpu = statistics.median(cpu["httpx"])
                    client_cpu = statistics.median(cpu["client"])
                    rows.append((setting, bare, client, bare_cpu, client_cpu))
                    print(f"bench: client.rps.{setting} = {client:.1f} req/s", flush=True)
                    print(f"bench: client.httpx_rps.{setting} = {bare:.1f} req/s", flush=True)
                    ratio = client / bare if bare else 0.0
                    print(f"bench: client.ratio_to_httpx.{setting} = {ratio:.2f} x", flush=True)
                    for kind, figure in (("client", client_cpu), ("httpx", bare_cpu)):
                        name = f"client.{kind}_cpu_ms_per_request.{setting}"
                        print(f"bench: {name} = {figure:.2f} ms", flush=True)
        finally:
            control.close()
            service.stop()
    print(f"\nPleoClient.introspect() and bare httpx, median of {args.repeats} alternating runs")
    print(
        f"  {'setting':18} {'httpx':>10} {'client':>10} {'ratio':>7} {'CPU ms/request':>20}"
        f"  goal >= {TARGET_RATIO}x at 0 ms"
    )
    for setting, bare, client, bare_cpu, client_cpu in rows:
        ratio = client / bare if bare else 0.0
        shown = f"{bare_cpu:.2f} / {client_cpu:.2f}"
        print(f"  {setting:18} {bare:6.1f}/s {client:7.1f}/s {ratio:6.2f}x {shown:>20}")
    print("  (CPU: this process's, httpx / client; the emulator runs in its own process)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
