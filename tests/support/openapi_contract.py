"""Hold an httpx request/response pair to Pleo's published OpenAPI documents (openapi-core).

The documents are the repository's `contract/pleo-openapi/` (or `$PLEO_OPENAPI_DIR`). Usage in a
test::

    response = httpx.get(...)
    assert_conforms(response)          # the request and the response, or AssertionError

Responses with a status the document does not list (Pleo documents no 401 or 429), and non-2xx
responses of operations that document only `default`, have no schema: only their request is
checked. Every checked operation is counted in `CHECKED`, so a test can prove its coverage.
"""

from __future__ import annotations

from collections import Counter

import httpx

from local.pleo_emulator.contract import Contract, ContractError, Operation, shared_contract

__all__ = [
    "CHECKED",
    "ContractError",
    "assert_conforms",
    "assert_request_conforms",
    "contract",
    "operation_of",
    "request_errors",
    "response_errors",
]

# "METHOD /path/{template}" -> how many request/response pairs were checked in this process.
CHECKED: Counter[str] = Counter()


def contract() -> Contract:
    return shared_contract()


def operation_of(request: httpx.Request) -> Operation | None:
    """The documented operation this request calls, or None (OAuth and control paths)."""
    return contract().find(request.method, request.url.path)


def request_errors(request: httpx.Request) -> list[str]:
    return contract().request_errors(
        method=request.method,
        path=request.url.path,
        query=list(request.url.params.multi_items()),
        headers=dict(request.headers),
        body=_body(request),
        content_type=request.headers.get("content-type", ""),
    )


def response_errors(response: httpx.Response) -> list[str]:
    request = response.request
    return contract().response_errors(
        method=request.method,
        path=request.url.path,
        query=list(request.url.params.multi_items()),
        request_headers=dict(request.headers),
        request_body=_body(request),
        request_content_type=request.headers.get("content-type", ""),
        status=response.status_code,
        headers=dict(response.headers),
        body=response.content or None,
        content_type=response.headers.get("content-type", ""),
    )


def assert_request_conforms(request: httpx.Request) -> Operation:
    operation = operation_of(request)
    if operation is None:
        raise ContractError(f"{request.method} {request.url.path}: no Pleo document covers it")
    errors = request_errors(request)
    if errors:
        raise ContractError(f"request {operation.name} breaks {operation.document}: {errors}")
    return operation


def assert_conforms(response: httpx.Response) -> Operation:
    """Both halves of the exchange conform to the document that covers the path."""
    operation = assert_request_conforms(response.request)
    errors = response_errors(response)
    if errors:
        raise ContractError(
            f"response {response.status_code} of {operation.name} breaks "
            f"{operation.document}: {errors}"
        )
    CHECKED[operation.name] += 1
    return operation


def _body(request: httpx.Request) -> bytes | None:
    try:
        content = request.content
    except httpx.RequestNotRead:
        content = request.read()
    return content or None
