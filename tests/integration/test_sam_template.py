"""Pins what local/sam_template.py uses of SAM CLI's internal classes: if an upgrade of SAM CLI
changes them, these fail before the local world does."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local.functions import SAM_PYTHON, load_function_specs
from local.resources import LocalResources, load_template, resources_of_type
from local.services import ROOT

pytestmark = pytest.mark.integration


def sam_python(*args: str) -> str:
    completed = subprocess.run(
        [str(SAM_PYTHON), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        check=True,
    )
    return completed.stdout


def test_the_sam_cli_version_is_the_pinned_one() -> None:
    pin = re.search(r"^aws-sam-cli==(\S+)$", (ROOT / "requirements-sam.txt").read_text(), re.M)
    installed = sam_python(
        "-c", "import importlib.metadata as m; print(m.version('aws-sam-cli'))"
    ).strip()

    assert pin is not None
    assert installed == pin.group(1)


def test_the_classes_and_signatures_used_are_there() -> None:
    probe = """
import inspect, json
from samcli.local.apigw.local_apigw_service import LocalApigwService
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.api_provider import ApiProvider
from samcli.local.lambdafn.exceptions import FunctionNotFound
from werkzeug.serving import WSGIRequestHandler, run_simple
print(json.dumps({
    "service": list(inspect.signature(LocalApigwService.__init__).parameters),
    "stacks": list(inspect.signature(SamLocalStackProvider.get_stacks).parameters),
    "functions": list(inspect.signature(SamFunctionProvider.__init__).parameters),
    "api": list(inspect.signature(ApiProvider.__init__).parameters),
    "route_lookup": list(inspect.signature(LocalApigwService._get_current_route).parameters),
    "function_answer": list(inspect.signature(LocalApigwService.service_response).parameters),
    "run_simple": list(inspect.signature(run_simple).parameters),
    "handler_entry": hasattr(WSGIRequestHandler, "run_wsgi"),
}))
"""
    signatures = json.loads(sam_python("-c", probe))

    assert {"api", "lambda_runner", "port", "host"} <= set(signatures["service"])
    assert {"template_file", "parameter_overrides"} <= set(signatures["stacks"])
    assert {"stacks", "use_raw_codeuri"} <= set(signatures["functions"])
    assert {"stacks", "cwd"} <= set(signatures["api"])
    # answer_like_an_http_api: the route lookup that raises KeyError, the one path a function's
    # answer takes, and the request handler Flask's server accepts.
    assert signatures["route_lookup"] == ["self", "flask_request"]
    assert signatures["function_answer"] == ["body", "headers", "status_code"]
    assert "request_handler" in signatures["run_simple"]
    assert signatures["handler_entry"] is True


def _declared_routes(template: dict[str, Any]) -> list[list[str]]:
    routes = []
    for name, function in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                routes.append([props["Method"].upper(), props["Path"], name, "2.0"])
    return sorted(routes)


def test_the_routes_are_the_templates() -> None:
    served = json.loads(sam_python("-m", "local.sam_template", "--routes"))

    assert served == _declared_routes(load_template())
    assert ["GET", "/health", "HealthFunction", "2.0"] in served


def test_functions_are_read_with_globals_layers_and_local_references() -> None:
    template = load_template()
    globals_ = template["Globals"]["Function"]
    resources = LocalResources(
        prefix="x",
        tables={"Table": "local-table"},
        queue_urls={"SyncQueue": "http://127.0.0.1:1/000/q"},
        queue_arns={"SyncQueue": "arn:aws:sqs:eu-west-1:000:q"},
    )

    specs = load_function_specs(resources=resources)

    declared = resources_of_type(template, "AWS::Serverless::Function")
    assert set(specs) == set(declared)
    for name, resource in declared.items():
        props, spec = resource["Properties"], specs[name]
        assert spec.handler == props["Handler"]
        assert Path(spec.code_dir) == (ROOT / props["CodeUri"]).resolve()
        layers = [(ROOT / "layers" / name).resolve() for name in ("shared", "tracing")]
        if name == "SyncWorkerFunction":  # the one function that reads sources
            layers.append((ROOT / "layers" / "gnucash").resolve())
        assert [Path(p) for p in spec.layer_dirs] == layers
        assert spec.timeout_s == props.get("Timeout", globals_["Timeout"])
        assert spec.memory_mb == props.get("MemorySize", globals_["MemorySize"])
        assert set(globals_["Environment"]["Variables"]) <= set(spec.environment)
        assert spec.environment["TABLE_NAME"] == "local-table"
        assert spec.environment["SYNC_QUEUE_URL"] == "http://127.0.0.1:1/000/q"
    worker_queue = specs["SyncWorkerFunction"].events["Queue"]["Properties"]["Queue"]
    assert worker_queue == "arn:aws:sqs:eu-west-1:000:q"
