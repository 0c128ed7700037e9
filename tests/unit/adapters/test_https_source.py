"""An https:// source never reaches loopback, private, link-local, metadata, multicast or
reserved addresses: the host is resolved once per hop, every address is checked, the request
goes to a checked address (the host name stays in `Host` and the TLS server name), and each
redirect is checked again. Plain http, oversized and slow answers are refused. A fake DNS and a
canned transport stand in for the network; nothing here opens a socket."""

from __future__ import annotations

import ipaddress
import threading
from typing import TYPE_CHECKING

import httpx
import pytest

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.https import (
    HttpsFetcher,
    HttpsLimits,
    IPAddress,
    embedded_ipv4,
    is_public_address,
)
from pleo_connector.adapters.sources import OpenedSource, Revision, SourceOpener, SourcePolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-token"
PUBLIC = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
URL = f"https://erp.example/export.json?token={SECRET}"

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.255",
    "169.254.169.254",  # the instance metadata service
    "169.254.170.2",  # the container credentials endpoint
    "169.254.0.1",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 (an address refused, not one bound to)
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "198.18.0.1",
    "::",
    "::1",
    "fc00::1",
    "fd00:ec2::254",  # the instance metadata service over IPv6
    "fdff:ffff::1",
    "fe80::1",
    "febf:ffff::1",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:192.168.1.1",
    "::127.0.0.1",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",
    "64:ff9b:1::1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",
    "100::1",
]
ALLOWED_ADDRESSES = [PUBLIC, "8.8.8.8", "1.1.1.1", PUBLIC_V6, "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED_ADDRESSES)
def test_public_addresses_are(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_a_zoned_ipv6_address_is_not_public() -> None:
    assert not is_public_address(ipaddress.IPv6Address(f"{PUBLIC_V6}%eth0"))


def test_mapped_and_nat64_addresses_are_judged_by_the_ipv4_address_they_carry() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("::ffff:10.1.2.3")) == ipaddress.IPv4Address(
        "10.1.2.3"
    )
    assert embedded_ipv4(ipaddress.IPv6Address("64:ff9b::a01:203")) == ipaddress.IPv4Address(
        "10.1.2.3"
    )
    assert embedded_ipv4(ipaddress.IPv6Address(PUBLIC_V6)) is None


# --- the fetch -----------------------------------------------------------------------------------


class FakeDns:
    """Answers from a table; each call takes the next answer of a host (the last one repeats),
    so a test can change the answer between two lookups as a rebinding attacker would."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.calls.append(host)
        options = self.answers.get(host)
        if options is None:
            raise OSError("no such host")
        answer = options[min(self.calls.count(host) - 1, len(options) - 1)]
        return [ipaddress.ip_address(address) for address in answer]


class Server:
    """A canned transport: `handler` answers each request; every request is kept."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def answer(
    status: int, body: bytes | Iterator[bytes] = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    """An answer whose body is still to be read, as a real connection's is."""
    stream = httpx.ByteStream(body) if isinstance(body, bytes) else _Chunks(body)
    return httpx.Response(status, stream=stream, headers=headers)


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


def snapshot_answer(request: httpx.Request) -> httpx.Response:
    return answer(200, b'{"version": 1}', {"ETag": '"v1"'})


class SteppingClock:
    def __init__(self, step: float = 0.0) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def opener(
    server: Server,
    dns: FakeDns | None = None,
    *,
    policy: SourcePolicy | None = None,
    clock: Callable[[], float] | None = None,
    limits: HttpsLimits | None = None,
) -> SourceOpener:
    clock = clock or SteppingClock()
    fetcher = HttpsFetcher(
        limits or HttpsLimits(connect_timeout_s=5.0, read_timeout_s=5.0),
        resolver=dns or FakeDns({"erp.example": [[PUBLIC]]}),
        transport=httpx.MockTransport(server),
        clock=clock,
    )
    return SourceOpener(policy or SourcePolicy(max_bytes=1000), https=fetcher, clock=clock)


def read_all(opened: OpenedSource | None) -> bytes:
    assert opened is not None
    with opened:
        return b"".join(opened.chunks())


def refusal(source_opener: SourceOpener, url: str = URL) -> SourceError:
    with pytest.raises(SourceError) as raised:
        read_all(source_opener.open(url))
    assert SECRET not in raised.value.user_message
    assert SECRET not in str(raised.value)
    return raised.value


def test_the_request_goes_to_the_checked_address_under_the_hosts_name() -> None:
    server = Server(snapshot_answer)

    assert read_all(opener(server).open(URL)) == b'{"version": 1}'

    [request] = server.requests
    assert request.url.host == PUBLIC
    assert request.url.query == f"token={SECRET}".encode()
    assert request.headers["host"] == "erp.example"
    assert request.extensions["sni_hostname"] == "erp.example"
    assert request.headers["accept-encoding"] == "identity"


def test_a_port_stays_in_the_host_header_and_ipv6_addresses_are_bracketed() -> None:
    server = Server(snapshot_answer)
    dns = FakeDns({"erp.example": [[PUBLIC_V6]]})

    read_all(opener(server, dns).open("https://erp.example:8443/x.json"))

    [request] = server.requests
    assert request.url.host == PUBLIC_V6
    assert request.url.port == 8443
    assert request.headers["host"] == "erp.example:8443"


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_host_resolving_to_an_internal_address_is_never_requested(address: str) -> None:
    server = Server(snapshot_answer)
    dns = FakeDns({"erp.example": [[address]]})

    error = refusal(opener(server, dns))

    assert error.problem is SourceProblem.REFUSED
    assert "private or internal network" in error.user_message
    assert server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        f"https://127.0.0.1/x?token={SECRET}",
        f"https://[::1]/x?token={SECRET}",
        f"https://[::ffff:169.254.169.254]/x?token={SECRET}",
        f"https://169.254.169.254/latest/meta-data/?token={SECRET}",
        f"https://[fd00:ec2::254]/latest/?token={SECRET}",
    ],
)
def test_an_internal_address_in_the_url_itself_is_never_requested(url: str) -> None:
    server = Server(snapshot_answer)
    dns = FakeDns({})

    error = refusal(opener(server, dns), url)

    assert error.problem is SourceProblem.REFUSED
    assert server.requests == []
    assert dns.calls == []


