"""The stack's floor in the first-request benchmark: the baseline (boto3, one client, one
DynamoDB read) written on the libraries every HTTP function of this app is built on, and nothing
of the app: settings parsed into a pydantic model, Powertools' Logger and Metrics around the
handler, and Powertools' HTTP API router. What a function costs above this row is the app's own;
what this row costs above the baseline is the stack's, and no code of the app can take it back.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=3)


def _settings() -> Settings:
    import os

    return Settings.model_validate(os.environ)


settings = _settings()
logger = Logger()
metrics = Metrics()
dynamodb = boto3.client("dynamodb")
app = APIGatewayHttpResolver()


@app.get("/health")
def health() -> Response[str]:
    dynamodb.get_item(
        TableName=settings.table_name,
        Key={"pk": {"S": "BENCH#stack"}, "sk": {"S": "BENCH#stack"}},
    )
    return Response(200, "application/json", '{"status": "ok"}')


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
