"""The one place that touches SAM CLI's internal classes (SAM CLI's virtualenv only).

`sam local start-api` and `sam local invoke` need Docker; the classes behind them do not. They
read template.yaml exactly as `sam local` does (Globals merged, intrinsics resolved, layers and
events attached) and serve the HTTP API with payload format 2.0. They are not a public API, so
requirements-sam.txt pins SAM CLI exactly and tests/integration/test_sam_template.py pins what is
used here: change both together.

    .venv-sam/bin/python -m local.sam_template --template template.yaml   # the specs, as JSON
    .venv-sam/bin/python -m local.sam_template --routes                    # the HTTP routes
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.local.apigw.local_apigw_service import LocalApigwService
from samcli.local.lambdafn.exceptions import FunctionNotFound

from local.function_spec import DEFAULT_TEMPLATE, FunctionSpec
from local.services import LOCAL_REGION

if TYPE_CHECKING:
    from collections.abc import Mapping

LOCAL_ACCOUNT_ID = "123456789012"
# What API Gateway HTTP APIs answer, body and all, for a request that matches no route.
NOT_FOUND = "Not Found"
_DIGITS = re.compile(r"[0-9]+")


class LambdaRunner(Protocol):
    """What LocalApigwService asks of its runner (SAM CLI's LocalLambdaRunner has more)."""

    def is_debugging(self) -> bool: ...

    def invoke(self, function_identifier: str, event: str, **kwargs: Any) -> None: ...


def load_stacks(template: Path, translations: dict[str, Any] | None = None) -> list[Any]:
    """The template's stacks, resolved as `sam local` resolves them. `translations` map logical IDs
    to local values ({"Ref": ..., "Arn": ...}), which SAM CLI's resolver uses where it would
    otherwise put the logical ID itself."""
    overrides: dict[str, Any] = {
        "AWS::Region": LOCAL_REGION,
        "AWS::AccountId": LOCAL_ACCOUNT_ID,
        **(translations or {}),
    }
    stacks, _ = SamLocalStackProvider.get_stacks(str(template), parameter_overrides=overrides)
    return list(stacks)


def _environment_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return ""  # what `sam local` passes for a value it cannot resolve


def function_specs(
    template: Path = DEFAULT_TEMPLATE,
    translations: dict[str, Any] | None = None,
    base_dir: Path | None = None,
) -> dict[str, FunctionSpec]:
    """Every function of the template. Code and layer paths are relative to `base_dir` (like
    `sam local --base-dir`), by default the template's folder."""
    template = template.resolve()
    base = (base_dir or template.parent).resolve()
    provider = SamFunctionProvider(load_stacks(template, translations), use_raw_codeuri=True)
    specs: dict[str, FunctionSpec] = {}
    for function in provider.get_all():
        environment = (function.environment or {}).get("Variables") or {}
        specs[function.name] = FunctionSpec(
            name=function.name,
            handler=function.handler,
            code_dir=str((base / function.codeuri).resolve()),
            layer_dirs=tuple(str((base / layer.codeuri).resolve()) for layer in function.layers),
            runtime=function.runtime,
            timeout_s=int(function.timeout or 3),
            memory_mb=int(function.memory or 128),
            environment={name: _environment_value(value) for name, value in environment.items()},
            events=dict(function.events or {}),
        )
    return specs


def function_not_found(name: str) -> Exception:
    """The exception LocalApigwService turns into its 502 "no function" answer."""
    error: Exception = FunctionNotFound(f"Unable to find a function with name '{name}'")
    return error


def api_routes(template: Path, translations: dict[str, Any] | None = None) -> list[Any]:
    """The HTTP routes of the template, as SAM CLI's Route objects."""
    provider = ApiProvider(load_stacks(template, translations), cwd=str(template.parent))
    return list(provider.api.routes)


def create_api_service(
    template: Path,
    runner: LambdaRunner,
    host: str,
    port: int,
    translations: dict[str, Any] | None = None,
    own_headers: Mapping[str, str] | None = None,
) -> Any:
    """SAM CLI's local API Gateway (a Flask app, created, not yet running), answering what API
    Gateway answers itself as an HTTP API does; `own_headers` go on those answers (never on a
    function's: the app must send its own)."""
    provider = ApiProvider(load_stacks(template, translations), cwd=str(template.parent))
    if not provider.api.routes:
        raise ValueError(f"{template} declares no HTTP routes")
    service = LocalApigwService(api=provider.api, lambda_runner=runner, host=host, port=port)
    service.create()
    answer_like_an_http_api(service, dict(own_headers or {}))
    return service


def answer_like_an_http_api(service: Any, own_headers: dict[str, str]) -> None:
    """Where SAM CLI's Flask app is not API Gateway, make it answer as an HTTP API does.

    - No route for the method and path: 404 `{"message": "Not Found"}` (SAM CLI answers REST
      API's 403 "Missing Authentication Token"). HEAD on a GET route is one of these: HTTP APIs
      match methods exactly, where Werkzeug adds HEAD to every GET rule and SAM CLI's route
      lookup then fails with a 502.
    - A path with an empty segment (`/oauth//start`): 404. Werkzeug would merge the slashes and
      redirect (308) to the result on the client's own `Host`.
    - A body it cannot read (malformed chunked coding, text that is not UTF-8) or a query string
      that is not UTF-8: 400, where SAM CLI answers 502. Framing it cannot trust (two
      Content-Lengths, Content-Length with Transfer-Encoding) and a malformed request line: 400
      from the request handler, before Flask (`_front_request_handler`).
    """
    from flask import Response, g, request
    from werkzeug.exceptions import HTTPException

    app = service._app

    def answer(status: int, message: str) -> Response:
        body = json.dumps({"message": message})
        return Response(body, status=status, mimetype="application/json")

    def check_request() -> Response | None:
        raw_path = str(request.environ.get("RAW_URI") or "").partition("?")[0]
        if "//" in raw_path or "//" in request.path:
            return answer(404, NOT_FOUND)
        try:
            service._get_current_route(request)
        except KeyError:
            return answer(404, NOT_FOUND)
        try:
            body = request.get_data()  # cached: SAM CLI reads the same bytes afterwards
        except (OSError, ValueError):
            refused = answer(400, "Bad Request: the chunked body is malformed")
            refused.headers["Connection"] = "close"  # where the next request starts is unknown
            return refused
        # SAM CLI passes a body as text unless its media type is binary (its own rule).
        binary_types = service.api.binary_media_types or []
        as_text = request.mimetype not in binary_types and "*/*" not in binary_types
        try:
            if as_text:
                body.decode("utf-8")
            request.query_string.decode("utf-8")
        except UnicodeDecodeError:
            return answer(400, "Bad Request: the request is not UTF-8")
        return None

    def http_error(error: HTTPException) -> Response:
        if error.code in (404, 405):
            return answer(404, NOT_FOUND)
        return answer(error.code or 400, error.name)

    # A function's answer passes through service_response; any other answer is the front's own.
    function_answer = service.service_response

    def answer_of_the_function(body: Any, headers: Any, status_code: int) -> Any:
        g.answered_by_function = True
        return function_answer(body, headers, status_code)

    def add_own_headers(response: Response) -> Response:
        if not g.get("answered_by_function"):
            for name, value in own_headers.items():
                response.headers.setdefault(name, value)
        return response

    service.service_response = answer_of_the_function
    app.before_request(check_request)
    app.after_request(add_own_headers)
    for code in (404, 405):  # replaces SAM CLI's handlers of these codes
        app.register_error_handler(code, http_error)
    app.register_error_handler(HTTPException, http_error)
    app.run = functools.partial(app.run, request_handler=_front_request_handler(own_headers))


def framing_problem(lengths: list[str], codings: list[str]) -> str | None:
    """Why a request's body framing cannot be trusted (RFC 9112 §6.3), or None. `lengths` and
    `codings` are every Content-Length and Transfer-Encoding value as received."""
    if lengths and codings:
        return "Content-Length and Transfer-Encoding were both sent"
    if codings and ",".join(codings).strip().lower() != "chunked":
        return "chunked is the only transfer coding accepted"
    values = {value.strip() for value in ",".join(lengths).split(",")} if lengths else set()
    if len(values) > 1:
        return "the Content-Length headers disagree"
    if values and not _DIGITS.fullmatch(next(iter(values))):
        return "Content-Length is not a non-negative integer"
    return None


def _front_request_handler(own_headers: dict[str, str]) -> Any:
    """Werkzeug's request handler, refusing what it would otherwise misread: framing that
    cannot be trusted (Werkzeug takes the last Content-Length, so two that differ leave it waiting
    for bytes that never come) and a malformed request line (http.server's HTML page)."""
    from werkzeug.serving import WSGIRequestHandler

    class FrontRequestHandler(WSGIRequestHandler):
        def run_wsgi(self) -> None:
            problem = framing_problem(
                self.headers.get_all("Content-Length") or [],
                self.headers.get_all("Transfer-Encoding") or [],
            )
            if problem is not None:
                self._refuse(400, f"Bad Request: {problem}")
                return
            super().run_wsgi()

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            # http.server's message quotes the request line, which can hold codes and tokens:
            # neither the log nor the answer repeats it.
            self.log_error("code %d", code)
            if self.request_version == "HTTP/0.9":  # a garbled request line: answer in 1.x
                self.request_version = "HTTP/1.0"
            self._refuse(code, HTTPStatus(code).phrase)

        def _refuse(self, code: int, message: str) -> None:
            body = json.dumps({"message": message}).encode("utf-8")
            self.send_response(code)
            for name, value in own_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return FrontRequestHandler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the template's functions as JSON.")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--base-dir", type=Path, default=None)
    parser.add_argument("--translations", default="{}", help="JSON: logical ID -> local value")
    parser.add_argument("--routes", action="store_true", help="print the HTTP routes instead")
    args = parser.parse_args(argv)
    if args.routes:
        routes = api_routes(args.template.resolve(), json.loads(args.translations))
        json.dump(
            sorted(
                [method, route.path, route.function_name, route.payload_format_version or "2.0"]
                for route in routes
                for method in route.methods
            ),
            sys.stdout,
        )
        return 0
    specs = function_specs(args.template, json.loads(args.translations), args.base_dir)
    json.dump({name: spec.to_dict() for name, spec in specs.items()}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
