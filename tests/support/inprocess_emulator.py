"""The Pleo emulator's application called in the test's own process, behind an httpx transport.

`EmulatorTransport` hands each request the client builds to `Emulator.handle` (the same routing,
credentials, faults, OpenAPI validation, state and rules the emulator's HTTP server serves) and
turns its answer into the client's response: only the socket is skipped. A dropped answer (the
emulator's `timeout` fault) is a read timeout, as the client would meet it on a real connection.
No socket is opened, so the unit tier's network guard lets it through.

`FastEmulator` is the emulator with one change: the OpenAPI check of a request is remembered for
an identical request (method, path, query, headers and body), since the check is a pure function
of the request and costs milliseconds, and a test that sends thousands of requests sends the same
reads again and again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx

from local.pleo_emulator.app import Emulator
from local.pleo_emulator.http import Drop, Request

BASE_URL = "http://pleo.emulator.test"
_REMEMBERED = 4096  # distinct requests whose check is kept


class FastEmulator(Emulator):
    def __init__(self, base_url: str = BASE_URL) -> None:
        super().__init__(base_url)
        self._checked: OrderedDict[tuple[object, ...], list[str]] = OrderedDict()

    def _request_problems(self, request: Request) -> list[str]:
        if not self.world.settings.validate_requests:
            return []
        key = (
            request.method,
            request.path,
            tuple(request.query),
            tuple(sorted(request.headers.items())),
            request.body,
        )
        problems = self._checked.get(key)
        if problems is None:
            problems = super()._request_problems(request)
            self._checked[key] = problems
            if len(self._checked) > _REMEMBERED:
                self._checked.popitem(last=False)
        else:
            self._checked.move_to_end(key)
        return list(problems)


@dataclass(frozen=True)
class Exchange:
    """One request the transport carried and what the emulator answered (None: no answer)."""

    request: httpx.Request
    response: httpx.Response | None


class EmulatorTransport(httpx.AsyncBaseTransport):
    """An httpx transport that calls the emulator's application directly; it keeps every
    exchange in `exchanges`, so a test can see what one client (and only it) was answered."""

    def __init__(self, app: Emulator) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        split = urlsplit(request.url.raw_path.decode("ascii"))
        served = self.app.handle(
            Request(
                method=request.method,
                path=split.path,
                query=parse_qsl(split.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=body,
            )
        )
        if isinstance(served, Drop):
            self.exchanges.append(Exchange(request, None))
            raise httpx.ReadTimeout("the emulator dropped the request unanswered", request=request)
        response = httpx.Response(
            served.status, headers=served.headers, content=served.body, request=request
        )
        self.exchanges.append(Exchange(request, response))
        return response
