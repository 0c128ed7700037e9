"""Sending one logical request to Pleo: paths, budget, deadline, retries, errors, pagination.

Everything Pleo-specific about failure lives here, once, so resources stay one-liners. The HTTP
client is injected (tests pass `httpx.MockTransport`; contract tests record every exchange).
Each operation is retried only as far as it is safe to send twice (see `retry.py`): a POST is
taken to be a create, never resent after it may have reached Pleo, unless it declares itself
retry-safe.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
import unicodedata
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from pleo_connector.observability import logger
from pleo_connector.pleo.errors import (
    APIConnectionError,
    APITimeoutError,
    DeadlineExceededError,
    InvalidPathParameterError,
    MalformedResponseError,
    OutcomeUnknownError,
    PaginationLoopError,
    PleoError,
    RateLimitError,
    error_from_response,
    redact_secrets,
    request_id_of,
)
from pleo_connector.pleo.models import Page, PageInfo
from pleo_connector.pleo.retry import (
    Clock,
    Deadline,
    Decision,
    RetryPolicy,
    parse_retry_after,
    retry_safe_by_default,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from pleo_connector.pleo.auth import PleoAuth
    from pleo_connector.pleo.ratelimit import RateBudget, Sleep


JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
USER_AGENT = "pleo-connector/0.1"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)

# Failures that prove the request never left: no connection was made (refused, DNS, TLS
# handshake, connect timeout) or none was free in the pool. Any other transport failure may come
# after the request, or part of it, was written.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

ModelT = TypeVar("ModelT", bound=BaseModel)
QueryValue = str | int | bool | list[str] | None


def api_path(template: str, /, **params: str) -> str:
    """`template` with each `{name}` replaced by its value, checked and quoted as one segment.

    The one place a path is built from ids: a value that is empty, `.` or `..`, or that holds a
    `/` or a control character raises `InvalidPathParameterError` (it could name another
    resource, or none); every other character is percent-encoded (`quote(safe="")`), so `?`, `#`,
    `%` and `:` stay inside the segment.
    """
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if names != params.keys():
        raise InvalidPathParameterError(
            f"{template}: path parameters {sorted(names)} expected, got {sorted(params)}",
            parameter=", ".join(sorted(names ^ params.keys())),
        )
    return template.format_map({name: _segment(name, value) for name, value in params.items()})


def _segment(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidPathParameterError(f"{name} must be a string", parameter=name)
    problem = None
    if not value.strip():
        problem = "is empty"
    elif value in (".", ".."):
        problem = "is a dot segment"
    elif "/" in value:
        problem = "contains '/'"
    elif any(unicodedata.category(char) == "Cc" for char in value):
        problem = "contains a control character"
    if problem is not None:
        # The value itself stays out of the message: it came from outside and may be anything.
        raise InvalidPathParameterError(f"{name} {problem}", parameter=name)
    return quote(value, safe="")


@dataclass
class RequestCounts:
    """What a transport sent, for a run's record: every attempt (a retry counts again, since
    Pleo's rate limit does), and how many of them Pleo answered with 429."""

    sent: int = 0
    rate_limited: int = 0


