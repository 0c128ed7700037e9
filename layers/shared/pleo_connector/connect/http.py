"""What every page handler shares: one mapping from each error to its page, the session and
form readers. Handlers stay thin and alike: routes call a service and pick a page."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pleo_connector.connect.errors import (
    AuthorizationDeniedError,
    BadCallbackError,
    ConnectError,
    GrantExchangeError,
    IssuerMismatchError,
    StateRejectedError,
)
from pleo_connector.connect.wiring import Collaborators
from pleo_connector.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

    from pleo_connector.web.session import Session


SIGN_IN_ERRORS = (BadCallbackError, StateRejectedError, IssuerMismatchError, GrantExchangeError)


def install_error_pages(app: APIGatewayHttpResolver, deps: Callable[[], Collaborators]) -> None:
    """Register the one page for every error a request can meet; anything unexpected is a plain
    500 page with no detail (the detail goes to the logs)."""
    from pleo_connector.crypto import CredentialDecryptError
    from pleo_connector.web.csrf import BrowserBindingError, CsrfError
    from pleo_connector.web.forms import MalformedFormError
    from pleo_connector.web.pages import error_page, oauth_error_page, page_for_error
    from pleo_connector.web.session import SessionError

    def _connect_error(error: ConnectError) -> Response[str]:
        site = deps().site
        logger.info("request refused", extra={"reason": type(error).__name__})
        if isinstance(error, AuthorizationDeniedError):
            return oauth_error_page(error.error, error.description, site=site)
        # A failed sign-in can only be retried from the start: offer it.
        start_again = isinstance(error, SIGN_IN_ERRORS) or None
        return error_page(error.status_code, error.user_message, start_again=start_again, site=site)

    def _credential_error(error: CredentialDecryptError) -> Response[str]:
        logger.warning("stored credentials could not be decrypted")
        return error_page(
            401,
            "The stored connection could not be used. Please connect again.",
            site=deps().site,
        )

    def _web_error(error: Exception) -> Response[str]:
        collaborators = deps()
        logger.info("request refused", extra={"reason": type(error).__name__})
        cookies = [collaborators.sessions.clear_cookie()] if isinstance(error, SessionError) else []
        page = page_for_error(error, site=collaborators.site, cookies=cookies)
        if page is None:  # pragma: no cover - page_for_error knows every registered type
            return error_page(400, "The request could not be used.", site=collaborators.site)
        return page

    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return error_page(
            500,
            "Something went wrong on our side. Please try again in a moment.",
            title="Something went wrong",
            site=deps().site,
        )

    def _not_found(error: Exception) -> Response[str]:
        return error_page(404, "There is no such page.", site=deps().site)

    # Registered by call rather than as decorators: Powertools' decorators are untyped.
    app.exception_handler(ConnectError)(_connect_error)
    app.exception_handler(CredentialDecryptError)(_credential_error)
    app.exception_handler([SessionError, CsrfError, BrowserBindingError, MalformedFormError])(
        _web_error
    )
    app.exception_handler(Exception)(_unexpected)
    app.not_found(_not_found)


def current_session(app: APIGatewayHttpResolver, deps: Collaborators) -> Session:
    """The request's verified session (SessionError otherwise: a 401 page)."""
    return deps.sessions.read(app.current_event.cookies)


def checked_form(
    app: APIGatewayHttpResolver, deps: Collaborators, session: Session
) -> dict[str, list[str]]:
    """The POSTed form, after the CSRF checks (token, Sec-Fetch-Site, Origin) and, when the form
    names its installation, the check that it is the session's (SessionScopeError: a 403)."""
    from pleo_connector.web.csrf import check_post
    from pleo_connector.web.forms import parse_form_body, single_value

    form = parse_form_body(app.current_event.decoded_body)
    check_post(app.current_event.headers, form, session, deps.public_base_url)
    named = single_value(form, "installation_id")
    if named:
        session.require_installation(named)
    return form


def session_installation(app: APIGatewayHttpResolver, session: Session) -> str:
    """The session's installation; a link that names another one (`?installation_id=`) is a
    403, never a switch to that installation."""
    named = app.current_event.get_query_string_value("installation_id")
    return session.require_installation(named or None)


def query_string(app: APIGatewayHttpResolver) -> str:
    event: Any = app.current_event
    return str(event.raw_query_string or "")
