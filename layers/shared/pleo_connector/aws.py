"""Low-level boto3 clients, built lazily and once per process, for every module that calls AWS.

boto3 is imported here, inside the function, so importing the layer costs nothing until a client
is needed. The cache key includes the endpoint and region environment, so tests that point boto3
at local stand-ins never get a client built for another endpoint.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")
_clients: dict[tuple[str, ...], Any] = {}
_sessions: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()


def aws_client(service: str) -> Any:
    """A shared client for `service` (short timeouts, standard retries with backoff)."""
    service_variable = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
    key = (
        service,
        *(os.environ.get(name, "") for name in (*_ENDPOINT_VARIABLES, service_variable)),
    )
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=2,
                read_timeout=5,
                retries={"mode": "standard", "max_attempts": 3},
            )
            # One session per endpoint environment: a session loads botocore's data once, and
            # each further client from it costs a fraction of the first.
            session = _sessions.get(key[1:-1])
            if session is None:
                session = _sessions[key[1:-1]] = boto3.session.Session()
            client = session.client(service, config=config)  # type: ignore[call-overload]
            _clients[key] = client
        return client


def aws_errors() -> tuple[type[Exception], ...]:
    """botocore's own exception roots, for `except aws_errors():`. An except clause is evaluated
    only when something is raised, so botocore is still imported only when it is needed; and
    catching these alone lets a programming error surface as itself."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def forget_clients() -> None:
    """Drop cached clients (tests that change credentials or endpoints call this)."""
    with _lock:
        _clients.clear()
        _sessions.clear()