class Transport:
    """One Pleo API base URL, one credential, and the policies around each request."""

    def __init__(
        self,
        api_url: str,
        auth: PleoAuth,
        *,
        http: httpx.AsyncClient | None = None,
        budget: RateBudget | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        deadline: Deadline | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Clock = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.auth = auth
        self.budget = budget
        self.retry = retry or RetryPolicy()
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.deadline = deadline
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=self.timeout)
        self.counts = RequestCounts()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, QueryValue] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
        retry_safe: bool | None = None,
    ) -> httpx.Response:
        """Send with retries; return the response when its status is in `expect`, else raise.

        `retry_safe`: whether sending the request twice has the effect of sending it once. It
        defaults by method (GET, HEAD, OPTIONS, PUT, DELETE yes; POST, PATCH no), so a POST that
        only reads or sets a state must say so. An unsafe request that may have reached Pleo is
        never sent again: `OutcomeUnknownError` instead.
        """
        safe = retry_safe_by_default(method) if retry_safe is None else retry_safe
        query = _clean_params(params)
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if content is not None:
            headers["Content-Type"] = JSON_CONTENT_TYPE
        attempt = 0
        while True:
            attempt += 1
            timeout = self._attempt_timeout(operation)
            if self.budget is not None:
                await self.budget.acquire(self.deadline)
            started = self._clock()
            self.counts.sent += 1
            try:
                response = await self._send(method, path, query, content, headers, timeout)
            except (httpx.TransportError, TimeoutError) as exc:
                failure: APIConnectionError = (
                    APITimeoutError(f"{operation}: no response in time", operation=operation)
                    if isinstance(exc, httpx.TimeoutException | TimeoutError)
                    else APIConnectionError(
                        f"{operation}: connection failed ({type(exc).__name__})",
                        operation=operation,
                    )
                )
                logger.warning(
                    "Pleo request failed",
                    extra={
                        "operation": operation,
                        "method": method,
                        "path": path,
                        "error_type": type(exc).__name__,
                        "attempt": attempt,
                    },
                )
                decision = self.retry.decide(
                    attempt, None, retry_safe=safe, sent=not isinstance(exc, NOT_SENT_ERRORS)
                )
                if decision is Decision.OUTCOME_UNKNOWN:
                    failure.__cause__ = exc
                    raise _outcome_unknown(failure, operation) from failure
                if decision is Decision.FAIL:
                    raise failure from exc
                await self._wait(attempt, None, operation, failure)
                continue
            elapsed_ms = (self._clock() - started) * 1000
            status = response.status_code
            # Debug: one line per request is most of a sync's log volume at INFO.
            logger.debug(
                "Pleo answered",
                extra={
                    "operation": operation,
                    "method": method,
                    "path": path,
                    "status": status,
                    "elapsed_ms": round(elapsed_ms),
                    "attempt": attempt,
                    "request_id": request_id_of(response),
                },
            )
            if status in expect:
                return response
            retry_after = parse_retry_after(
                response.headers.get("retry-after"), now=self._wall_clock()
            )
            error = error_from_response(
                response, operation, retry_after=retry_after, redact=self.auth.secret_values()
            )
            if isinstance(error, RateLimitError):
                self.counts.rate_limited += 1
                if self.budget is not None:
                    await self.budget.on_rate_limited()
            decision = self.retry.decide(attempt, status, retry_safe=safe, retry_after=retry_after)
            if decision is Decision.OUTCOME_UNKNOWN:
                raise _outcome_unknown(error, operation) from error
            if decision is Decision.FAIL:
                raise error
            await self._wait(attempt, retry_after, operation, error)

    async def request_model(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, QueryValue] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
        wrapped: bool = True,
        retry_safe: bool | None = None,
    ) -> ModelT:
        """Send and parse the body (inside `data` when `wrapped`) as `model`."""
        response = await self.request(
            method,
            path,
            operation=operation,
            params=params,
            body=body,
            expect=expect,
            retry_safe=retry_safe,
        )
        payload = _json_of(response, operation)
        if wrapped:
            payload = _unwrap(payload, operation, response.status_code)
        return _validate(model, payload, operation, response.status_code)

    async def request_list(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, QueryValue] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
        retry_safe: bool | None = None,
    ) -> list[ModelT]:
        """Send and parse `{data: [...]}` as a list of `model`."""
        response = await self.request(
            method,
            path,
            operation=operation,
            params=params,
            body=body,
            expect=expect,
            retry_safe=retry_safe,
        )
        payload = _unwrap(_json_of(response, operation), operation, response.status_code)
        if not isinstance(payload, list):
            raise MalformedResponseError(
                f"{operation}: expected a list in `data`",
                operation=operation,
                status_code=response.status_code,
            )
        return [_validate(model, item, operation, response.status_code) for item in payload]

    async def fetch_page(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        *,
        operation: str,
        after: str | None,
        params: Mapping[str, QueryValue] | None = None,
        body: Any = None,
        limit: int | None = None,
        retry_safe: bool | None = None,
        offset: int | None = None,
    ) -> Page[ModelT]:
        query: dict[str, QueryValue] = dict(params or {})
        query["after"] = after
        query["offset"] = offset
        query["limit"] = limit
        response = await self.request(
            method, path, operation=operation, params=query, body=body, retry_safe=retry_safe
        )
        payload = _json_of(response, operation)
        if not isinstance(payload, dict) or "data" not in payload:
            raise MalformedResponseError(
                f"{operation}: expected a page with `data`",
                operation=operation,
                status_code=response.status_code,
            )
        try:
            return Page[model].model_validate(payload)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise MalformedResponseError(
                f"{operation}: the page does not match Pleo's model ({exc.error_count()} errors)",
                operation=operation,
                status_code=response.status_code,
            ) from None

    def paginate(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, QueryValue] | None = None,
        body: Any = None,
        limit: int | None = None,
        retry_safe: bool | None = None,
        pages_at_once: int = 1,
    ) -> AsyncIterator[ModelT]:
        """Every item of a cursor-paginated list, page after page (a POST search declares
        `retry_safe=True`: it only reads). With `pages_at_once` above 1, the pages after the
        first are fetched that many at a time, by offset (`read_by_offset`)."""

        async def fetch(after: str | None, offset: int | None = None) -> Page[ModelT]:
            return await self.fetch_page(
                model,
                method,
                path,
                operation=operation,
                after=after,
                params=params,
                body=body,
                limit=limit,
                retry_safe=retry_safe,
                offset=offset,
            )

        if pages_at_once > 1:
            return read_by_offset(fetch, pages_at_once, operation=operation)
        return follow_cursor(fetch, operation=operation)

    def _attempt_timeout(self, operation: str) -> httpx.Timeout:
        if self.deadline is None:
            return self.timeout
        remaining = self.deadline.remaining()
        if remaining <= 0:
            raise DeadlineExceededError(f"{operation}: the deadline has passed")
        return httpx.Timeout(
            connect=_cap(self.timeout.connect, remaining),
            read=_cap(self.timeout.read, remaining),
            write=_cap(self.timeout.write, remaining),
            pool=_cap(self.timeout.pool, remaining),
        )

    async def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str | int | float | bool | None]],
        content: bytes | None,
        headers: dict[str, str],
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        request = self._http.build_request(
            method,
            self.api_url + path,
            params=query,
            content=content,
            headers=headers,
            timeout=timeout,
        )
        if self.deadline is None:
            return await self._http.send(request, auth=self.auth)
        # httpx's timeouts are per phase; the deadline bounds the whole exchange.
        async with asyncio.timeout(max(self.deadline.remaining(), 0.0)):
            return await self._http.send(request, auth=self.auth)

    async def _wait(
        self, attempt: int, retry_after: float | None, operation: str, cause: Exception
    ) -> None:
        delay = self.retry.delay(attempt, retry_after)
        if self.deadline is not None and delay >= self.deadline.remaining():
            message = (
                f"{operation}: giving up after attempt {attempt}: the next try would start "
                f"past the deadline ({redact_secrets(str(cause), self.auth.secret_values())})"
            )
            raise DeadlineExceededError(message) from cause
        logger.info(
            "Pleo request retried",
            extra={"operation": operation, "delay_s": round(delay, 2), "attempt": attempt},
        )
        await self._sleep(delay)


