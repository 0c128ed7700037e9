"""One error tree for everything the Pleo client raises.

Callers branch on the type, never on message text. Messages carry the operation, the status and
Pleo's request id (what support needs), and never a token, key, code or verifier: response bodies
are kept on the exception (`.body`) but only a short, trimmed reason reaches `str(exc)`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from pleo_connector.errors import ConnectorError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import httpx

REQUEST_ID_HEADERS = ("x-request-id", "x-amzn-requestid", "x-correlation-id", "request-id")
_REASON_LIMIT = 200


class PleoError(ConnectorError):
    """Base of every error the Pleo client raises. Reaching a page, it reads as an outage."""

    http_status: ClassVar[int] = 502
    user_message = "Pleo could not be reached. Please try again in a moment."


class APIConnectionError(PleoError):
    """The request did not get an HTTP response (DNS, refused, reset, TLS)."""

    def __init__(self, message: str, *, operation: str = "") -> None:
        super().__init__(message)
        self.operation = operation


class APITimeoutError(APIConnectionError):
    """The request got no response within its timeout."""


class OutcomeUnknownError(PleoError):
    """A request that is not safe to send twice (a create) failed after it may have reached Pleo:
    no answer in time, the connection lost after sending, or a 500, 502, 504 or a 503 without
    `Retry-After`. Pleo may or may not have applied it, so it was not sent again; the caller
    reconciles by reading back what it meant to create, and adopts it when it is there.

    `cause` is the failure itself (an `APIConnectionError` or an `APIStatusError`), already
    free of credentials.
    """

    def __init__(self, message: str, *, operation: str, cause: PleoError) -> None:
        super().__init__(message)
        self.operation = operation
        self.cause = cause

    @property
    def status_code(self) -> int | None:
        """The status of the failed answer; None when no answer came."""
        return self.cause.status_code if isinstance(self.cause, APIStatusError) else None

    @property
    def request_id(self) -> str | None:
        return self.cause.request_id if isinstance(self.cause, APIStatusError) else None


class InvalidPathParameterError(PleoError, ValueError):
    """A value for a path segment (an id) that could change which resource the URL names: empty,
    a dot segment, or holding a `/` or a control character. Refused before any request."""

    def __init__(self, message: str, *, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class DeadlineExceededError(PleoError):
    """The caller's time budget ran out: no further wait or attempt fits in the time left."""


class PaginationLoopError(PleoError):
    """Pleo returned a cursor it had returned before: following it would loop forever."""


class MalformedResponseError(PleoError):
    """A success status with a body that is not what Pleo documents (not JSON, missing fields)."""

    def __init__(self, message: str, *, operation: str = "", status_code: int = 0) -> None:
        super().__init__(message)
        self.operation = operation
        self.status_code = status_code


class APIStatusError(PleoError):
    """Pleo answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        body: Any = None,
        operation: str = "",
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.body = body
        self.operation = operation


class BadRequestError(APIStatusError):
    """400: Pleo rejected the request's content."""


class AuthenticationError(APIStatusError):
    """401: the token or API key is missing, invalid, expired or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the credential lacks the scope or permission."""


class NotFoundError(APIStatusError):
    """404: the resource does not exist (for the installation: the app was removed)."""


class ConflictError(APIStatusError):
    """409: a duplicate (same code or externalId) or a conflicting change."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was understood but refused."""


class RateLimitError(APIStatusError):
    """429: too many requests; `retry_after` is Pleo's hint in seconds, when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        body: Any = None,
        operation: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, request_id=request_id, body=body, operation=operation
        )
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: Pleo failed; worth retrying later."""


class OAuthError(PleoError):
    """The authorization server refused a token request (RFC 6749 section 5.2) or answered badly."""

    def __init__(self, error: str, description: str | None = None, status_code: int = 0) -> None:
        self.error = error
        self.description = _trim(description) if description else None
        self.status_code = status_code
        detail = f": {self.description}" if self.description else ""
        super().__init__(f"token endpoint answered {error} (HTTP {status_code}){detail}")

    @property
    def retryable(self) -> bool:
        """True when a later attempt may succeed (the server failed, not the grant)."""
        return (
            self.status_code >= 500
            or self.status_code == 429
            or self.error in ("server_error", "temporarily_unavailable")
        )


class InvalidGrantError(OAuthError):
    """`invalid_grant`: the code or refresh token is expired, used, revoked or not this client's."""


class InvalidClientError(OAuthError):
    """`invalid_client`: the client id or secret is wrong (a configuration problem)."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def request_id_of(response: httpx.Response) -> str | None:
    """Pleo's request id from the response headers, if it sent one."""
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return _trim(value, 100)
    return None


def error_from_response(
    response: httpx.Response,
    operation: str,
    *,
    retry_after: float | None = None,
    redact: Iterable[str] = (),
) -> APIStatusError:
    """Build the error for an error status: the one place where status codes become types.

    `redact` lists the credential values of the request: should Pleo echo one in its reason, it
    is masked before it reaches the message.
    """
    status = response.status_code
    request_id = request_id_of(response)
    body = _parse_body(response)
    reason = _reason_from_body(body) or response.reason_phrase or "error"
    where = f" [request id {request_id}]" if request_id else ""
    message = redact_secrets(f"{operation}: HTTP {status} {reason}{where}", redact)
    kind = _STATUS_ERRORS.get(status)
    if kind is RateLimitError:
        return RateLimitError(
            message,
            status_code=status,
            request_id=request_id,
            body=body,
            operation=operation,
            retry_after=retry_after,
        )
    if kind is None:
        kind = InternalServerError if status >= 500 else APIStatusError
    return kind(message, status_code=status, request_id=request_id, body=body, operation=operation)


def _parse_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return _trim(response.text, 1000) if response.content else None


def _reason_from_body(body: Any) -> str | None:
    """Pleo's own short reason (`message`, `type`, `error`), trimmed; never the whole body."""
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "type", "title", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return _trim(value)
    return None


def _trim(text: str, limit: int = _REASON_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """Mask every occurrence of each (non-trivial) secret value in `text`."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[redacted]")
    return text
