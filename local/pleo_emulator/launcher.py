"""Start the emulator as a child process.

Standard library and local.services only: SAM CLI's virtualenv imports this module.
"""

from __future__ import annotations

from pathlib import Path

from local.services import APP_PYTHON, ROOT, Service, _spawn, wait_for_http


def start_pleo_emulator(
    port: int,
    log_dir: Path | None = None,
    python: Path = APP_PYTHON,
    redirect_uri: str | None = None,
) -> Service:
    """The emulator on 127.0.0.1:`port`, in the app's virtualenv, ready when this returns.
    `redirect_uri`: its default client's, kept across resets (default: the API on port 3000)."""
    argv = [str(python), "-m", "local.pleo_emulator", "--host", "127.0.0.1", "--port", str(port)]
    if redirect_uri is not None:
        argv += ["--redirect-uri", redirect_uri]
    process, log_path = _spawn("pleo-emulator", argv, log_dir, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/_emulator/health", process=process)
    return Service("pleo-emulator", url, process, log_path)
