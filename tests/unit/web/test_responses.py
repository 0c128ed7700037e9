"""Security headers on every response, redirects that cannot be bent, cookies through Powertools."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from pleo_connector.web.responses import html_response, json_response, redirect
from pleo_connector.web.security import SecurityPolicy, origin_of, stylesheet
from pleo_connector.web.session import SessionCodec

pytestmark = pytest.mark.unit

REQUIRED = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def csp_directives(response: Response[str]) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    assert isinstance(header, str)
    return {
        part.strip().split(" ", 1)[0]: part.strip().split(" ", 1)[1] for part in header.split(";")
    }


def assert_security_headers(response: Response[str]) -> None:
    for name, value in REQUIRED.items():
        assert response.headers[name] == value
    csp = csp_directives(response)
    assert csp["default-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["form-action"] == "'self'"
    assert csp["style-src"].startswith("'sha256-")
    assert "http" not in " ".join(csp.values())  # nothing third-party


def test_an_html_response_carries_every_security_header() -> None:
    response = html_response("<p>hi</p>", 404)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert_security_headers(response)


def test_extra_headers_are_added_but_cannot_weaken_the_security_ones() -> None:
    response = html_response(
        "x", headers={"Retry-After": "5", "Cache-Control": "public", "content-security-policy": "x"}
    )
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Cache-Control"] == "no-store"
    assert "content-security-policy" not in response.headers


def test_the_style_hash_is_the_hash_of_the_inline_stylesheet() -> None:
    digest = base64.b64encode(hashlib.sha256(stylesheet().encode()).digest()).decode()
    assert csp_directives(html_response("x"))["style-src"] == f"'sha256-{digest}'"


def test_configured_frame_ancestors_and_form_targets_replace_the_defaults() -> None:
    policy = SecurityPolicy.for_base_url(
        "https://connector.example",
        frame_ancestors=("https://app.pleo.io/some/path",),
        form_targets=("https://auth.pleo.io/oauth/authorize",),
    )
    response = html_response("x", policy=policy)
    csp = csp_directives(response)

    assert csp["frame-ancestors"] == "https://app.pleo.io"
    assert csp["form-action"] == "'self' https://auth.pleo.io"
    assert "X-Frame-Options" not in response.headers  # it cannot name an allowed ancestor
    assert str(response.headers["Strict-Transport-Security"]).startswith("max-age=")


def test_self_framing_is_said_by_both_headers() -> None:
    policy = SecurityPolicy.for_base_url("https://connector.example", frame_ancestors=("'self'",))
    headers = policy.headers()
    assert "frame-ancestors 'self';" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "SAMEORIGIN"


def test_plain_http_gets_no_hsts() -> None:
    policy = SecurityPolicy.for_base_url("http://127.0.0.1:3000")
    assert "Strict-Transport-Security" not in policy.headers()


def test_origin_of_normalises_like_a_browser() -> None:
    assert origin_of("HTTPS://Connector.Example:443/path?q") == "https://connector.example"
    assert origin_of("http://127.0.0.1:3000/") == "http://127.0.0.1:3000"
    with pytest.raises(ValueError, match="http"):
        origin_of("javascript:alert(1)")


def test_a_redirect_carries_the_headers_and_the_location() -> None:
    response = redirect("/settings")
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings"
    assert_security_headers(response)
    assert redirect("https://auth.example/oauth/authorize?x=1", status=302).status_code == 302


@pytest.mark.parametrize(
    "location",
    ["", "/a\r\nSet-Cookie: x=1", "/a\nb", "//evil.example/", "/\\evil.example", "/a\x00"],
)
def test_a_redirect_refuses_locations_that_could_be_bent(location: str) -> None:
    with pytest.raises(ValueError, match="redirect"):
        redirect(location)


def test_a_json_response_carries_every_security_header_through_the_resolver() -> None:
    app = APIGatewayHttpResolver()

    @app.get("/health")
    def health() -> Response[str]:
        return json_response({"status": "ok"})

    result = app.resolve(v2_event("/health"), {})  # type: ignore[arg-type]

    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"status": "ok"}
    assert result["headers"]["Content-Type"] == "application/json"
    assert_security_headers(json_response({}, 404))
    for name, value in json_response({}).headers.items():
        assert result["headers"][name] == value


def v2_event(path: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": "",
        "cookies": [],
        "headers": {"host": "connector.example"},
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4"},
            "requestId": "r1",
            "routeKey": f"GET {path}",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def test_cookies_and_headers_survive_the_powertools_resolver() -> None:
    app = APIGatewayHttpResolver()
    codec = SessionCodec("k" * 40, public_base_url="https://connector.example")

    @app.get("/page")
    def page() -> Response[str]:
        return html_response("<p>ok</p>", cookies=[codec.cookie(codec.issue("inst-a"))])

    no_context: Any = {}
    result = app.resolve(v2_event("/page"), no_context)

    assert result["statusCode"] == 200
    assert result["headers"]["Cache-Control"] == "no-store"
    assert result["headers"]["Content-Security-Policy"].startswith("default-src 'none'")
    assert len(result["cookies"]) == 1
    assert re.match(
        r"__Host-pleo_session=v1\.[^;]+; Path=/; Max-Age=\d+; HttpOnly; Secure; SameSite=Lax$",
        result["cookies"][0],
    )
    json.dumps(result)  # the whole response is plain JSON for API Gateway
