"""Installing again updates the company's one installation, on the real table (DynamoDB Local),
even when its company pointer is gone."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from pleo_connector.connect.oauth_install import store_installation
from pleo_connector.store.dynamodb import DynamoTable
from pleo_connector.store.installations import InstallationRepository, company_pk
from pleo_connector.vocabulary import AuthMethod, InstallationStatus

if TYPE_CHECKING:
    from local.resources import LocalResources

pytestmark = pytest.mark.integration


@pytest.fixture
def table(aws_local_env: dict[str, str], local_resources: LocalResources) -> DynamoTable:
    return DynamoTable(local_resources.tables["Table"])


@pytest.fixture
def installations(table: DynamoTable) -> InstallationRepository:
    return InstallationRepository(table)


def test_installing_again_updates_the_one_installation(
    installations: InstallationRepository,
) -> None:
    installation_id, company_id = str(uuid.uuid4()), str(uuid.uuid4())
    first = store_installation(
        installations,
        installation_id=installation_id,
        company_id=company_id,
        auth_method=AuthMethod.OAUTH,
        pleo_status=InstallationStatus.AUTHORIZED,
    )

    again = store_installation(
        installations,
        installation_id=installation_id,
        company_id=company_id,
        auth_method=AuthMethod.OAUTH,
        pleo_status=InstallationStatus.ACTIVATED,
    )

    assert again.version == first.version + 1
    assert installations.find_by_company(company_id) == again


def test_an_installation_whose_company_pointer_is_gone_is_updated_not_refused(
    table: DynamoTable, installations: InstallationRepository
) -> None:
    # Given: the installation item is there, its company pointer is not (a half-done delete)
    installation_id, company_id = str(uuid.uuid4()), str(uuid.uuid4())
    first = store_installation(
        installations,
        installation_id=installation_id,
        company_id=company_id,
        auth_method=AuthMethod.OAUTH,
        pleo_status=InstallationStatus.AUTHORIZED,
    )
    table.client.delete_item(
        TableName=table.table_name,
        Key={"pk": {"S": company_pk(company_id)}, "sk": {"S": "INSTALLATION"}},
    )

    # When
    again = store_installation(
        installations,
        installation_id=installation_id,
        company_id=company_id,
        auth_method=AuthMethod.OAUTH,
        pleo_status=InstallationStatus.ACTIVATED,
    )

    # Then: the same installation, one version on, and findable by its company again
    assert again.version == first.version + 1
    assert again.status == "ACTIVATED"
    assert installations.find_by_company(company_id) == again
