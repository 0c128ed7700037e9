"""The emulator's control client, answered from memory: an error status becomes an EmulatorError
with the status and the emulator's own message; requests go out as the control API expects."""

from __future__ import annotations

import io
import json
import urllib.request
import urllib.response
from email.message import Message

import pytest

from local.pleo_emulator.control_client import EmulatorControl, EmulatorError

pytestmark = pytest.mark.unit

BASE = "http://127.0.0.1:4010"


class CannedResponse(urllib.response.addinfourl):
    msg = "canned"  # what urllib's error processor reads beside the code


class Canned(urllib.request.BaseHandler):
    """Answers every http:// request with one status and body, and keeps what was sent."""

    handler_order = 100  # before urllib's own HTTPHandler, which would open a socket

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.sent: list[urllib.request.Request] = []

    def http_open(self, request: urllib.request.Request) -> CannedResponse:
        self.sent.append(request)
        headers = Message()
        headers["Content-Type"] = self.content_type
        return CannedResponse(io.BytesIO(self.body), headers, request.full_url, self.status)


def control_answering(
    status: int, body: object, content_type: str = "application/json"
) -> tuple[EmulatorControl, Canned]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    canned = Canned(status, raw, content_type)
    return EmulatorControl(BASE, opener=urllib.request.build_opener(canned)), canned


def test_an_error_status_raises_with_the_status_and_the_emulators_message() -> None:
    control, _ = control_answering(
        400, {"type": "bad_request", "message": "client_secret is required for a new client"}
    )

    with pytest.raises(EmulatorError) as raised:
        control.register_client("new-client")

    assert raised.value.status == 400
    assert raised.value.message == "client_secret is required for a new client"
    assert (raised.value.method, raised.value.path) == ("POST", "/_emulator/clients")
    assert str(raised.value) == (
        "emulator POST /_emulator/clients -> 400: client_secret is required for a new client"
    )


def test_the_error_is_a_runtime_error_as_the_callers_expect() -> None:
    control, _ = control_answering(404, {"type": "not_found", "message": "no such API key"})

    with pytest.raises(RuntimeError, match="404: no such API key"):
        control.revoke_api_key("pleo_key_unknown")


def test_an_oauth_error_body_gives_its_description() -> None:
    control, _ = control_answering(
        400, {"error": "invalid_grant", "error_description": "the code was used"}
    )

    with pytest.raises(EmulatorError) as raised:
        control.settings()

    assert raised.value.message == "the code was used"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>\n  <h1>Bad   Gateway</h1>\n</html>", "<html> <h1>Bad Gateway</h1> </html>"),
        (b"", "(empty body)"),
        (b'{"type": "bad_request"}', '{"type": "bad_request"}'),
        (b"x" * 1000, "x" * 300),
    ],
)
def test_a_body_without_a_message_is_quoted_short(body: bytes, message: str) -> None:
    control, _ = control_answering(502, body, content_type="text/html")

    with pytest.raises(EmulatorError) as raised:
        control.faults()

    assert raised.value.status == 502
    assert raised.value.message == message


def test_a_success_is_the_parsed_json() -> None:
    control, canned = control_answering(200, {"tag_groups": [], "vendors": [{"id": "v1"}]})

    data = control.data("company-1")

    assert data == {"tag_groups": [], "vendors": [{"id": "v1"}]}
    [sent] = canned.sent
    assert sent.get_method() == "GET"
    assert sent.full_url == f"{BASE}/_emulator/data?company_id=company-1"
    assert sent.data is None


def test_a_fault_rule_goes_out_as_json_without_the_unset_fields() -> None:
    control, canned = control_answering(201, {"id": "rule-1", "kind": "timeout", "commit": True})

    rule = control.inject_fault("timeout", hang_ms=50, operation="POST /v1/vendors", commit=True)

    assert rule["commit"] is True
    [sent] = canned.sent
    assert sent.get_method() == "POST"
    assert sent.full_url == f"{BASE}/_emulator/faults"
    assert sent.get_header("Content-type") == "application/json"
    assert isinstance(sent.data, bytes)
    assert json.loads(sent.data) == {
        "kind": "timeout",
        "hang_ms": 50,
        "operation": "POST /v1/vendors",
        "commit": True,
    }