def test_a_host_with_one_internal_address_among_public_ones_is_refused() -> None:
    server = Server(snapshot_answer)
    dns = FakeDns({"erp.example": [[PUBLIC, "10.0.0.7", PUBLIC_V6]]})

    assert refusal(opener(server, dns)).problem is SourceProblem.REFUSED
    assert server.requests == []


def test_the_host_is_resolved_once_so_a_changed_answer_cannot_redirect_the_connection() -> None:
    server = Server(snapshot_answer)
    dns = FakeDns({"erp.example": [[PUBLIC], ["127.0.0.1"]]})

    read_all(opener(server, dns).open(URL))

    assert dns.calls == ["erp.example"]
    assert [request.url.host for request in server.requests] == [PUBLIC]


def test_an_address_that_refuses_the_connection_gives_way_to_the_next() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC:
            raise httpx.ConnectError("refused", request=request)
        return snapshot_answer(request)

    server = Server(handler)
    dns = FakeDns({"erp.example": [[PUBLIC, PUBLIC_V6]]})

    assert read_all(opener(server, dns).open(URL)) == b'{"version": 1}'
    assert [request.url.host for request in server.requests] == [PUBLIC, PUBLIC_V6]


def redirecting(location: str) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "erp.example":
            return httpx.Response(302, headers={"Location": location})
        return snapshot_answer(request)

    return handler


@pytest.mark.parametrize(
    "location",
    [
        "https://internal.example/admin",
        "https://127.0.0.1/latest/meta-data/",
        "https://[::1]:8443/",
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    ],
)
def test_a_redirect_to_an_internal_address_is_refused_before_it_is_followed(
    location: str,
) -> None:
    server = Server(redirecting(location))
    dns = FakeDns({"erp.example": [[PUBLIC]], "internal.example": [["10.1.2.3"]]})

    error = refusal(opener(server, dns))

    assert error.problem is SourceProblem.REFUSED
    assert len(server.requests) == 1


def test_a_redirect_to_plain_http_is_refused() -> None:
    server = Server(redirecting("http://cdn.example/export.json"))

    error = refusal(opener(server))

    assert "plain http://" in error.user_message
    assert len(server.requests) == 1


def test_a_redirect_to_a_public_host_is_followed_and_checked_again() -> None:
    server = Server(redirecting(f"https://cdn.example/export.json?sig={SECRET}"))
    dns = FakeDns({"erp.example": [[PUBLIC]], "cdn.example": [[PUBLIC_V6]]})

    assert read_all(opener(server, dns).open(URL)) == b'{"version": 1}'

    assert dns.calls == ["erp.example", "cdn.example"]
    assert [r.headers["host"] for r in server.requests] == ["erp.example", "cdn.example"]
    assert server.requests[1].url.host == PUBLIC_V6


def test_a_relative_redirect_is_resolved_against_the_url_and_checked_again() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/export.json":
            return httpx.Response(301, headers={"Location": "/v2/export.json"})
        return snapshot_answer(request)

    server = Server(handler)
    dns = FakeDns({"erp.example": [[PUBLIC], ["10.0.0.1"]]})

    error = refusal(opener(server, dns))

    assert error.problem is SourceProblem.REFUSED
    assert dns.calls == ["erp.example", "erp.example"]
    assert [request.url.path for request in server.requests] == ["/export.json"]


def test_redirects_are_followed_a_few_times_only() -> None:
    server = Server(lambda request: httpx.Response(302, headers={"Location": "/again"}))

    error = refusal(opener(server))

    assert "redirected more than 3 times" in error.user_message
    assert len(server.requests) == 4


def test_a_redirect_without_a_location_is_refused() -> None:
    server = Server(lambda request: httpx.Response(302))

    assert "without saying where" in refusal(opener(server)).user_message


