"""One HTTP/1.1 exchange over a plain socket, for requests httpx will not send: two
Content-Length headers, a malformed chunked body, a garbled request line, any method name."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(
    base_url: str,
    request: bytes,
    *,
    head: bool = False,
    shut_write: bool = False,
    timeout: float = 10,
) -> RawResponse:
    """Send `request` byte for byte and read the one answer (`head`: it has no body;
    `shut_write`: half-close after sending, so a server waiting for more body meets its end).

    A server that closes without answering raises http.client.RemoteDisconnected; one that never
    answers raises TimeoutError after `timeout` seconds. Both fail the test that meets them.
    """
    split = urlsplit(base_url)
    assert split.hostname is not None
    assert split.port is not None
    with socket.create_connection((split.hostname, split.port), timeout=timeout) as sock:
        sock.sendall(request)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        answer = http.client.HTTPResponse(sock, method="HEAD" if head else "GET")
        answer.begin()
        body = answer.read()
        return RawResponse(answer.status, answer.headers, body)


def request_bytes(
    method: str,
    path: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    """A request exactly as given: no header is added but Host and `Connection: close`."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
