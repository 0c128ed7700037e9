"""POST /settings/disconnect: delete the installation in Pleo (revoking its tokens), then every
local item. Refused while a sync runs."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from pleo_connector.aio import run
from pleo_connector.connect.http import checked_form, current_session, install_error_pages
from pleo_connector.connect.settings import disconnect
from pleo_connector.connect.wiring import Collaborators
from pleo_connector.observability import logger
from pleo_connector.web.pages import disconnected_page

app = APIGatewayHttpResolver()


@cache
def deps() -> Collaborators:
    return Collaborators.from_environment(pleo=True, web=True)


install_error_pages(app, deps)


@app.post("/settings/disconnect")
def disconnect_installation() -> Response[str]:
    collaborators = deps()
    session = current_session(app, collaborators)
    installation_id = session.require_installation()
    checked_form(app, collaborators, session)
    run(disconnect(collaborators, installation_id))
    return disconnected_page(
        site=collaborators.site, cookies=[collaborators.sessions.clear_cookie()]
    )


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
