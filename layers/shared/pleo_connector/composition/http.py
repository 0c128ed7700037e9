"""What every page handler shares: one mapping from each error to its page, the session and form
readers. Handlers stay thin and alike: routes call a service and pick a page.

The mapping is registered once per resolver (`install_error_pages`): every error of the family
(`errors.ConnectorError`) carries its own status and message and gets its page from them; Pleo's
`error=` answer has a page of its own; anything else is a plain 500 with no detail (the detail
goes to the logs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pleo_connector.connect.errors import AuthorizationDeniedError
from pleo_connector.errors import GENERIC_MESSAGE, ConnectorError
from pleo_connector.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

    from pleo_connector.composition.roots import WebParts
    from pleo_connector.web.session import Session


def install_error_pages(app: APIGatewayHttpResolver, web: Callable[[], WebParts]) -> None:
    """Register the one page for every error a request can meet."""
    from pleo_connector.web.pages import error_page, oauth_error_page, page_for_error

    def _family(error: ConnectorError) -> Response[str]:
        parts = web()
        if error.http_status >= 500:
            logger.warning("request failed", extra={"reason": type(error).__name__})
        else:
            logger.info("request refused", extra={"reason": type(error).__name__})
        cookies = [parts.sessions.clear_cookie()] if error.clears_session else None
        page = page_for_error(error, site=parts.site, cookies=cookies)
        return page if page is not None else _unexpected(error)

    def _denied(error: AuthorizationDeniedError) -> Response[str]:
        logger.info("request refused", extra={"reason": type(error).__name__})
        return oauth_error_page(error.error, error.description, site=web().site)

    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return error_page(500, GENERIC_MESSAGE, title="Something went wrong", site=web().site)

    def _not_found(error: Exception) -> Response[str]:
        return error_page(404, "There is no such page.", site=web().site)

    # Registered by call rather than as decorators: Powertools' decorators are untyped. Powertools
    # picks the handler of the nearest class in the error's MRO.
    app.exception_handler(ConnectorError)(_family)
    app.exception_handler(AuthorizationDeniedError)(_denied)
    app.exception_handler(Exception)(_unexpected)
    app.not_found(_not_found)


def current_session(app: APIGatewayHttpResolver, web: WebParts) -> Session:
    """The request's verified session (SessionError otherwise: a 401 page)."""
    return web.sessions.read(app.current_event.cookies)


def checked_form(
    app: APIGatewayHttpResolver, web: WebParts, session: Session
) -> dict[str, list[str]]:
    """The POSTed form, after the CSRF checks (token, Sec-Fetch-Site, Origin) and, when the form
    names its installation, the check that it is the session's (SessionScopeError: a 403)."""
    from pleo_connector.web.csrf import check_post
    from pleo_connector.web.forms import parse_form_body, single_value

    form = parse_form_body(app.current_event.decoded_body)
    check_post(app.current_event.headers, form, session, web.public_base_url)
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
