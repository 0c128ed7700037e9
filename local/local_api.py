"""The local HTTP API: SAM CLI's own LocalApigwService, driven by template.yaml, with handlers run
in warm workers of the app's virtualenv instead of Docker containers (SAM CLI's virtualenv).

Routes, handlers, layers and environment all come from the template: add a route there and it is
served here, with no second table to update. API Gateway lowercases header names in payload 2.0
events and this server keeps the client's casing, so handlers read headers case-insensitively.

    .venv-sam/bin/python -m local.local_api --template template.yaml --port 3000
serves the API alone (no AWS stand-ins; the handlers call the emulator at --emulator-url, by
default port 4010 or $PLEO_EMULATOR_PORT, as in the world); `python -m local.world up` serves it
with everything.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local import sam_template
from local.function_spec import DEFAULT_TEMPLATE
from local.functions import load_function_specs
from local.invoker import (
    FunctionNotFoundError,
    Invocation,
    Invoker,
    load_overrides,
    world_environment_builder,
)
from local.services import LOCAL_AWS_ENV, ROOT

if TYPE_CHECKING:
    from collections.abc import Callable


class InvokerRunner:
    """Stands in for SAM CLI's LocalLambdaRunner: LocalApigwService calls `invoke` with the event
    as a JSON string and reads the function's answer from `stdout`."""

    def __init__(
        self, invoker: Invoker, on_invocation: Callable[[Invocation], None] | None = None
    ) -> None:
        self.invoker = invoker
        self.on_invocation = on_invocation

    def is_debugging(self) -> bool:
        return False

    def invoke(
        self,
        function_identifier: str,
        event: str,
        tenant_id: str | None = None,
        stdout: Any = None,
        stderr: Any = None,
        **_: Any,
    ) -> None:
        try:
            invocation = self.invoker.invoke(function_identifier, json.loads(event))
        except FunctionNotFoundError as error:
            raise sam_template.function_not_found(function_identifier) from error
        if self.on_invocation is not None:
            self.on_invocation(invocation)
        if stdout is not None:
            stdout.write_str(json.dumps(invocation.payload))


def app_security_headers() -> dict[str, str]:
    """The security headers of the app's pages (the layer's one set), for the answers the local
    API gives itself. That module needs only the standard library, so SAM CLI's virtualenv can
    import it from the layer's folder."""
    layer = str(ROOT / "layers" / "shared")
    if layer not in sys.path:
        sys.path.append(layer)
    from pleo_connector.web.security import security_headers

    return security_headers()


class LocalApi:
    """The template's HTTP API on host:port. `run()` blocks and must be called from the main
    thread (the server stops on Ctrl-C or SIGTERM)."""

    def __init__(
        self,
        invoker: Invoker,
        template: Path = DEFAULT_TEMPLATE,
        host: str = "127.0.0.1",
        port: int = 3000,
        translations: dict[str, Any] | None = None,
    ) -> None:
        self.url = f"http://{host}:{port}"
        self.runner = InvokerRunner(invoker)
        self.service = sam_template.create_api_service(
            template, self.runner, host, port, translations, own_headers=app_security_headers()
        )

    @property
    def routes(self) -> list[tuple[str, str, str]]:
        """(method, path, function) for every route served."""
        return sorted(
            (method, route.path, route.function_name)
            for route in self.service.api.routes
            for method in route.methods
        )

    def run(self) -> None:
        # Werkzeug logs each request at INFO; the workers' own logs say more.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.service.run()


def main(argv: list[str] | None = None) -> int:
    from local.services import default_port  # the world's ports and variables, one table

    parser = argparse.ArgumentParser(description="Serve the template's HTTP API locally.")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--base-dir", type=Path, default=None, help="CodeUri paths are under it")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=default_port("api"), help="default 3000, or $LOCAL_API_PORT"
    )
    parser.add_argument(
        "--emulator-url",
        default=f"http://127.0.0.1:{default_port('emulator')}",
        help="the Pleo emulator the handlers call (default http://127.0.0.1:4010, the port "
        "from $PLEO_EMULATOR_PORT)",
    )
    parser.add_argument("--env-vars", type=Path, default=None, help="overrides (sam format)")
    args = parser.parse_args(argv)

    url = f"http://{args.host}:{args.port}"
    specs = load_function_specs(args.template, None, args.base_dir)
    build_environment = world_environment_builder(
        load_overrides(args.env_vars) if args.env_vars else load_overrides(),
        {"LocalApiUrl": url, "PleoEmulatorUrl": args.emulator_url.rstrip("/")},
        LOCAL_AWS_ENV,
    )
    with Invoker(specs, build_environment) as invoker:
        api = LocalApi(invoker, args.template, args.host, args.port)
        for method, path, function in api.routes:
            sys.stdout.write(f"{method:6} {url}{path} -> {function}\n")
        sys.stdout.flush()
        try:
            api.run()
        except KeyboardInterrupt:
            pass
        except Exception as error:  # SAM CLI's SIGTERM handler raises its own exception type
            if type(error).__name__ != "ProcessSigTermException":
                raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
