"""GET /oauth/start (the Initiation URI) and GET /oauth/callback (the redirect URI)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from pleo_connector.aio import run
from pleo_connector.connect.http import install_error_pages, query_string
from pleo_connector.connect.oauth_install import (
    CallbackParams,
    OAuthInstallOutcome,
    complete_oauth_install,
    idempotency_key,
    start_oauth_install,
)
from pleo_connector.connect.wiring import Collaborators
from pleo_connector.observability import logger

app = APIGatewayHttpResolver()


@cache
def deps() -> Collaborators:
    return Collaborators.from_environment(pleo=True, web=True, queue=True)


install_error_pages(app, deps)


@app.get("/oauth/start")
def start() -> Response[str]:
    from pleo_connector.web.responses import redirect

    collaborators = deps()
    started = start_oauth_install(collaborators)
    binding = collaborators.browser_binding.cookie(started.binding_nonce)
    return redirect(started.authorize_url, [binding], status=302, policy=collaborators.site.policy)


@app.get("/oauth/callback")
def callback() -> Response[str]:
    from pleo_connector.connect.idempotency import once
    from pleo_connector.web.pages import oauth_done_page

    collaborators = deps()
    params = CallbackParams.parse(query_string(app))
    cookies = app.current_event.cookies

    def complete() -> dict[str, Any]:
        outcome = run(complete_oauth_install(collaborators, params, cookies))
        return {
            "installation_id": outcome.installation_id,
            "status": outcome.status,
            "needs_configuration": outcome.needs_configuration,
        }

    outcome = OAuthInstallOutcome(
        **once(
            collaborators.store_settings.table_name,
            idempotency_key(params, cookies),
            complete,
            app.lambda_context,
        )
    )
    session = collaborators.sessions.issue(outcome.installation_id)
    set_cookies = [
        collaborators.browser_binding.clear_cookie(),
        collaborators.sessions.cookie(session),
    ]
    if outcome.needs_configuration:
        return collaborators.site.redirect("/settings", set_cookies)
    return oauth_done_page(site=collaborators.site, cookies=set_cookies)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
