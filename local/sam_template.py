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
import json
import sys
from pathlib import Path
from typing import Any, Protocol

from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.local.apigw.local_apigw_service import LocalApigwService
from samcli.local.lambdafn.exceptions import FunctionNotFound

from local.function_spec import DEFAULT_TEMPLATE, FunctionSpec
from local.services import LOCAL_REGION

LOCAL_ACCOUNT_ID = "123456789012"


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
) -> Any:
    """SAM CLI's local API Gateway (a Flask app, created, not yet running)."""
    provider = ApiProvider(load_stacks(template, translations), cwd=str(template.parent))
    if not provider.api.routes:
        raise ValueError(f"{template} declares no HTTP routes")
    service = LocalApigwService(api=provider.api, lambda_runner=runner, host=host, port=port)
    service.create()
    return service


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
