"""Pleo client throughput against the emulator on loopback.

Requests per second of `PleoClient.introspect()` (one authenticated GET, parsed into a model),
with 0 ms and 200 ms of latency injected by the emulator's control API, at concurrency 1 and 16.
Each run is bounded in count and in time. The emulator's own rate limit is switched off, so the
figures measure the client and the loopback, not the 600/min throttle. Prints:

    bench: client.rps.latency0.c1 = N req/s
    bench: client.rps.latency0.c16 = N req/s
    bench: client.rps.latency200.c1 = N req/s
    bench: client.rps.latency200.c16 = N req/s

Run with `.venv/bin/python -m bench.bench_client [--requests 400] [--seconds 5]`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"


def _ensure_paths() -> None:
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


async def _measure(
    url: str, api_key: str, concurrency: int, requests: int, seconds: float
) -> float:
    """Requests per second: `concurrency` workers share `requests` calls, stopping at `seconds`."""
    import httpx

    from pleo_connector.pleo.auth import ApiKeyAuth
    from pleo_connector.pleo.client import PleoClient

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(limits=limits, timeout=10) as http,
        PleoClient(url, ApiKeyAuth(api_key), http=http) as pleo,
    ):
        await pleo.introspect()  # warm the connection pool
        remaining = requests
        done = 0
        started = time.perf_counter()
        stop_at = started + seconds

        async def worker() -> None:
            nonlocal remaining, done
            while remaining > 0 and time.perf_counter() < stop_at:
                remaining -= 1
                await pleo.introspect()
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done / elapsed if elapsed > 0 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="at most this many per run")
    parser.add_argument("--seconds", type=float, default=5.0, help="at most this long per run")
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
            for latency_ms in (0, 200):
                control.clear_faults()
                if latency_ms:
                    control.inject_fault("latency", latency_ms=latency_ms, rate=1.0)
                for concurrency in (1, 16):
                    rps = asyncio.run(
                        _measure(service.url, api_key, concurrency, args.requests, args.seconds)
                    )
                    name = f"client.rps.latency{latency_ms}.c{concurrency}"
                    print(f"bench: {name} = {rps:.1f} req/s", flush=True)
        finally:
            control.close()
            service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
