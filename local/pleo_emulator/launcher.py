"""Start the emulator as a child process.

Standard library and local.services only: SAM CLI's virtualenv imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from local.services import APP_PYTHON, ROOT, Service, _spawn, wait_for_http

if TYPE_CHECKING:
    from pathlib import Path


def start_pleo_emulator(
    port: int,
    log_dir: Path | None = None,
    python: Path = APP_PYTHON,
    redirect_uri: str | None = None,
) -> Service:
    """The emulator on 127.0.0.1:`port`, in the app's virtualenv, ready when this returns.
    `redirect_uri`: its default client's, kept across resets (default: the API on port 3000).

    When it refuses to start (a contract document is missing, say), the error carries the end
    of its log, so the reason shows where it was started, not only in a file.
    """
    argv = [str(python), "-m", "local.pleo_emulator", "--host", "127.0.0.1", "--port", str(port)]
    if redirect_uri is not None:
        argv += ["--redirect-uri", redirect_uri]
    process, log_path = _spawn("pleo-emulator", argv, log_dir, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/_emulator/health", process=process)
    except RuntimeError as error:
        raise RuntimeError(f"{error}\n{_log_tail(log_path)}") from None
    return Service("pleo-emulator", url, process, log_path)


def _log_tail(log_path: Path | None, lines: int = 20) -> str:
    if log_path is None:
        return "(its output was not kept: pass log_dir to see why)"
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(its log {log_path} cannot be read)"
    return "\n".join(text.splitlines()[-lines:]) or f"(its log {log_path} is empty)"
