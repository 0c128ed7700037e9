"""The baseline of the first-request benchmark: what nearly every Python Lambda pays on its
first request anyway. `import boto3` and one client at module level, as such functions are
usually written, and one DynamoDB read of the app's table in the handler."""

from __future__ import annotations

import os
from typing import Any

import boto3

dynamodb = boto3.client("dynamodb")


def handler(event: Any, context: Any) -> dict[str, Any]:
    dynamodb.get_item(
        TableName=os.environ["TABLE_NAME"],
        Key={"pk": {"S": "BENCH#baseline"}, "sk": {"S": "BENCH#baseline"}},
    )
    return {"statusCode": 200, "body": "ok"}