async def follow_cursor[ModelT: BaseModel](
    fetch: Callable[[str | None], Awaitable[Page[ModelT]]],
    *,
    operation: str = "list",
    max_pages: int = 100_000,
    after: str | None = None,
) -> AsyncIterator[ModelT]:
    """Follow `endCursor` while `hasNextPage`, from the page after `after` (from the start when
    None); a cursor seen before is an error, not a loop."""
    seen: set[str] = set()
    for _ in range(max_pages):
        page = await fetch(after)
        for item in page.data:
            yield item
        info: PageInfo = page.pagination
        if not info.has_next_page:
            return
        cursor = info.end_cursor
        if not cursor:
            raise PaginationLoopError(f"{operation}: hasNextPage without an endCursor")
        if cursor in seen or cursor == after:
            raise PaginationLoopError(f"{operation}: Pleo repeated a page cursor")
        seen.add(cursor)
        after = cursor
    raise PaginationLoopError(f"{operation}: more than {max_pages} pages")


async def read_by_offset[ModelT: BaseModel](
    fetch: Callable[[str | None, int | None], Awaitable[Page[ModelT]]],
    pages_at_once: int,
    *,
    operation: str = "list",
    max_pages: int = 100_000,
) -> AsyncIterator[ModelT]:
    """Every item of a list, in the cursor's order, with up to `pages_at_once` pages in flight.

    A cursor read waits one round trip per page, so n pages take n times Pleo's latency whatever
    the rate budget allows. Pleo's pages also take an `offset`, and the first page tells the
    `total`, so the offsets of the others are known at once: they are fetched ahead (at most
    `pages_at_once`, so memory stays a few pages) and handed out in order. `fetch(after, offset)`
    gets one page.

    Offsets hold only while the list stands still. A page that shows it moved (another total,
    a short page before the last, a record of the page before again) is dropped with those
    fetched ahead, and the read goes on by cursor after the last page handed out, so no record
    comes twice. A removal and an addition between two pages keep the total and can hide one
    record from this read; a cursor read is no snapshot either (it misses what is added behind
    it). Without a total, the cursor goes on from the first page.
    """
    first = await fetch(None, None)
    for item in first.data:
        yield item
    info = first.pagination
    if not info.has_next_page:
        return
    resume, size, total = info.end_cursor, len(first.data), info.total
    if total is not None and 0 < size < total and total // size < max_pages:
        offsets = iter(range(size, total, size))
        ahead: deque[tuple[int, asyncio.Future[Page[ModelT]]]] = deque()
        previous = first
        try:
            while True:
                while len(ahead) < pages_at_once and (offset := next(offsets, None)) is not None:
                    ahead.append((offset, asyncio.ensure_future(fetch(None, offset))))
                if not ahead:
                    return
                offset, pending = ahead.popleft()
                page = await pending
                if not _continues(previous, page, offset, size, total):
                    logger.warning(
                        "the list changed while it was read by offset; going on by cursor",
                        extra={"operation": operation},
                    )
                    break
                for item in page.data:
                    yield item
                previous, resume = page, page.pagination.end_cursor
        finally:
            for _, pending in ahead:
                pending.cancel()
            await asyncio.gather(*(pending for _, pending in ahead), return_exceptions=True)
    if not resume:
        raise PaginationLoopError(f"{operation}: hasNextPage without an endCursor")
    rest = follow_cursor(
        lambda after: fetch(after, None), operation=operation, max_pages=max_pages, after=resume
    )
    async for item in rest:
        yield item


