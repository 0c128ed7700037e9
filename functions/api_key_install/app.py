"""GET and POST /install/api-key: paste a Pleo API key, checked live, stored encrypted."""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from pleo_connector.aio import run
from pleo_connector.connect.api_key_install import install_with_api_key
from pleo_connector.connect.errors import InvalidApiKeyError
from pleo_connector.connect.http import checked_form, install_error_pages
from pleo_connector.connect.wiring import Collaborators
from pleo_connector.observability import logger
from pleo_connector.web.csrf import csrf_token
from pleo_connector.web.forms import single_value
from pleo_connector.web.pages import api_key_page
from pleo_connector.web.session import SessionError

app = APIGatewayHttpResolver()


@cache
def deps() -> Collaborators:
    return Collaborators.from_environment(pleo=True, web=True, queue=True)


install_error_pages(app, deps)


@app.get("/install/api-key")
def show_form() -> Response[str]:
    """The form. A browser without a session gets one with no installation, so the POST carries
    a CSRF token like every other form."""
    collaborators = deps()
    try:
        session = collaborators.sessions.read(app.current_event.cookies)
    except SessionError:
        session = collaborators.sessions.issue(None)
    return api_key_page(
        csrf_token(session),
        replacing=session.installation_id is not None,
        site=collaborators.site,
        cookies=[collaborators.sessions.cookie(session)],
    )


@app.post("/install/api-key")
def submit() -> Response[str]:
    from pleo_connector.connect.idempotency import once

    collaborators = deps()
    session = collaborators.sessions.read(app.current_event.cookies)
    form = checked_form(app, collaborators, session)
    api_key = single_value(form, "api_key")
    replacing = session.installation_id

    def install() -> dict[str, Any]:
        outcome = run(
            install_with_api_key(collaborators, api_key, replacing_installation_id=replacing)
        )
        return {"installation_id": outcome.installation_id}

    # A retried POST of the same key from the same session must not queue a second first sync.
    key = hashlib.sha256(f"{session.session_id}\x00{api_key or ''}".encode()).hexdigest()
    try:
        installed = once(collaborators.store_settings.table_name, key, install, app.lambda_context)
    except InvalidApiKeyError as error:
        return api_key_page(
            csrf_token(session),
            error=error.user_message,
            replacing=replacing is not None,
            status=error.status_code,
            site=collaborators.site,
        )
    new_session = collaborators.sessions.issue(installed["installation_id"])
    return collaborators.site.redirect("/settings", [collaborators.sessions.cookie(new_session)])


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
