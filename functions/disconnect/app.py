"""POST /settings/disconnect: delete the installation in Pleo (revoking its tokens), then every
local item. Refused while a sync runs."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from pleo_connector.aio import run
from pleo_connector.composition.http import checked_form, current_session, install_error_pages
from pleo_connector.composition.roots import (
    DisconnectFunction,
    WebParts,
    build_disconnect_function,
)
from pleo_connector.config import DisconnectFunctionSettings, load_settings
from pleo_connector.connect.disconnect import disconnect
from pleo_connector.observability import observed
from pleo_connector.web.pages import disconnected_page

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver()


@cache
def deps() -> DisconnectFunction:
    return build_disconnect_function(load_settings(DisconnectFunctionSettings))


def web() -> WebParts:
    return deps().web


install_error_pages(app, web)


@app.post("/settings/disconnect")
def disconnect_installation() -> Response[str]:
    function = deps()
    session = current_session(app, function.web)
    installation_id = session.require_installation()
    checked_form(app, function.web, session)
    run(disconnect(function.disconnect, installation_id))
    return disconnected_page(site=function.web.site, cookies=[function.web.sessions.clear_cookie()])


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
