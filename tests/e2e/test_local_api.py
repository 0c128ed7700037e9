"""The local API is SAM CLI's LocalApigwService driven by template.yaml alone, answering what
API Gateway (an HTTP API) answers itself as it does: a JSON 404 for no route, a 400 for a request
it cannot read, never a redirect, and the app's security headers on each of those answers."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import httpx
import pytest

from local.functions import SAM_PYTHON
from local.services import ROOT, free_port, wait_for_http
from pleo_connector.web.security import security_headers
from tests.support.raw_http import exchange, request_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from email.message import Message
    from pathlib import Path

    from tests.support.world_fixtures import RunningWorld

pytestmark = pytest.mark.e2e

EXTRA_FUNCTION = """
import os

def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/plain"},
        "body": "extra route served by " + context.function_name + " for " + event["rawPath"]
        + " calling Pleo at " + os.environ["PLEO_API_URL"],
    }
"""
NOT_FOUND = {"message": "Not Found"}

EXTRA_RESOURCE = """\
  ExtraRouteFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code_dir}
      Handler: extra.handler
      Events:
        Extra:
          Type: HttpApi
          Properties: {{ApiId: !Ref HttpApi, Method: GET, Path: /extra/route}}
"""


def test_health_answers_through_the_local_api(local_world: RunningWorld) -> None:
    response = httpx.get(f"{local_world.api_url}/health", timeout=30)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert any(
        entry["source"] == "api" and entry["function"] == "HealthFunction"
        for entry in local_world.activity()
    )


def assert_the_apps_security_headers(headers: Mapping[str, str] | Message, where: str) -> None:
    """The front's own answers carry the app's header set, the layer's one source of truth."""
    for name, value in security_headers().items():
        assert headers.get(name) == value, f"{where}: {name}"


def test_health_carries_the_security_headers(local_world: RunningWorld) -> None:
    response = httpx.get(f"{local_world.api_url}/health", timeout=30)

    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"] == "application/json"
    assert_the_apps_security_headers(response.headers, "GET /health")


def test_a_route_the_template_does_not_declare_is_not_served(local_world: RunningWorld) -> None:
    response = httpx.get(f"{local_world.api_url}/extra/route", timeout=30)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing-here"),
        ("DELETE", "/health"),
        ("POST", "/oauth/callback"),
        ("PUT", "/settings"),
        ("OPTIONS", "/settings"),
        ("TRACE", "/health"),
        ("FOO", "/health"),
    ],
)
def test_no_route_for_the_method_and_path_is_a_json_404(
    local_world: RunningWorld, method: str, path: str
) -> None:
    calls_before = len(local_world.activity())

    answer = exchange(local_world.api_url, request_bytes(method, path))

    assert (answer.status, answer.json()) == (404, NOT_FOUND)
    assert answer.header("Content-Type") == "application/json"
    assert_the_apps_security_headers(answer.headers, f"{method} {path}")
    assert len(local_world.activity()) == calls_before  # no handler ran


@pytest.mark.parametrize("path", ["/health", "/settings", "/oauth/start"])
def test_head_on_a_get_route_is_a_404_as_http_apis_answer(
    local_world: RunningWorld, path: str
) -> None:
    """HTTP APIs match the method exactly: a route declared for GET does not serve HEAD."""
    answer = exchange(local_world.api_url, request_bytes("HEAD", path), head=True)

    assert answer.status == 404
    assert answer.body == b""
    assert_the_apps_security_headers(answer.headers, f"HEAD {path}")


@pytest.mark.parametrize("path", ["/oauth//start", "/oauth/%2F/start", "/settings//sync"])
def test_an_empty_path_segment_is_a_404_never_a_redirect_built_from_host(
    local_world: RunningWorld, path: str
) -> None:
    request = request_bytes("GET", path).replace(b"Host: 127.0.0.1", b"Host: evil.example")

    answer = exchange(local_world.api_url, request)

    assert (answer.status, answer.json()) == (404, NOT_FOUND)
    assert answer.header("Location") is None
    assert b"evil.example" not in answer.body
    assert_the_apps_security_headers(answer.headers, f"GET {path}")


