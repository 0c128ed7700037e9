"""GET /health: liveness with no dependency and no permission, so it answers when all else fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from pleo_connector.observability import observed
from pleo_connector.web.responses import json_response

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver()


@app.get("/health")
def health() -> Response[str]:
    return json_response({"status": "ok"})


def _not_found(error: Exception) -> Response[str]:
    return json_response({"message": "Not Found"}, 404)


app.not_found(_not_found)  # by call: Powertools' decorators are untyped


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
