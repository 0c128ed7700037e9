"""Small HTTP plumbing: request/response values, errors, routing and the threaded server."""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    import threading

JSON_UTF8 = "application/json;charset=UTF-8"
MAX_BODY = 10 * 1024 * 1024
_MAX_CHUNK_LINE = 1024
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,8}")


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client: str = "127.0.0.1"

    def arg(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def args(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        if not self.body:
            raise HTTPError(bad_request("a JSON body is required"))
        try:
            return json.loads(self.body)
        except ValueError:
            raise HTTPError(bad_request("the body is not valid JSON")) from None

    def json_object(self) -> dict[str, Any]:
        value = self.json()
        if not isinstance(value, dict):
            raise HTTPError(bad_request("the body must be a JSON object"))
        return value

    def form(self) -> dict[str, str]:
        """application/x-www-form-urlencoded body; a repeated field is refused (RFC 6749 §3.1)."""
        try:
            pairs = parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise HTTPError(bad_request("the form body is not UTF-8")) from None
        result: dict[str, str] = {}
        for key, value in pairs:
            if key in result:
                raise HTTPError(bad_request(f"the parameter {key!r} is repeated"))
            result[key] = value
        return result

    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except Exception:
            return {}
        return {key: morsel.value for key, morsel in jar.items()}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class Drop:
    """Answer nothing and close the connection (a simulated timeout)."""


class HTTPError(Exception):
    """Stops a handler with a ready response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(
    status: int,
    payload: Any,
    *,
    content_type: str = JSON_UTF8,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Response(status, body, [("Content-Type", content_type), *(headers or [])])


def api_error(status: int, error_type: str, message: str, **extra: str) -> Response:
    """Vendors' ExceptionInfo `{type, message}` (Pleo's one documented error body), for all."""
    headers = list(extra.items())
    return json_response(status, {"type": error_type, "message": message}, headers=headers)


def bad_request(message: str) -> Response:
    return api_error(400, "bad_request", message)


def not_found(message: str = "not found") -> Response:
    return api_error(404, "not_found", message)


def conflict(message: str) -> Response:
    return api_error(409, "conflict", message)


def forbidden(message: str) -> Response:
    return api_error(403, "forbidden", message)


def html_response(status: int, page: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(
        status,
        page.encode("utf-8"),
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            (
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; "
                "frame-ancestors 'none'",
            ),
            *(headers or []),
        ],
    )


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    kind: str  # "api", "oauth" or "control"

    @property
    def operation(self) -> str:
        return f"{self.method} {self.template}"


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, kind: str) -> None:
        parts = re.split(r"(\{[^}/]+\})", template)
        pattern = "".join(
            f"(?P<{p[1:-1]}>[^/:]+)" if p.startswith("{") else re.escape(p) for p in parts
        )
        self._routes.append(Route(method, template, re.compile(f"^{pattern}$"), handler, kind))
        # Literal paths win over templated ones (`/v0/tags/archive` before `/v0/tags/{tagId}`).
        self._routes.sort(key=lambda route: route.template.count("{"))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """(route, path params, the methods the path allows: empty when the path is unknown)."""
        allowed: list[str] = []
        for route in self._routes:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict(), [method]
            if route.method not in allowed:
                allowed.append(route.method)
        return None, {}, allowed

    def serves(self, method: str) -> bool:
        """Whether any path answers `method` (an unknown method is a 405 wherever it goes)."""
        return any(route.method == method for route in self._routes)


class Application:
    """What the server calls: one request in, one response (or Drop) out."""

    def handle(self, request: Request) -> Response | Drop:  # pragma: no cover - interface
        raise NotImplementedError

    def drop_delay(self) -> threading.Event:  # pragma: no cover - interface
        raise NotImplementedError


def make_handler(app: Application) -> type[BaseHTTPRequestHandler]:
    class EmulatorRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave in separate writes
        server_version = "PleoEmulator/1"
        sys_version = ""

        def _serve(self) -> None:
            split = urlsplit(self.path)
            body = self._read_body()
            if isinstance(body, Response):
                self._write(body, close=True)  # the next request's start is unknown
                return
            headers = {key.lower(): value for key, value in self.headers.items()}
            request = Request(
                method=self.command,
                path=split.path,
                query=parse_qsl(split.query, keep_blank_values=True),
                headers=headers,
                body=body,
                client=self.client_address[0],
            )
            try:
                result = app.handle(request)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                result = api_error(500, "internal_error", "the emulator failed on this request")
            if isinstance(result, Drop):
                self.close_connection = True
                return
            self._write(result)

        def _read_body(self) -> bytes | Response:
            """The body by Content-Length or chunked coding, or a 400 when its framing is unsound
            (a smuggling-shaped request is refused rather than guessed at)."""
            lengths = self.headers.get_all("Content-Length") or []
            codings = self.headers.get_all("Transfer-Encoding") or []
            if codings:
                if lengths:
                    return bad_request("send Content-Length or Transfer-Encoding, not both")
                if ",".join(codings).strip().lower() != "chunked":
                    return bad_request("chunked is the only transfer coding accepted")
                return self._read_chunked()
            if not lengths:
                return b""
            values = {value.strip() for value in ",".join(lengths).split(",")}
            if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values))):
                return bad_request("Content-Length must be one non-negative integer")
            length = int(values.pop())
            if length > MAX_BODY:
                return bad_request("the body is too large")
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                return bad_request("the body is shorter than its Content-Length")
            return body

        def _read_chunked(self) -> bytes | Response:
            body = bytearray()
            while True:
                line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
                size = line.split(b";", 1)[0].strip()
                if not line.endswith(b"\n") or not _HEX.fullmatch(size):
                    return bad_request("the chunked body is malformed")
                length = int(size, 16)
                if len(body) + length > MAX_BODY:
                    return bad_request("the body is too large")
                if length == 0:
                    break
                chunk = self.rfile.read(length)
                if len(chunk) != length or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    return bad_request("the chunked body is malformed")
                body += chunk
            while True:  # trailer fields, up to the empty line
                line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
                if line in (b"\r\n", b"\n"):
                    return bytes(body)
                if not line.endswith(b"\n"):
                    return bad_request("the chunked body is malformed")

        def _write(self, response: Response, close: bool = False) -> None:
            self.send_response(response.status, HTTPStatus(response.status).phrase)
            for key, value in response.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def __getattr__(self, name: str) -> Any:
            # http.server answers a method with no do_<METHOD> (TRACE, HEAD, FOO) with its own
            # 501 HTML page; every method goes to the router instead, which answers a JSON 405.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """http.server's own refusals (a malformed request line, headers too long) in the
            emulator's JSON error body; the message names no part of the request."""
            self.log_message("%d", code)
            if self.request_version == "HTTP/0.9":  # a garbled request line: answer in HTTP/1.x
                self.request_version = "HTTP/1.0"
            status = HTTPStatus(code)
            error = api_error(code, status.name.lower(), status.description or status.phrase)
            self._write(error, close=True)

        # Log lines carry the method, the path and the status only: query strings and request
        # lines can hold codes, states and tokens.
        def log_message(self, format: str, *args: Any) -> None:
            status = args[0] if args and isinstance(args[0], int) else "-"
            sys.stderr.write(f"http.server error {status}\n")

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            method = getattr(self, "command", None) or "-"
            path = urlsplit(getattr(self, "path", "") or "").path
            sys.stderr.write(f"{method} {path} {code}\n")

    return EmulatorRequestHandler


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve(app: Application, host: str, port: int) -> EmulatorServer:
    return EmulatorServer((host, port), make_handler(app))