def _continues[ModelT: BaseModel](
    previous: Page[ModelT], page: Page[ModelT], offset: int, size: int, total: int
) -> bool:
    """Whether the page at `offset` is the list as the first page saw it, right after
    `previous`: the same total, full unless it is the last (which ends the list), and none of
    `previous`'s records again (by id; a record added before the offset shifts the rest)."""
    last = offset + size >= total
    expected = total - offset if last else size
    info = page.pagination
    if info.total != total or len(page.data) != expected or info.has_next_page == last:
        return False
    if not last and not info.end_cursor:
        return False
    before = {item_id for item in previous.data if (item_id := getattr(item, "id", None))}
    return not any(getattr(item, "id", None) in before for item in page.data)


def _outcome_unknown(failure: PleoError, operation: str) -> OutcomeUnknownError:
    """An unsafe request's failure after it may have reached Pleo; `failure` is already redacted."""
    logger.warning(
        "Pleo request outcome unknown; not sent again",
        extra={"operation": operation, "error": str(failure)},
    )
    return OutcomeUnknownError(
        f"{failure} (outcome unknown: not sent again, as Pleo may have applied it)",
        operation=operation,
        cause=failure,
    )


def _cap(value: float | None, remaining: float) -> float:
    return remaining if value is None else min(value, remaining)


def _clean_params(
    params: Mapping[str, QueryValue] | None,
) -> list[tuple[str, str | int | float | bool | None]]:
    """Query pairs without the unset ones; lists repeat the name (`style: form, explode: true`)."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif isinstance(value, list):
            pairs.extend((name, str(item)) for item in value)
        else:
            pairs.append((name, str(value)))
    return pairs


def _json_of(response: httpx.Response, operation: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise MalformedResponseError(
            f"{operation}: HTTP {response.status_code} with a body that is not JSON",
            operation=operation,
            status_code=response.status_code,
        ) from None


def _unwrap(payload: Any, operation: str, status_code: int) -> Any:
    if not isinstance(payload, dict) or "data" not in payload:
        raise MalformedResponseError(
            f"{operation}: expected the result inside `data`",
            operation=operation,
            status_code=status_code,
        )
    return payload["data"]


def _validate[ModelT: BaseModel](
    model: type[ModelT], payload: Any, operation: str, status_code: int
) -> ModelT:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) for e in exc.errors()}))[:200]
        raise MalformedResponseError(
            f"{operation}: the response does not match Pleo's model (fields: {fields})",
            operation=operation,
            status_code=status_code,
        ) from None
