"""Installations exactly as the App Marketplace document describes them, plus /v1/introspect."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.emulator import DEFAULT_CLIENT_ID, DEFAULT_COMPANY_ID, RunningEmulator

if TYPE_CHECKING:
    from tests.integration.emulator.conftest import ApiFactory

pytestmark = pytest.mark.integration

RESOURCE = f"urn:pleo:company:{DEFAULT_COMPANY_ID}"


@pytest.mark.parametrize(
    ("requires_configuration", "status"), [(True, "AUTHORIZED"), (False, "ACTIVATED")]
)
def test_an_oauth_install_creates_the_installation_per_the_client_setting(
    emulator: RunningEmulator, api: ApiFactory, requires_configuration: bool, status: str
) -> None:
    emulator.control.register_client(
        DEFAULT_CLIENT_ID, requires_configuration=requires_configuration
    )
    tokens = emulator.control.obtain_tokens()

    response = api(bearer=tokens["access_token"]).get("/v1/installations/me")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == status
    assert body["resource"] == RESOURCE
    assert body["metadata"] == {}
    assert "data" not in body  # installation responses are not wrapped


def test_installing_again_keeps_the_one_installation(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    first = emulator.control.obtain_tokens()
    installation_id = api(bearer=first["access_token"]).get("/v1/installations/me").json()["id"]

    second = emulator.control.obtain_tokens()

    again = api(bearer=second["access_token"]).get("/v1/installations/me").json()
    assert again["id"] == installation_id
    assert len(emulator.control.installations()) == 1


def test_api_key_installation_is_created_by_post(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    client = api(api_key=emulator.control.issue_api_key())
    assert client.get("/v1/installations/me").status_code == 404

    created = client.post(
        "/v1/installations/me",
        json={"status": "ACTIVATED", "metadata": {"config": {"source": "erp"}}},
    )

    assert created.status_code == 200
    assert created.json()["status"] == "ACTIVATED"
    assert created.json()["metadata"] == {"config": {"source": "erp"}}
    assert client.get("/v1/installations/me").json()["id"] == created.json()["id"]


def test_put_replaces_metadata_and_sets_the_error_code(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    client = api(api_key=emulator.control.issue_api_key())
    client.post("/v1/installations/me", json={"metadata": {"a": {"x": "1"}, "b": {"y": "2"}}})

    updated = client.put(
        "/v1/installations/me",
        json={"status": "ERROR", "errorCode": "AUTH_ERROR", "metadata": {"b": {"y": "3"}}},
    )
    without_metadata = client.put("/v1/installations/me", json={"status": "PENDING_INTEGRATION"})

    assert updated.json()["metadata"] == {"b": {"y": "3"}}
    assert updated.json()["errorCode"] == "AUTH_ERROR"
    assert without_metadata.json()["metadata"] == {}
    assert "errorCode" not in without_metadata.json()
    assert without_metadata.json()["status"] == "PENDING_INTEGRATION"


def test_put_without_status_is_a_bad_request(emulator: RunningEmulator, api: ApiFactory) -> None:
    client = api(api_key=emulator.control.issue_api_key(), lenient=True)
    client.post("/v1/installations/me", json={})

    assert client.put("/v1/installations/me", json={"metadata": {}}).status_code == 400


def test_activate_sets_activated(emulator: RunningEmulator, api: ApiFactory) -> None:
    tokens = emulator.control.obtain_tokens()
    client = api(bearer=tokens["access_token"])
    assert client.get("/v1/installations/me").json()["status"] == "AUTHORIZED"

    activated = client.post("/v1/installations/me:activate")

    assert activated.status_code == 200
    assert activated.json()["status"] == "ACTIVATED"


def test_delete_removes_the_installation_and_revokes_every_token(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    older = emulator.control.obtain_tokens()
    newer = emulator.control.obtain_tokens()
    client = api(bearer=newer["access_token"])

    deleted = client.delete("/v1/installations/me")

    assert deleted.status_code == 204
    assert client.get("/v1/installations/me").status_code == 401
    assert api(bearer=older["access_token"]).get("/v1/introspect").status_code == 401
    assert all(grant["revoked"] for grant in emulator.control.grants())
    assert emulator.control.installations() == []


def test_introspect_names_the_company_of_the_credential(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    tokens = emulator.control.obtain_tokens()

    oauth = api(bearer=tokens["access_token"]).get("/v1/introspect").json()["data"]
    key = api(api_key=emulator.control.issue_api_key()).get("/v1/introspect").json()["data"]

    assert oauth["authMethod"] == "OAUTH2"
    assert oauth["subjectURN"] == RESOURCE
    assert oauth["clientId"] == DEFAULT_CLIENT_ID
    assert key["authMethod"] == "API_KEY"
    assert key["subjectURN"] == RESOURCE


def test_bad_or_revoked_credentials_get_401_json(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    key = emulator.control.issue_api_key()
    assert api(api_key=key).get("/v1/introspect").status_code == 200
    emulator.control.revoke_api_key(key)

    revoked = api(api_key=key).get("/v1/introspect")
    unknown = api(bearer="not-a-token").get("/v1/introspect")
    missing = api(lenient=True).get("/v1/introspect")

    for response in (revoked, unknown, missing):
        assert response.status_code == 401
        assert response.json()["type"] == "unauthorized"


def test_a_credential_cannot_name_another_company(
    emulator: RunningEmulator, api: ApiFactory
) -> None:
    other = emulator.control.seed_company("Other ApS")
    client = api(api_key=emulator.control.issue_api_key())

    response = client.get("/v1/installations/me", params={"company_id": other["id"]})

    assert response.status_code == 403
