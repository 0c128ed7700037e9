"""A handler that calls AWS once (botocore, answered by a Stubber) and an HTTP API once (httpx,
answered by a mock transport), under the wrapper every function wears: what tracing must see as
subsegments, without a network. Its client is made at import, as a module-level client would be,
to show that patching on the first invocation still traces it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import botocore.session
import httpx
from botocore.stub import Stubber

from pleo_connector.observability import observed

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

URL = "https://api.example.test/ping"

# Any: botocore makes its operations at run time, from the service model.
dynamodb: Any = botocore.session.get_session().create_client(
    "dynamodb", region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test"
)


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"pong": True})


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with Stubber(dynamodb) as stubber:
        stubber.add_response("list_tables", {"TableNames": ["installations"]})
        tables = dynamodb.list_tables()["TableNames"]
    with httpx.Client(transport=httpx.MockTransport(_answer)) as http:
        status = http.get(URL).status_code
    return {"tables": tables, "status": status}
