"""The emulator's HTTP edge: every method, every framing and every garbled request gets a JSON
answer with a 4xx status, never http.server's HTML pages, a hang or a dropped connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.emulator import DEFAULT_COMPANY_ID, RunningEmulator
from tests.support.raw_http import exchange, request_bytes

if TYPE_CHECKING:
    from tests.integration.emulator.conftest import ApiFactory

pytestmark = pytest.mark.integration

INSTALLATION_METHODS = "GET, POST, PUT, DELETE"


@pytest.mark.parametrize("method", ["TRACE", "FOO", "OPTIONS", "CONNECT", "PATCH"])
def test_a_method_no_path_serves_gets_a_json_405_with_allow(
    emulator: RunningEmulator, method: str
) -> None:
    answer = exchange(emulator.url, request_bytes(method, "/v1/installations/me"))

    assert answer.status == 405
    assert answer.header("Allow") == INSTALLATION_METHODS
    assert answer.header("Content-Type") == "application/json;charset=UTF-8"
    assert answer.json() == {
        "type": "method_not_allowed",
        "message": f"{method} is not allowed here",
    }


def test_head_is_a_405_without_a_body(emulator: RunningEmulator) -> None:
    answer = exchange(emulator.url, request_bytes("HEAD", "/v1/companies"), head=True)

    assert answer.status == 405
    assert answer.header("Allow") == "GET"
    assert answer.body == b""


def test_a_served_method_on_a_path_that_does_not_take_it_names_the_allowed_ones(
    emulator: RunningEmulator,
) -> None:
    answer = httpx.delete(f"{emulator.url}/v1/vendors/00000000-0000-4000-8000-000000000000")

    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, PUT"
    assert answer.json()["type"] == "method_not_allowed"


def test_an_unknown_method_on_an_unknown_path_is_a_405_without_allow(
    emulator: RunningEmulator,
) -> None:
    answer = exchange(emulator.url, request_bytes("FOO", "/v9/nothing"))

    assert answer.status == 405
    assert answer.header("Allow") is None
    assert answer.json() == {"type": "method_not_allowed", "message": "FOO is not served"}


def test_a_known_method_on_an_unknown_path_stays_a_404(emulator: RunningEmulator) -> None:
    answer = httpx.get(f"{emulator.url}/v9/nothing")

    assert answer.status_code == 404
    assert answer.json()["type"] == "not_found"


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        (
            [("Content-Length", "2"), ("Content-Length", "5")],
            b"{}",
            "Content-Length must be one non-negative integer",
        ),
        ([("Content-Length", "2, 5")], b"{}", "Content-Length must be one non-negative integer"),
        ([("Content-Length", "abc")], b"", "Content-Length must be one non-negative integer"),
        ([("Content-Length", "-1")], b"", "Content-Length must be one non-negative integer"),
        (
            [("Content-Length", "2"), ("Transfer-Encoding", "chunked")],
            b"0\r\n\r\n",
            "send Content-Length or Transfer-Encoding, not both",
        ),
        (
            [("Transfer-Encoding", "gzip")],
            b"",
            "chunked is the only transfer coding accepted",
        ),
        (
            [("Transfer-Encoding", "chunked")],
            b"zz\r\n{}\r\n0\r\n\r\n",
            "the chunked body is malformed",
        ),
        ([("Transfer-Encoding", "chunked")], b"5\r\n{}\r\n", "the chunked body is malformed"),
        ([("Content-Length", "20")], b"{}", "the body is shorter than its Content-Length"),
    ],
)
def test_a_body_whose_framing_cannot_be_trusted_is_a_400_and_closes(
    emulator: RunningEmulator, headers: list[tuple[str, str]], body: bytes, message: str
) -> None:
    raw = request_bytes("POST", "/_emulator/clock", headers, body)
    # Half-close the body where it says more is coming, so the emulator meets the end.
    answer = exchange(emulator.url, raw, shut_write=True)

    assert answer.status == 400
    assert answer.json() == {"type": "bad_request", "message": message}
    assert answer.header("Connection") == "close"


def test_a_well_formed_chunked_body_is_read(emulator: RunningEmulator) -> None:
    chunks = b'7\r\n{"secon\r\n8\r\nds": 42}\r\n0\r\n\r\n'
    raw = request_bytes("POST", "/_emulator/clock", [("Transfer-Encoding", "chunked")], chunks)

    answer = exchange(emulator.url, raw)

    assert answer.status == 200
    assert answer.json()["clock_offset_s"] == 42


@pytest.mark.parametrize(
    ("request_line", "status", "error_type"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "http_version_not_supported"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
    ],
)
def test_a_garbled_request_line_gets_json_not_html(
    emulator: RunningEmulator, request_line: bytes, status: int, error_type: str
) -> None:
    answer = exchange(emulator.url, request_line)

    assert answer.status == status
    assert answer.json()["type"] == error_type
    assert b"GARBAGE" not in answer.body  # the request line is never echoed


def test_a_body_that_is_not_utf8_is_a_400(emulator: RunningEmulator, api: ApiFactory) -> None:
    client = api(api_key=emulator.control.issue_api_key(), lenient=True)

    answer = client.post(
        "/v1/vendors", content=b'{"name": "\xff"}', headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 400
    assert "not UTF-8" in answer.json()["message"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/chart-of-accounts:search", {"codes": 5}, "codes must be a list, got int"),
        ("/v1/chart-of-accounts:search", {"externalId": 5}, "externalId must be a string, got int"),
        ("/v0/tags:search", {"tagGroupIds": "x"}, "tagGroupIds must be a list, got str"),
        ("/v0/tags:search", {"textSearch": 1}, "textSearch must be a string, got int"),
        ("/v0/tax-codes:search", {"taxCodeIds": 3}, "taxCodeIds must be a list, got int"),
        ("/v0/tax-codes:search", {"code": []}, "code must be a string, got list"),
        ("/v1/vendors:search", {"codes": 5}, "codes must be a list, got int"),
    ],
)
def test_search_filters_of_the_wrong_type_are_a_400_even_unvalidated(
    emulator: RunningEmulator, api: ApiFactory, path: str, body: dict[str, object], message: str
) -> None:
    """With request validation off (a test setting) the handlers still answer a clear 400."""
    emulator.control.seed(vendors=[{"name": "V", "code": "V1"}])
    emulator.control.update_settings(validate_requests=False)
    client = api(api_key=emulator.control.issue_api_key(), lenient=True)
    body = {"companyId": DEFAULT_COMPANY_ID, **body}

    answer = client.post(path, params={"company_id": DEFAULT_COMPANY_ID}, json=body)

    assert answer.status_code == 400
    assert answer.json()["message"] == message


def test_a_control_request_without_a_needed_field_is_a_400(emulator: RunningEmulator) -> None:
    answer = httpx.post(
        f"{emulator.url}/_emulator/seed",
        json={"company_id": DEFAULT_COMPANY_ID, "tag_groups": [{"name": "no code"}]},
    )

    assert answer.status_code == 400
    assert answer.json()["message"] == "the control request lacks the field 'code'"
