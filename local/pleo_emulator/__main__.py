"""`python -m local.pleo_emulator [--host H] [--port N] [--redirect-uri URI]`: serve the emulator
until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING

from local.pleo_emulator.app import Emulator
from local.pleo_emulator.contract import ContractMissingError
from local.pleo_emulator.http import serve
from local.pleo_emulator.state import DEFAULT_REDIRECT_URI

if TYPE_CHECKING:
    from types import FrameType


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.pleo_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4010)
    parser.add_argument(
        "--public-url", help="the base URL callers use (the issuer); default http://HOST:PORT"
    )
    parser.add_argument(
        "--redirect-uri",
        default=DEFAULT_REDIRECT_URI,
        help="the default client's redirect URI, at start and after every reset "
        f"(default {DEFAULT_REDIRECT_URI})",
    )
    args = parser.parse_args(argv)
    emulator = Emulator(args.public_url or f"http://{args.host}:{args.port}", args.redirect_uri)
    try:
        emulator.warm_up()
    except ContractMissingError as error:
        sys.stderr.write(f"Pleo emulator not started: {error}\n")
        return 2
    server = serve(emulator, args.host, args.port)

    def stop(signum: int, frame: FrameType | None) -> None:
        emulator.shutdown.set()  # wakes requests that hang or wait on injected latency
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(f"Pleo emulator on {emulator.base_url}\n")
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
