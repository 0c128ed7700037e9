"""Powertools responses for pages and redirects, always with the security headers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from pleo_connector.web.security import SecurityPolicy, security_headers

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aws_lambda_powertools.shared.cookies import Cookie

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"
_FORBIDDEN_IN_LOCATION = frozenset("\r\n\t\x00\\")


def html_response(
    body: str,
    status: int = 200,
    cookies: Sequence[Cookie] | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    policy: SecurityPolicy | None = None,
) -> Response[str]:
    """An HTML page. Extra `headers` are added; they never replace a security header."""
    fixed = security_headers(policy)
    fixed["Content-Type"] = HTML_CONTENT_TYPE
    taken = {name.lower() for name in fixed}
    merged = {name: value for name, value in (headers or {}).items() if name.lower() not in taken}
    merged.update(fixed)
    return Response(
        status_code=status,
        content_type=HTML_CONTENT_TYPE,
        body=body,
        headers=merged,
        cookies=list(cookies or ()),
    )


def json_response(
    payload: Any, status: int = 200, *, policy: SecurityPolicy | None = None
) -> Response[str]:
    """A JSON answer (the health check's), with the same security headers as every page."""
    headers = security_headers(policy)
    headers["Content-Type"] = JSON_CONTENT_TYPE
    return Response(
        status_code=status,
        content_type=JSON_CONTENT_TYPE,
        body=json.dumps(payload, separators=(",", ":")),
        headers=headers,
    )


def redirect(
    location: str,
    cookies: Sequence[Cookie] | None = None,
    *,
    status: int = 303,
    policy: SecurityPolicy | None = None,
) -> Response[str]:
    """A redirect to a location the app built itself (a path, or a configured URL).

    303 by default: after a POST the browser follows with a GET. A location with control
    characters or a backslash is refused, so no input can split headers or bend the target.
    """
    if status not in (302, 303, 307):
        raise ValueError("a redirect status is 302, 303 or 307")
    if not location or any(char in _FORBIDDEN_IN_LOCATION for char in location):
        raise ValueError("the redirect location is not a clean URL")
    if location.startswith("//"):
        raise ValueError("a scheme-relative redirect location could leave the app")
    headers = security_headers(policy)
    headers["Location"] = location
    return Response(status_code=status, body="", headers=headers, cookies=list(cookies or ()))
