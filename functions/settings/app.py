"""GET and POST /settings (connection and sync choices, progress until ACTIVATED) and
POST /settings/sync ("sync now")."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from pleo_connector.aio import run
from pleo_connector.connect.http import (
    checked_form,
    current_session,
    install_error_pages,
    session_installation,
)
from pleo_connector.connect.settings import (
    ADAPTER,
    available_tag_groups,
    load_installation,
    request_sync,
    save_settings,
    saved_connection_settings,
)
from pleo_connector.connect.wiring import Collaborators
from pleo_connector.observability import logger
from pleo_connector.web.csrf import csrf_token
from pleo_connector.web.forms import (
    FormError,
    SyncChoices,
    form_fields,
    parse_form,
    parse_sync_choices,
)
from pleo_connector.web.pages import SettingsView, settings_page, tag_group_options

app = APIGatewayHttpResolver()

STATUS_MESSAGES = {
    "AUTHORIZED": "Connected to Pleo. Set up the accounting system below to start syncing.",
    "PENDING_INTEGRATION": "The first sync is running. This page updates by itself.",
    "ACTIVATED": "Connected and syncing on schedule.",
    "INACTIVE": "Syncing is paused after repeated failures of the accounting system.",
    "ERROR": "Pleo no longer accepts this connection. Please connect again.",
}


AUTH_PROBLEM_MESSAGE = (
    "The stored Pleo credentials can no longer be used. Please connect again from Pleo."
)


@cache
def deps() -> Collaborators:
    return Collaborators.from_environment(pleo=True, web=True, queue=True)


install_error_pages(app, deps)


def _view(
    collaborators: Collaborators,
    installation_id: str,
    csrf: str,
    *,
    submitted: dict[str, list[str]] | None = None,
    errors: dict[str, str] | None = None,
) -> SettingsView:
    from pleo_connector.store.installations import AUTH_ERROR

    record = load_installation(collaborators, installation_id)
    saved = saved_connection_settings(collaborators, record)
    choices = SyncChoices.model_validate(record.sync_choices or {})
    values: Any = submitted if submitted is not None else saved
    return SettingsView(
        csrf_token=csrf,
        installation_id=installation_id,
        status=record.status,
        connection_fields=form_fields(ADAPTER.settings_model, values, errors),
        tag_groups=tag_group_options(available_tag_groups(saved), choices.tag_groups),
        choices=choices,
        auth_method=record.auth_method,
        error_code=record.error_code,
        status_message=(
            AUTH_PROBLEM_MESSAGE
            if record.local_error == AUTH_ERROR
            else STATUS_MESSAGES.get(record.status)
        ),
        errors=errors or {},
        can_sync=record.schedulable,
    )


@app.get("/settings")
def show() -> Response[str]:
    collaborators = deps()
    session = current_session(app, collaborators)
    installation_id = session_installation(app, session)
    view = _view(collaborators, installation_id, csrf_token(session))
    return settings_page(view, site=collaborators.site)


@app.post("/settings")
def save() -> Response[str]:
    collaborators = deps()
    session = current_session(app, collaborators)
    installation_id = session.require_installation()
    form = checked_form(app, collaborators, session)
    record = load_installation(collaborators, installation_id)
    saved = saved_connection_settings(collaborators, record)
    errors: dict[str, str] = {}
    try:
        connection = parse_form(ADAPTER.settings_model, form, current=saved)
    except FormError as error:
        errors.update(error.errors)
    try:
        choices = parse_sync_choices(form, [code for code, _ in available_tag_groups(saved)])
    except FormError as error:
        errors.update(error.errors)
    if errors:
        view = _view(
            collaborators, installation_id, csrf_token(session), submitted=form, errors=errors
        )
        return settings_page(view, status=400, site=collaborators.site)
    run(save_settings(collaborators, installation_id, connection, choices))
    return collaborators.site.redirect("/settings")


@app.post("/settings/sync")
def sync_now() -> Response[str]:
    collaborators = deps()
    session = current_session(app, collaborators)
    installation_id = session.require_installation()
    checked_form(app, collaborators, session)
    request_sync(collaborators, installation_id)
    return collaborators.site.redirect("/settings")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
