"""The store on the real DynamoDB Local engine (the table created from template.yaml) and KMS on
moto's server."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import boto3
import pytest

from local.services import LOCAL_REGION, Service
from pleo_connector.crypto import CredentialCipher
from pleo_connector.store.dynamodb import DynamoTable

if TYPE_CHECKING:
    from local.resources import LocalResources


def _session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=LOCAL_REGION
    )


@pytest.fixture
def table(dynamodb_local: Service, local_resources: LocalResources) -> DynamoTable:
    client = _session().client("dynamodb", endpoint_url=dynamodb_local.url)
    return DynamoTable(local_resources.tables["Table"], client=client)


@pytest.fixture
def cipher(moto_server: Service, local_resources: LocalResources) -> CredentialCipher:
    client = _session().client("kms", endpoint_url=moto_server.url)
    return CredentialCipher(local_resources.keys["CredentialsKey"], kms_client=client)


@pytest.fixture
def unique() -> str:
    """A prefix that keeps this test's items apart in the session's shared table."""
    return uuid.uuid4().hex[:10]
