"""Start the emulator as a child process.

Standard library and local.services only: SAM CLI's virtualenv imports this module.
"""

from __future__ import annotations

from pathlib import Path

from local.services import APP_PYTHON, ROOT, Service, _spawn, wait_for_http


def start_pleo_emulator(
    port: int, log_dir: Path | None = None, python: Path = APP_PYTHON
) -> Service:
    """The emulator on 127.0.0.1:`port`, in the app's virtualenv, ready when this returns."""
    argv = [str(python), "-m", "local.pleo_emulator", "--host", "127.0.0.1", "--port", str(port)]
    process, log_path = _spawn("pleo-emulator", argv, log_dir, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/_emulator/health", process=process)
    return Service("pleo-emulator", url, process, log_path)