def test_plain_http_is_refused_without_a_request() -> None:
    server = Server(snapshot_answer)

    error = refusal(opener(server), f"http://erp.example/export.json?token={SECRET}")

    assert error.problem is SourceProblem.REFUSED
    assert server.requests == []


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        (404, SourceProblem.NOT_FOUND),
        (401, SourceProblem.UNREACHABLE),
        (500, SourceProblem.UNREACHABLE),
    ],
)
def test_an_error_status_is_reported_by_its_number(status: int, problem: SourceProblem) -> None:
    server = Server(lambda request: httpx.Response(status, text=f"no {SECRET}"))

    error = refusal(opener(server))

    assert error.problem is problem
    assert f"HTTP {status}" in error.user_message


def test_a_body_announced_over_the_cap_is_refused_before_it_is_read() -> None:
    reads: list[int] = []

    def body() -> Iterator[bytes]:
        reads.append(1)
        yield b" " * 2000

    server = Server(lambda request: answer(200, body(), {"Content-Length": "2000"}))

    error = refusal(opener(server))

    assert error.problem is SourceProblem.TOO_LARGE
    assert reads == []


def test_a_body_that_runs_over_the_cap_unannounced_is_cut_off() -> None:
    def body() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 300

    server = Server(lambda request: answer(200, body()))

    assert refusal(opener(server)).problem is SourceProblem.TOO_LARGE


def test_a_compressed_body_is_refused_rather_than_inflated_past_the_cap() -> None:
    server = Server(lambda request: answer(200, b"\x1f\x8b...", {"Content-Encoding": "gzip"}))

    assert "compressed" in refusal(opener(server)).user_message


def test_a_body_that_trickles_past_the_total_time_cap_is_stopped() -> None:
    def body() -> Iterator[bytes]:
        for _ in range(100):
            yield b" "

    server = Server(lambda request: answer(200, body()))
    policy = SourcePolicy(max_bytes=1000, total_timeout_s=10.0)

    error = refusal(opener(server, policy=policy, clock=SteppingClock(1.0)))

    assert error.problem is SourceProblem.TOO_SLOW


@pytest.mark.parametrize("timeout", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_a_server_that_does_not_answer_in_time_is_too_slow(
    timeout: type[httpx.TimeoutException],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise timeout("timed out", request=request)

    assert refusal(opener(Server(handler))).problem is SourceProblem.TOO_SLOW


def test_each_request_gets_at_most_the_time_that_is_left() -> None:
    server = Server(snapshot_answer)
    policy = SourcePolicy(max_bytes=1000, total_timeout_s=2.0)

    read_all(opener(server, policy=policy).open(URL))

    timeouts = server.requests[0].extensions["timeout"]
    assert timeouts["read"] == pytest.approx(2.0)
    assert timeouts["connect"] == pytest.approx(2.0)


def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    error = refusal(opener(Server(snapshot_answer), FakeDns({})))

    assert error.problem is SourceProblem.UNREACHABLE


def test_a_resolver_that_hangs_is_given_up_on() -> None:
    release = threading.Event()

    def hanging(host: str, port: int) -> Sequence[IPAddress]:
        release.wait(30)
        return [ipaddress.ip_address(PUBLIC)]

    fetcher = HttpsFetcher(
        HttpsLimits(connect_timeout_s=0.05, read_timeout_s=5.0),
        resolver=hanging,
        transport=httpx.MockTransport(Server(snapshot_answer)),
    )
    try:
        error = refusal(SourceOpener(SourcePolicy(), https=fetcher))
    finally:
        release.set()

    assert error.problem is SourceProblem.TOO_SLOW


def test_an_unchanged_source_answers_304_to_its_etag() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return snapshot_answer(request)

    server = Server(handler)
    source_opener = opener(server)
    opened = source_opener.open(URL)
    assert opened is not None
    opened.close()

    assert opened.revision == Revision(etag='"v1"')
    assert source_opener.open(URL, known=opened.revision) is None
    assert source_opener.open(URL, known=Revision(etag='"v0"')) is not None


def test_without_an_etag_last_modified_is_asked_instead() -> None:
    server = Server(lambda request: httpx.Response(304))

    source_opener = opener(server)

    assert source_opener.open(URL, known=Revision(modified="Tue, 01 Dec 2026 10:00:00 GMT")) is None
    assert server.requests[0].headers["if-modified-since"] == "Tue, 01 Dec 2026 10:00:00 GMT"


def test_a_proxy_from_the_environment_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("ALL_PROXY", "http://proxy.invalid:3128")
    server = Server(snapshot_answer)

    read_all(opener(server).open(URL))

    assert [request.url.host for request in server.requests] == [PUBLIC]


def test_no_failure_logs_the_url_or_its_token(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (Server(snapshot_answer), FakeDns({"erp.example": [["10.0.0.1"]]})),
        (Server(lambda r: httpx.Response(500)), None),
        (Server(lambda r: httpx.Response(302, headers={"Location": "http://x.example/"})), None),
    ]
    for server, dns in cases:
        refusal(opener(server, dns))

    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
