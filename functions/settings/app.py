"""GET and POST /settings (connection and sync choices, progress until ACTIVATED, the last sync,
what is wrong with the accounting system), POST /settings/sync ("sync now"), POST
/settings/preview (a dry run of the saved settings or of the form's) and GET /settings/progress
(what the page's progress check polls)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from pleo_connector.aio import run
from pleo_connector.composition.http import (
    checked_form,
    current_session,
    install_error_pages,
    session_installation,
)
from pleo_connector.composition.roots import SettingsFunction, WebParts, build_settings_function
from pleo_connector.config import SettingsFunctionSettings, load_settings
from pleo_connector.connect.errors import ConnectError
from pleo_connector.connect.settings import (
    available_tag_groups,
    load_installation,
    preview_of,
    progress,
    progress_of,
    request_preview,
    request_sync,
    save_settings,
    saved_connection_settings,
    sync_activity,
)
from pleo_connector.installation_config import SyncChoices
from pleo_connector.observability import observed
from pleo_connector.vocabulary import InstallationStatus, LocalError
from pleo_connector.web.csrf import csrf_token
from pleo_connector.web.forms import (
    FormError,
    form_fields,
    parse_form,
    parse_sync_choices,
    single_value,
)
from pleo_connector.web.pages import (
    SettingsView,
    describe_plan,
    describe_run,
    settings_page,
    tag_group_options,
)
from pleo_connector.web.responses import json_response

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import BaseModel

    from pleo_connector.store.installations import InstallationRecord
    from pleo_connector.web.session import Session

app = APIGatewayHttpResolver()

STATUS_MESSAGES = {
    InstallationStatus.AUTHORIZED: (
        "Connected to Pleo. Set up the accounting system below to start syncing."
    ),
    InstallationStatus.PENDING_INTEGRATION: (
        "The first sync is running. This page updates by itself."
    ),
    InstallationStatus.ACTIVATED: "Connected and syncing on schedule.",
    InstallationStatus.INACTIVE: "Save the settings below to start syncing again.",
    InstallationStatus.ERROR: "Pleo no longer accepts this connection. Please connect again.",
}


AUTH_PROBLEM_MESSAGE = (
    "The stored Pleo credentials can no longer be used. Please connect again from Pleo."
)
SOURCE_PAUSED_MESSAGE = "Syncing is paused after repeated failures of the accounting system."


def _status_message(record: InstallationRecord) -> str | None:
    if record.local_error == LocalError.AUTH_ERROR:
        return AUTH_PROBLEM_MESSAGE
    if (
        record.status == InstallationStatus.INACTIVE
        and record.local_error == LocalError.SOURCE_FAILING
    ):
        return SOURCE_PAUSED_MESSAGE
    return STATUS_MESSAGES.get(record.status)


@cache
def deps() -> SettingsFunction:
    return build_settings_function(load_settings(SettingsFunctionSettings))


def web() -> WebParts:
    return deps().web


install_error_pages(app, web)


def _view(
    function: SettingsFunction,
    installation_id: str,
    csrf: str,
    *,
    submitted: dict[str, list[str]] | None = None,
    errors: dict[str, str] | None = None,
) -> SettingsView:
    services = function.settings
    record = load_installation(services.installations, installation_id)
    saved = saved_connection_settings(services, record)
    choices = SyncChoices.model_validate(record.sync_choices or {})
    values: Any = submitted if submitted is not None else saved
    activity = sync_activity(services, record)
    source_failing = record.local_error == LocalError.SOURCE_FAILING
    preview_state, preview = preview_of(services, installation_id)
    shown = progress_of(
        record,
        lease_held=activity.running,
        now=services.clock(),
        preview_state=preview_state,
        preview=preview,
    )
    return SettingsView(
        csrf_token=csrf,
        installation_id=installation_id,
        status=record.status,
        connection_fields=form_fields(services.adapter.settings_model, values, errors),
        tag_groups=tag_group_options(available_tag_groups(services, saved), choices.tag_groups),
        choices=choices,
        auth_method=record.auth_method,
        error_code=record.error_code,
        status_message=_status_message(record),
        errors=errors or {},
        can_sync=record.schedulable,
        last_run=None if activity.last_run is None else describe_run(activity.last_run),
        sync_running=activity.running,
        sync_queued=activity.queued,
        source_problem=record.failure_reason if source_failing else None,
        source_failures=record.failure_count if source_failing else 0,
        paused=record.paused,
        preview=describe_plan(preview_state, preview),
        can_preview_saved=record.config.get("connection") is not None,
        progress_key=shown.key if shown.unfinished else None,
    )


@app.get("/settings")
def show() -> Response[str]:
    function = deps()
    session = current_session(app, function.web)
    installation_id = session_installation(app, session)
    view = _view(function, installation_id, csrf_token(session))
    return settings_page(view, site=function.web.site)


class UnknownPreviewError(ConnectError):
    """A dry-run form that names neither the saved settings nor the form's."""

    back_to = "/settings"


