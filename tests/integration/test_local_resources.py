"""The local stand-ins hold exactly the resources that template.yaml declares."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import boto3
import pytest

from local.resources import LocalResources, load_template, resources_of_type

if TYPE_CHECKING:
    from local.services import Service

pytestmark = pytest.mark.integration


def test_table_matches_the_template(
    dynamodb_local: Service, local_resources: LocalResources
) -> None:
    declared = resources_of_type(load_template(), "AWS::DynamoDB::Table")["Table"]["Properties"]
    client = boto3.client("dynamodb", endpoint_url=dynamodb_local.url)

    table = client.describe_table(TableName=local_resources.tables["Table"])["Table"]
    ttl = client.describe_time_to_live(TableName=local_resources.tables["Table"])

    assert table["KeySchema"] == declared["KeySchema"]
    # DynamoDB describes the indexes in an order of its own.
    assert sorted(index["IndexName"] for index in table["GlobalSecondaryIndexes"]) == sorted(
        index["IndexName"] for index in declared["GlobalSecondaryIndexes"]
    )
    assert (
        ttl["TimeToLiveDescription"]["AttributeName"]
        == declared["TimeToLiveSpecification"]["AttributeName"]
    )


def test_sync_queue_redrives_to_its_dead_letter_queue(
    moto_server: Service, local_resources: LocalResources
) -> None:
    declared = resources_of_type(load_template(), "AWS::SQS::Queue")["SyncQueue"]["Properties"]
    client = boto3.client("sqs", endpoint_url=moto_server.url)

    attributes = client.get_queue_attributes(
        QueueUrl=local_resources.queue_urls["SyncQueue"], AttributeNames=["All"]
    )["Attributes"]

    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == local_resources.queue_arns["SyncDeadLetterQueue"]
    assert redrive["maxReceiveCount"] == declared["RedrivePolicy"]["maxReceiveCount"]
    assert attributes["VisibilityTimeout"] == str(declared["VisibilityTimeout"])
