"""Start and stop the local stand-ins for AWS: DynamoDB Local (the real engine) and moto's server.

Standard library only, so both virtualenvs (the app's and SAM CLI's) can import it. Each service
is a child process in its own process group, so stopping it leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_PYTHON = ROOT / ".venv" / "bin" / "python"
# Starts DynamoDB Local bound to 127.0.0.1 (its jar has no -host flag); compiled once, cached.
DYNAMODB_LOOPBACK_SOURCE = ROOT / "local" / "DynamoDBLocalLoopback.java"
DYNAMODB_LOOPBACK_CLASS = "DynamoDBLocalLoopback"
LOCAL_REGION = "eu-west-1"

# Credentials that only the local stand-ins accept: no AWS account is ever reached.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",  # moto and DynamoDB Local accept anything
    "AWS_DEFAULT_REGION": LOCAL_REGION,
    "AWS_REGION": LOCAL_REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def cache_dir() -> Path:
    base = os.environ.get("PLEO_CONNECTOR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pleo-connector"
    )
    return Path(base)


def free_port() -> int:
    """A loopback port nobody listens on now (tests must not clash with a person's `make up`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_http(
    url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `url` until it answers at all (any HTTP status), or fail with a clear message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback only
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@dataclass
class Service:
    """A running child process and the URL it serves."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)


def _spawn(
    name: str,
    argv: list[str],
    log_dir: Path | None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], Path | None]:
    log_path = None
    stdout: int | object = subprocess.DEVNULL
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        stdout = log_path.open("ab")
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=stdout,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        # The child holds its own copy of the descriptor.
        if hasattr(stdout, "close"):
            stdout.close()
    return process, log_path


def dynamodb_loopback_classes(jar: Path) -> Path:
    """The folder holding the compiled loopback launcher, compiled now if this version of its
    source has not been. One folder per source version, filled atomically: several test runs may
    start DynamoDB Local at once."""
    source = DYNAMODB_LOOPBACK_SOURCE.read_bytes()
    folder = jar.parent / f"loopback-{hashlib.sha256(source).hexdigest()[:16]}"
    if (folder / f"{DYNAMODB_LOOPBACK_CLASS}.class").exists():
        return folder
    javac = shutil.which("javac")
    if javac is None:
        raise FileNotFoundError(
            "javac is missing: DynamoDB Local is started bound to 127.0.0.1 through a small "
            "launcher compiled with the JDK (install openjdk-17-jdk-headless)"
        )
    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        [javac, "-cp", str(jar), "-d", str(partial), str(DYNAMODB_LOOPBACK_SOURCE)],
        check=True,
        capture_output=True,
    )
    try:
        partial.rename(folder)
    except OSError:  # another run compiled the same source first
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def start_dynamodb_local(port: int, log_dir: Path | None = None) -> Service:
    """The real DynamoDB Local engine, in memory, listening on 127.0.0.1 only (fetched by
    `local/bootstrap.sh dynamodb`)."""
    home = cache_dir() / "dynamodb-local"
    jar = home / "DynamoDBLocal.jar"
    if not jar.exists():
        raise FileNotFoundError(f"{jar} is missing: run `local/bootstrap.sh dynamodb` (make deps)")
    argv = [
        "java",
        f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
        "-cp",
        f"{jar}{os.pathsep}{dynamodb_loopback_classes(jar)}",
        DYNAMODB_LOOPBACK_CLASS,
        "-inMemory",
        "-sharedDb",
        "-port",
        str(port),
        "-disableTelemetry",
    ]
    process, log_path = _spawn("dynamodb-local", argv, log_dir, cwd=home)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url, process=process)
    return Service("dynamodb-local", url, process, log_path)


def start_moto_server(port: int, log_dir: Path | None = None) -> Service:
    """moto's server for KMS, SQS, Secrets Manager, SSM and EventBridge."""
    moto = APP_PYTHON.parent / "moto_server"
    argv = [str(moto), "-H", "127.0.0.1", "-p", str(port)]
    process, log_path = _spawn("moto", argv, log_dir, env={**os.environ, **LOCAL_AWS_ENV})
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/moto-api/", process=process)
    return Service("moto", url, process, log_path)


def aws_endpoint_env(dynamodb_url: str, moto_url: str) -> dict[str, str]:
    """Environment that points every boto3 client at the local stand-ins (botocore reads these)."""
    return {
        **LOCAL_AWS_ENV,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
    }


if __name__ == "__main__":  # pragma: no cover - manual check
    ddb = start_dynamodb_local(free_port())
    moto_service = start_moto_server(free_port())
    sys.stdout.write(f"{ddb.url} {moto_service.url}\n")
    ddb.stop()
    moto_service.stop()


# The local world's services, their default ports and the variables that change them.
PORTS = (
    ("api", 3000, "LOCAL_API_PORT", "local API (SAM CLI's LocalApigwService)"),
    ("emulator", 4010, "PLEO_EMULATOR_PORT", "Pleo emulator (OAuth + API)"),
    ("dynamodb", 8000, "DYNAMODB_LOCAL_PORT", "DynamoDB Local"),
    ("moto", 5000, "MOTO_PORT", "moto server (KMS, SQS, Secrets Manager, SSM)"),
)


def default_port(name: str) -> int:
    """The port of `name` in PORTS: its environment variable, else its default."""
    _, default, variable, _ = next(entry for entry in PORTS if entry[0] == name)
    return int(os.environ.get(variable) or default)