def _read_form(
    function: SettingsFunction, installation_id: str, form: dict[str, list[str]]
) -> tuple[BaseModel | None, SyncChoices | None, dict[str, str]]:
    """The form's connection settings and sync choices, or the messages of what is wrong."""
    services = function.settings
    record = load_installation(services.installations, installation_id)
    saved = saved_connection_settings(services, record)
    errors: dict[str, str] = {}
    connection = choices = None
    try:
        connection = parse_form(services.adapter.settings_model, form, current=saved)
    except FormError as error:
        errors.update(error.errors)
    try:
        offered = [code for code, _ in available_tag_groups(services, saved)]
        choices = parse_sync_choices(form, offered)
    except FormError as error:
        errors.update(error.errors)
    return connection, choices, errors


def _form_rejected(
    function: SettingsFunction,
    installation_id: str,
    session: Session,
    form: dict[str, list[str]],
    errors: dict[str, str],
) -> Response[str]:
    view = _view(function, installation_id, csrf_token(session), submitted=form, errors=errors)
    return settings_page(view, status=400, site=function.web.site)


@app.post("/settings")
def save() -> Response[str]:
    function = deps()
    session = current_session(app, function.web)
    installation_id = session.require_installation()
    form = checked_form(app, function.web, session)
    connection, choices, errors = _read_form(function, installation_id, form)
    if errors or connection is None or choices is None:
        return _form_rejected(function, installation_id, session, form, errors)
    run(save_settings(function.settings, installation_id, connection, choices))
    return function.web.site.redirect("/settings")


@app.post("/settings/preview")
def preview() -> Response[str]:
    """A dry run: `preview=saved` tries the saved settings, `preview=form` the form's as
    entered (the settings form's second button), without saving them."""
    function = deps()
    session = current_session(app, function.web)
    installation_id = session.require_installation()
    form = checked_form(app, function.web, session)
    which = single_value(form, "preview") or "saved"
    if which == "form":
        connection, choices, errors = _read_form(function, installation_id, form)
        if errors or connection is None or choices is None:
            return _form_rejected(function, installation_id, session, form, errors)
        request_preview(function.settings, installation_id, connection, choices)
    elif which == "saved":
        request_preview(function.settings, installation_id)
    else:
        raise UnknownPreviewError("A dry run tries the saved settings or the form's.")
    return function.web.site.redirect("/settings")


@app.get("/settings/progress")
def show_progress() -> Response[str]:
    """The installation's status, the dry run's state and the sync's, for the page's progress
    check: one small JSON answer, so polling it costs three reads."""
    function = deps()
    session = current_session(app, function.web)
    installation_id = session_installation(app, session)
    answer = progress(function.settings, installation_id)
    return json_response(answer.as_json(), policy=function.web.site.policy)


@app.post("/settings/sync")
def sync_now() -> Response[str]:
    function = deps()
    session = current_session(app, function.web)
    installation_id = session.require_installation()
    checked_form(app, function.web, session)
    request_sync(function.settings, installation_id)
    return function.web.site.redirect("/settings")


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
