"""The local API is SAM CLI's LocalApigwService driven by template.yaml alone."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local.functions import SAM_PYTHON
from local.services import ROOT, free_port, wait_for_http
from tests.support.world_fixtures import RunningWorld

pytestmark = pytest.mark.e2e

EXTRA_FUNCTION = """
def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/plain"},
        "body": "extra route served by " + context.function_name + " for " + event["rawPath"],
    }
"""

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


def test_a_route_the_template_does_not_declare_is_not_served(local_world: RunningWorld) -> None:
    response = httpx.get(f"{local_world.api_url}/extra/route", timeout=30)

    assert response.status_code == 403  # API Gateway's "Missing Authentication Token"


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


@pytest.fixture
def api_of(template_with_an_extra_route: Path, tmp_path: Path) -> Iterator[str]:
    """The local API serving the copied template (CodeUri paths start at the repository)."""
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
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
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
    assert extra.text == "extra route served by ExtraRouteFunction for /extra/route"
    assert health.json() == {"status": "ok"}
