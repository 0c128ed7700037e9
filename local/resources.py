"""Create, on the local stand-ins, the resources that template.yaml declares: read from the template
itself, so the local table, queues, key and secrets cannot drift from what `sam deploy` creates.

Needs only PyYAML and boto3, which both virtualenvs have.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

from local.services import LOCAL_REGION

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) as their long form."""


def _construct_intrinsic(
    loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node
) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return loaded


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


@dataclass
class LocalResources:
    """Physical names of the created resources, keyed by the template's logical IDs."""

    prefix: str
    tables: dict[str, str] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)
    queue_arns: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def physical_ids(self) -> dict[str, str]:
        """What `!Ref <LogicalId>` means locally, for every created resource."""
        return {**self.tables, **self.queue_urls, **self.keys, **self.secrets}

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LocalResources:
        return cls(**json.loads(text))


def create_table(client: Any, name: str, properties: dict[str, Any]) -> None:
    """Create one table from its template properties (keys, GSIs, billing, TTL)."""
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    client.create_table(**request)
    client.get_waiter("table_exists").wait(TableName=name)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )


def _queue_attributes(properties: dict[str, Any], arns: dict[str, str]) -> dict[str, str]:
    """The attributes the app's behaviour depends on. Encryption (`KmsMasterKeyId`) is left out:
    SQS applies it out of the app's sight, and locally nothing would read it."""
    attributes: dict[str, str] = {}
    for name in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
    ):
        if name in properties:
            attributes[name] = str(properties[name])
    redrive = properties.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]
        logical = target["Fn::GetAtt"][0] if isinstance(target, dict) else None
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": arns[logical] if logical else target,
                "maxReceiveCount": int(redrive["maxReceiveCount"]),
            }
        )
    return attributes


def create_all(
    dynamodb_url: str,
    moto_url: str,
    prefix: str = "pleo-connector-local",
    secret_values: dict[str, str] | None = None,
    template: dict[str, Any] | None = None,
) -> LocalResources:
    """Create every table, queue, KMS key and secret of the template. Secrets get `secret_values`
    where given (by logical ID), a random value otherwise."""
    template = template or load_template()
    secret_values = secret_values or {}
    session = boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the stand-ins accept anything
        region_name=LOCAL_REGION,
    )
    created = LocalResources(prefix=prefix)

    dynamodb = session.client("dynamodb", endpoint_url=dynamodb_url)
    for logical, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        name = f"{prefix}-{logical}"
        create_table(dynamodb, name, resource["Properties"])
        created.tables[logical] = name

    sqs = session.client("sqs", endpoint_url=moto_url)
    queues = resources_of_type(template, "AWS::SQS::Queue")
    # Dead-letter queues first: the others point at them.
    ordered = sorted(
        queues.items(), key=lambda item: "RedrivePolicy" in item[1].get("Properties", {})
    )
    for logical, resource in ordered:
        url = sqs.create_queue(
            QueueName=f"{prefix}-{logical}",
            Attributes=_queue_attributes(resource.get("Properties", {}), created.queue_arns),  # type: ignore[arg-type]
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        created.queue_urls[logical] = url
        created.queue_arns[logical] = arn

    kms = session.client("kms", endpoint_url=moto_url)
    for logical, resource in resources_of_type(template, "AWS::KMS::Key").items():
        key = kms.create_key(
            Description=str(resource.get("Properties", {}).get("Description", logical))
        )
        created.keys[logical] = key["KeyMetadata"]["KeyId"]

    secretsmanager = session.client("secretsmanager", endpoint_url=moto_url)
    for logical in resources_of_type(template, "AWS::SecretsManager::Secret"):
        value = secret_values.get(logical) or secrets.token_urlsafe(48)
        arn = secretsmanager.create_secret(Name=f"{prefix}-{logical}", SecretString=value)["ARN"]
        created.secrets[logical] = arn

    return created
