"""Every function that talks to Pleo builds its Pleo clients (httpx, the rate budget) when a
request first does, not with the function, and the OAuth client makes its HTTP client on its first
token request: the pages that only read the table, OAuth start and a sync run that finds its
source unchanged never import httpx, which was most of their first request's imports
(bench/README.md, "First request")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pleo_connector.composition.roots import PleoClientsOnFirstUse
from pleo_connector.vocabulary import AuthMethod

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENT = {
    "SYNC_QUEUE_URL": "http://localhost:1/queue/sync",
    "PUBLIC_BASE_URL": "https://connector.example",
    "SESSION_SECRET_ID": "session-secret",
    "PLEO_AUTH_URL": "https://auth.pleo.example",
    "PLEO_API_URL": "https://api.pleo.example",
    "PLEO_CLIENT_ID": "client-id",
    "PLEO_CLIENT_SECRET_ID": "client-secret",
    "TABLE_NAME": "table",
    "KMS_KEY_ID": "key",
    "AWS_DEFAULT_REGION": "eu-west-1",
}
BUILDERS = {
    "build_settings_function": "SettingsFunctionSettings",
    "build_disconnect_function": "DisconnectFunctionSettings",
    "build_api_key_install_function": "ApiKeyInstallFunctionSettings",
    "build_oauth_function": "OAuthFunctionSettings",
    "build_worker": "WorkerFunctionSettings",
}
BUILD_ONE = """
import json, sys
from pleo_connector import config
from pleo_connector.composition import roots
before = set(sys.modules)
settings = config.load_settings(getattr(config, sys.argv[2]), json.loads(sys.argv[3]))
function = getattr(roots, sys.argv[1])(settings)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


class CountingClients:
    """A `PleoClientFactory` that says which of its methods were called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def for_installation(self, installation_id: str, auth_method: AuthMethod) -> Any:
        self.calls.append(("for_installation", (installation_id, auth_method)))
        return "installation client"

    def with_access_token(self, access_token: str) -> Any:
        self.calls.append(("with_access_token", access_token))
        return "token client"

    def with_api_key(self, api_key: str) -> Any:
        self.calls.append(("with_api_key", api_key))
        return "key client"


def test_the_factory_is_built_once_on_first_use_and_every_method_reaches_it() -> None:
    built: list[CountingClients] = []

    def build() -> Any:
        built.append(CountingClients())
        return built[-1]

    clients: Any = PleoClientsOnFirstUse(build)
    assert built == []
    assert "built=False" in repr(clients)

    assert clients.for_installation("inst-1", AuthMethod.OAUTH) == "installation client"
    assert clients.with_access_token("token") == "token client"
    assert clients.with_api_key("key") == "key client"

    assert len(built) == 1
    assert built[0].calls == [
        ("for_installation", ("inst-1", AuthMethod.OAUTH)),
        ("with_access_token", "token"),
        ("with_api_key", "key"),
    ]
    assert "built=True" in repr(clients)


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_building_a_function_imports_no_http_client(builder: str) -> None:
    """In a process of its own, as a cold start: what the builder imports, httpx not among it."""
    completed = subprocess.run(
        [sys.executable, "-c", BUILD_ONE, builder, BUILDERS[builder], json.dumps(ENVIRONMENT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'layers' / 'shared'}", "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    imported = set(json.loads(completed.stdout.strip().splitlines()[-1]))

    assert "pleo_connector.store.installations" in imported  # the builder did build its stores
    assert not {"httpx", "pleo_connector.pleo.client"} & imported


def test_the_oauth_client_makes_its_http_client_on_the_first_token_request() -> None:
    """Closing a client that never asked for a token closes nothing; one given to it is used."""
    import asyncio

    import httpx

    from pleo_connector.pleo.oauth import OAuthClient

    lazy = OAuthClient("https://auth.example", "client", "secret")
    asyncio.run(lazy.aclose())
    assert "_http" not in vars(lazy)

    given = httpx.AsyncClient()
    client = OAuthClient("https://auth.example", "client", "secret", http=given)
    assert client._http is given
    asyncio.run(client.aclose())
    assert not given.is_closed  # not its own to close
    asyncio.run(given.aclose())
