"""Installing again updates the company's one installation, on the real table (DynamoDB Local),
even when its company pointer is gone."""

from __future__ import annotations

import uuid

import pytest

from local.resources import LocalResources
from pleo_connector.config import StoreSettings
from pleo_connector.connect.oauth_install import store_installation
from pleo_connector.connect.wiring import Collaborators
from pleo_connector.store.installations import company_pk

pytestmark = pytest.mark.integration


@pytest.fixture
def deps(aws_local_env: dict[str, str], local_resources: LocalResources) -> Collaborators:
    return Collaborators(
        store=StoreSettings.model_validate(
            {
                "TABLE_NAME": local_resources.tables["Table"],
                "KMS_KEY_ID": local_resources.keys["CredentialsKey"],
            }
        )
    )


def test_installing_again_updates_the_one_installation(deps: Collaborators) -> None:
    installation_id, company_id = str(uuid.uuid4()), str(uuid.uuid4())
    first = store_installation(
        deps,
        installation_id=installation_id,
        company_id=company_id,
        auth_method="oauth",
        pleo_status="AUTHORIZED",
    )

    again = store_installation(
        deps,
        installation_id=installation_id,
        company_id=company_id,
        auth_method="oauth",
        pleo_status="ACTIVATED",
    )

    assert again.version == first.version + 1
    assert deps.installations.find_by_company(company_id) == again


def test_an_installation_whose_company_pointer_is_gone_is_updated_not_refused(
    deps: Collaborators,
) -> None:
    # Given: the installation item is there, its company pointer is not (a half-done delete)
    installation_id, company_id = str(uuid.uuid4()), str(uuid.uuid4())
    first = store_installation(
        deps,
        installation_id=installation_id,
        company_id=company_id,
        auth_method="oauth",
        pleo_status="AUTHORIZED",
    )
    deps.table.client.delete_item(
        TableName=deps.store_settings.table_name,
        Key={"pk": {"S": company_pk(company_id)}, "sk": {"S": "INSTALLATION"}},
    )

    # When
    again = store_installation(
        deps,
        installation_id=installation_id,
        company_id=company_id,
        auth_method="oauth",
        pleo_status="ACTIVATED",
    )

    # Then: the same installation, one version on, and findable by its company again
    assert again.version == first.version + 1
    assert again.status == "ACTIVATED"
    assert deps.installations.find_by_company(company_id) == again
