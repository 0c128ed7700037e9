"""In-process moto stand-ins for the store's unit tests: the table is created from template.yaml."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3

from local.resources import create_table, load_template, resources_of_type
from pleo_connector.store.dynamodb import DynamoTable

REGION = "eu-west-1"
TABLE_NAME = "pleo-connector-unit-Table"


@lru_cache(maxsize=1)
def table_properties() -> dict[str, Any]:
    properties: dict[str, Any] = resources_of_type(load_template(), "AWS::DynamoDB::Table")[
        "Table"
    ]["Properties"]
    return properties


def make_table() -> DynamoTable:
    """The template's table on moto (call inside `mock_aws`)."""
    client = boto3.client("dynamodb", region_name=REGION)
    create_table(client, TABLE_NAME, table_properties())
    return DynamoTable(TABLE_NAME, client=client)


def make_kms_key() -> tuple[Any, str]:
    client = boto3.client("kms", region_name=REGION)
    return client, client.create_key(Description="credentials")["KeyMetadata"]["KeyId"]


class FakeClock:
    """Epoch seconds that move only when a test (or a fake sleep) says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
