"""Reading an `https://` source without letting a customer point it at this deployment's own
networks (server-side request forgery).

The host is resolved here, every address it resolves to is checked, and the connection goes to
an address that was checked: the request's URL names that address, while the `Host` header and
the TLS server name (which the certificate is verified against) keep the host name. So a DNS
answer that changes between the check and the connection (rebinding) changes nothing. Redirects
are followed here, one hop at a time, and every hop is resolved and checked again. No proxy from
the environment is used: a proxy would resolve the name itself.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.observability import logger

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type Resolver = Callable[[str, int], Sequence[IPAddress]]
type AddressCheck = Callable[[IPAddress], bool]

MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

# Not reachable from the internet, or not meant to be: what a source must never name. Listed
# rather than left to `is_global` alone, whose tables change between Python versions.
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, with the instance metadata service
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "::/96",  # unspecified, loopback, IPv4-compatible
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, with Teredo
        "2001:db8::/32",
        "2002::/16",  # 6to4
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",  # unique local, with the instance metadata service (fd00:ec2::254)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches: IPv4-mapped (`::ffff:a.b.c.d`) and well-known
    NAT64 (`64:ff9b::a.b.c.d`) addresses are the IPv4 address they carry."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """Whether a source may be read from `address`: a global unicast address, and not one of
    the loopback, private, link-local, metadata, multicast or reserved ranges."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False  # a zone only means something on a local link
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public_address(inner)
        if any(address in network for network in _BLOCKED_V6):
            return False
    elif any(address in network for network in _BLOCKED_V4):
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_private
    )


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host`, in its order, once each."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    found: dict[IPAddress, None] = {}
    for info in infos:
        found.setdefault(ipaddress.ip_address(info[4][0]), None)
    return list(found)


@dataclass(frozen=True, slots=True)
class HttpsLimits:
    connect_timeout_s: float
    read_timeout_s: float
    max_redirects: int = MAX_REDIRECTS


class HttpsBody:
    """An answer being read: its headers are checked, its body is read in chunks by the caller.
    Closing it closes its connection."""

    def __init__(self, response: httpx.Response, client: httpx.Client) -> None:
        self.response = response
        self._client = client

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives, undecoded (the request asked for no content coding). Each
        piece as the network gives it, never gathered into larger chunks: the caller checks the
        total time cap between pieces, so a server that trickles is stopped in time."""
        try:
            yield from self.response.iter_raw()
        except httpx.TimeoutException:
            raise _too_slow() from None
        except httpx.HTTPError as error:
            raise _unreachable("the connection broke while the snapshot was read", error) from None

    def close(self) -> None:
        try:
            self.response.close()
        finally:
            self._client.close()

    def __enter__(self) -> HttpsBody:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class HttpsFetcher:
    """GETs one source URL. `resolver`, `address_allowed`, `ssl_context` and `transport` are
    injected by tests only (a fake DNS, a local test server, a canned answer)."""

    limits: HttpsLimits
    resolver: Resolver = system_resolver
    address_allowed: AddressCheck = is_public_address
    ssl_context: ssl.SSLContext | None = None
    transport: httpx.BaseTransport | None = None
    clock: Callable[[], float] = time.monotonic

    def open(
        self, url: str, *, deadline: float, conditional: Mapping[str, str] | None = None
    ) -> HttpsBody | None:
        """The answer to a GET of `url`, its status 200; None for a 304 to `conditional`
        (`If-None-Match` / `If-Modified-Since`). Raises SourceError for anything else."""
        current = parse_https_url(url)
        client = self._client()
        try:
            for _hop in range(self.limits.max_redirects + 1):
                response = self._send(client, current, deadline, conditional)
                if response.status_code not in _REDIRECTS:
                    break
                location = response.headers.get("location")
                response.close()
                if not location:
                    raise SourceError(
                        "The snapshot's address redirected without saying where to.",
                        problem=SourceProblem.UNREACHABLE,
                    )
                current = parse_https_url(_join(current, location), redirected=True)
            else:
                raise SourceError(
                    f"The snapshot's address redirected more than {self.limits.max_redirects}"
                    " times.",
                    problem=SourceProblem.UNREACHABLE,
                )
            if response.status_code == 304 and conditional:
                response.close()
                client.close()
                return None
            if response.status_code != 200:
                response.close()
                problem = (
                    SourceProblem.NOT_FOUND
                    if response.status_code in (404, 410)
                    else SourceProblem.UNREACHABLE
                )
                raise SourceError(
                    f"The snapshot's server answered with HTTP {response.status_code}.",
                    problem=problem,
                )
            return HttpsBody(response, client)
        except BaseException:
            client.close()
            raise

    def _client(self) -> httpx.Client:
        timeout = httpx.Timeout(
            connect=self.limits.connect_timeout_s,
            read=self.limits.read_timeout_s,
            write=self.limits.read_timeout_s,
            pool=self.limits.connect_timeout_s,
        )
        transport = self.transport or httpx.HTTPTransport(
            verify=self.ssl_context or True, retries=0, trust_env=False
        )
        # trust_env=False: no proxy, no .netrc credentials from the environment.
        return httpx.Client(
            transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
        )

    def _send(
        self,
        client: httpx.Client,
        url: httpx.URL,
        deadline: float,
        conditional: Mapping[str, str] | None,
    ) -> httpx.Response:
        host = url.raw_host.decode("ascii")
        port = url.port or 443
        addresses = self._checked_addresses(host, port, deadline)
        headers = {
            # The netloc without userinfo: the name the server knows itself by.
            "Host": url.netloc.decode("ascii"),
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": "pleo-connector-snapshot-reader",
            **(conditional or {}),
        }
        last_error: httpx.HTTPError | None = None
        for address in addresses:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise _too_slow()
            request = client.build_request(
                "GET",
                url.copy_with(host=str(address)),
                headers=headers,
                extensions={
                    "sni_hostname": host,
                    "timeout": {
                        "connect": min(self.limits.connect_timeout_s, remaining),
                        "read": min(self.limits.read_timeout_s, remaining),
                        "write": min(self.limits.read_timeout_s, remaining),
                        "pool": min(self.limits.connect_timeout_s, remaining),
                    },
                },
            )
            try:
                return client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                last_error = error  # the next address may answer
            except httpx.TimeoutException:
                raise _too_slow() from None
            except httpx.HTTPError as error:
                raise _unreachable("the request failed", error) from None
        if isinstance(last_error, httpx.ConnectTimeout):
            raise _too_slow()
        raise _unreachable("no address of the host accepted a connection", last_error)

    def _checked_addresses(self, host: str, port: int, deadline: float) -> list[IPAddress]:
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses: Sequence[IPAddress] = [literal]
        else:
            timeout = min(self.limits.connect_timeout_s, deadline - self.clock())
            addresses = _resolve_within(self.resolver, host, port, timeout)
        if not addresses:
            raise SourceError(
                "The snapshot's host name could not be resolved.",
                problem=SourceProblem.UNREACHABLE,
            )
        refused = [address for address in addresses if not self.address_allowed(address)]
        if refused:
            logger.warning(
                "source address refused",
                extra={"host": host, "addresses": [str(address) for address in refused]},
            )
            raise SourceError(
                "The snapshot's address leads to a private or internal network, which the"
                " connector never reads from. Use an address on the public internet.",
                problem=SourceProblem.REFUSED,
            )
        return list(addresses)


def parse_https_url(url: str | httpx.URL, *, redirected: bool = False) -> httpx.URL:
    """`url` as httpx will request it, or SourceError when it is not an https URL with a host.
    Messages never repeat the URL (its query may hold a token)."""
    where = "The snapshot's address redirected to" if redirected else "The snapshot's address is"
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise SourceError(f"{where} not a valid URL.", problem=SourceProblem.REFUSED) from None
    if parsed.scheme == "http":
        raise SourceError(
            f"{where} a plain http:// URL. Use https://: the data must not travel unencrypted.",
            problem=SourceProblem.REFUSED,
        )
    if parsed.scheme != "https":
        raise SourceError(f"{where} not an https:// URL.", problem=SourceProblem.REFUSED)
    if not parsed.raw_host:
        raise SourceError(f"{where} a URL without a host.", problem=SourceProblem.REFUSED)
    return parsed


def _join(base: httpx.URL, location: str) -> httpx.URL | str:
    try:
        return base.join(location)
    except (httpx.InvalidURL, ValueError, TypeError):
        return location  # refused by parse_https_url, with the same message as any bad URL


def _resolve_within(
    resolver: Resolver, host: str, port: int, timeout: float
) -> Sequence[IPAddress]:
    """Resolve in a thread so that a hanging resolver cannot outlast the time cap (the system's
    `getaddrinfo` has no timeout of its own)."""
    if timeout <= 0:
        raise _too_slow()
    outcome: list[Sequence[IPAddress] | BaseException] = []

    def work() -> None:
        try:
            outcome.append(resolver(host, port))
        except BaseException as error:  # handed to the waiting thread
            outcome.append(error)

    worker = threading.Thread(target=work, name="source-resolver", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise _too_slow()
    [result] = outcome
    if isinstance(result, OSError):
        raise SourceError(
            "The snapshot's host name could not be resolved.",
            problem=SourceProblem.UNREACHABLE,
        ) from None
    if isinstance(result, BaseException):
        raise result
    return result


def _too_slow() -> SourceError:
    return SourceError(
        "The snapshot's server was too slow: it did not answer within the time allowed.",
        problem=SourceProblem.TOO_SLOW,
    )


def _unreachable(what: str, error: BaseException | None) -> SourceError:
    logger.warning(
        "source unreachable",
        extra={"what": what, "error_type": type(error).__name__ if error else None},
    )
    return SourceError(
        "The snapshot's server could not be reached securely (connection or TLS failed).",
        problem=SourceProblem.UNREACHABLE,
    )
