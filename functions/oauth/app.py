"""GET /oauth/start (the Initiation URI) and GET /oauth/callback (the redirect URI)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from pleo_connector.aio import run
from pleo_connector.composition.http import install_error_pages, query_string
from pleo_connector.composition.roots import OAuthFunction, WebParts, build_oauth_function
from pleo_connector.config import OAuthFunctionSettings, load_settings
from pleo_connector.connect.oauth_install import (
    CallbackParams,
    OAuthInstallOutcome,
    complete_oauth_install,
    idempotency_key,
    start_oauth_install,
)
from pleo_connector.observability import observed
from pleo_connector.vocabulary import InstallationStatus

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver()


@cache
def deps() -> OAuthFunction:
    return build_oauth_function(load_settings(OAuthFunctionSettings))


def web() -> WebParts:
    return deps().web


install_error_pages(app, web)


@app.get("/oauth/start")
def start() -> Response[str]:
    from pleo_connector.web.responses import redirect

    function = deps()
    started = start_oauth_install(function.install)
    binding = function.web.browser_binding.cookie(started.binding_nonce)
    return redirect(started.authorize_url, [binding], status=302, policy=function.web.site.policy)


@app.get("/oauth/callback")
def callback() -> Response[str]:
    from pleo_connector.connect.idempotency import once
    from pleo_connector.web.pages import oauth_done_page

    function = deps()
    params = CallbackParams.parse(query_string(app))
    cookies = app.current_event.cookies

    def complete() -> dict[str, Any]:
        outcome = run(complete_oauth_install(function.install, params, cookies))
        return {
            "installation_id": outcome.installation_id,
            "status": str(outcome.status),
            "needs_configuration": outcome.needs_configuration,
        }

    done = once(
        function.idempotency_table, idempotency_key(params, cookies), complete, app.lambda_context
    )
    outcome = OAuthInstallOutcome(
        installation_id=done["installation_id"],
        status=InstallationStatus(done["status"]),
        needs_configuration=bool(done["needs_configuration"]),
    )
    web = function.web
    session = web.sessions.issue(outcome.installation_id)
    set_cookies = [web.browser_binding.clear_cookie(), web.sessions.cookie(session)]
    if outcome.needs_configuration:
        return web.site.redirect("/settings", set_cookies)
    return oauth_done_page(site=web.site, cookies=set_cookies)


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