FORM = [("Content-Type", "application/x-www-form-urlencoded")]


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        (
            [("Content-Length", "2"), ("Content-Length", "5")],
            b"a=",
            "Bad Request: the Content-Length headers disagree",
        ),
        (
            [("Content-Length", "2"), ("Transfer-Encoding", "chunked")],
            b"0\r\n\r\n",
            "Bad Request: Content-Length and Transfer-Encoding were both sent",
        ),
        (
            [("Content-Length", "abc")],
            b"",
            "Bad Request: Content-Length is not a non-negative integer",
        ),
        (
            [("Transfer-Encoding", "gzip")],
            b"",
            "Bad Request: chunked is the only transfer coding accepted",
        ),
        (
            [("Transfer-Encoding", "chunked")],
            b"zz\r\na=b\r\n0\r\n\r\n",
            "Bad Request: the chunked body is malformed",
        ),
        ([("Content-Length", "2")], b"\xff\xfe", "Bad Request: the request is not UTF-8"),
    ],
)
def test_a_body_the_front_cannot_read_is_a_400_before_any_handler(
    local_world: RunningWorld, headers: list[tuple[str, str]], body: bytes, message: str
) -> None:
    calls_before = len(local_world.activity())

    answer = exchange(local_world.api_url, request_bytes("POST", "/settings", FORM + headers, body))

    assert (answer.status, answer.json()) == (400, {"message": message})
    assert answer.header("Connection") == "close"
    assert_the_apps_security_headers(answer.headers, message)
    assert len(local_world.activity()) == calls_before


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /health HTTP/2.0\r\n\r\n", 505),
        (b"GET /oauth/callback?code=c0de-" + b"c" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    ],
)
def test_a_garbled_request_line_gets_json_and_is_not_echoed(
    local_world: RunningWorld, request_line: bytes, status: int
) -> None:
    answer = exchange(local_world.api_url, request_line)

    assert answer.status == status
    assert set(answer.json()) == {"message"}
    assert b"GARBAGE" not in answer.body
    assert b"c0de" not in answer.body
    assert_the_apps_security_headers(answer.headers, repr(request_line[:20]))


@pytest.fixture
def template_with_an_extra_route(tmp_path: Path) -> Path:
    """A copy of template.yaml with one more function and route, and nothing else changed."""
    code_dir = tmp_path / "extra_function"
    code_dir.mkdir()
    (code_dir / "extra.py").write_text(EXTRA_FUNCTION, encoding="utf-8")
    original = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert original.count("\nResources:\n") == 1
    copy = original.replace(
        "\nResources:\n", "\nResources:\n" + EXTRA_RESOURCE.format(code_dir=code_dir) + "\n"
    )
    path = tmp_path / "template.yaml"
    path.write_text(copy, encoding="utf-8")
    return path


EMULATOR_PORT = 4999  # nothing listens there: the handlers only read the URL


@pytest.fixture
def api_of(template_with_an_extra_route: Path, tmp_path: Path) -> Iterator[str]:
    """The local API serving the copied template (CodeUri paths start at the repository), told
    the emulator's port the way the world is: by $PLEO_EMULATOR_PORT."""
    port = free_port()
    log = (tmp_path / "api.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [
            str(SAM_PYTHON),
            "-m",
            "local.local_api",
            f"--template={template_with_an_extra_route}",
            f"--base-dir={ROOT}",
            f"--port={port}",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "SAM_CLI_TELEMETRY": "0",
            "PLEO_EMULATOR_PORT": str(EMULATOR_PORT),
        },
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=120, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_route_added_to_a_copy_of_the_template_is_served(api_of: str) -> None:
    extra = httpx.get(f"{api_of}/extra/route", timeout=60)
    health = httpx.get(f"{api_of}/health", timeout=60)

    assert extra.status_code == 200
    assert extra.text == (
        "extra route served by ExtraRouteFunction for /extra/route"
        f" calling Pleo at http://127.0.0.1:{EMULATOR_PORT}"
    )
    assert health.json() == {"status": "ok"}
