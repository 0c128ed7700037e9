"""GET and POST /install/api-key: paste a Pleo API key, checked live, stored encrypted."""

from __future__ import annotations

import hashlib
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from pleo_connector.aio import run
from pleo_connector.composition.http import checked_form, install_error_pages
from pleo_connector.composition.roots import (
    ApiKeyInstallFunction,
    WebParts,
    build_api_key_install_function,
)
from pleo_connector.config import ApiKeyInstallFunctionSettings, load_settings
from pleo_connector.connect.api_key_install import install_with_api_key
from pleo_connector.connect.errors import InvalidApiKeyError
from pleo_connector.observability import observed
from pleo_connector.web.csrf import csrf_token
from pleo_connector.web.forms import single_value
from pleo_connector.web.pages import api_key_page
from pleo_connector.web.session import SessionError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver()


@cache
def deps() -> ApiKeyInstallFunction:
    return build_api_key_install_function(load_settings(ApiKeyInstallFunctionSettings))


def web() -> WebParts:
    return deps().web


install_error_pages(app, web)


@app.get("/install/api-key")
def show_form() -> Response[str]:
    """The form. A browser without a session gets one with no installation, so the POST carries
    a CSRF token like every other form."""
    parts = web()
    try:
        session = parts.sessions.read(app.current_event.cookies)
    except SessionError:
        session = parts.sessions.issue(None)
    return api_key_page(
        csrf_token(session),
        replacing=session.installation_id is not None,
        site=parts.site,
        cookies=[parts.sessions.cookie(session)],
    )


@app.post("/install/api-key")
def submit() -> Response[str]:
    from pleo_connector.connect.idempotency import once

    function = deps()
    parts = function.web
    session = parts.sessions.read(app.current_event.cookies)
    form = checked_form(app, parts, session)
    api_key = single_value(form, "api_key")
    replacing = session.installation_id

    def install() -> dict[str, Any]:
        outcome = run(
            install_with_api_key(function.install, api_key, replacing_installation_id=replacing)
        )
        return {"installation_id": outcome.installation_id}

    # A retried POST of the same key from the same session must not queue a second first sync.
    key = hashlib.sha256(f"{session.session_id}\x00{api_key or ''}".encode()).hexdigest()
    try:
        installed = once(function.idempotency_table, key, install, app.lambda_context)
    except InvalidApiKeyError as error:
        return api_key_page(
            csrf_token(session),
            error=error.user_message,
            replacing=replacing is not None,
            status=error.http_status,
            site=parts.site,
        )
    new_session = parts.sessions.issue(installed["installation_id"])
    return parts.site.redirect("/settings", [parts.sessions.cookie(new_session)])


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
