"""The stand-ins listen on loopback only: nothing of the local world is reachable from the
network, whatever the machine's interfaces."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from local.services import Service
    from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.integration

LISTEN = "0A"  # TCP state in /proc/net/tcp*


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def listeners(table: str, port: int) -> list[Address]:
    """The local addresses listening on `port` in one /proc/net/tcp or tcp6 table's text."""
    found: list[Address] = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        address_hex, port_hex = fields[1].split(":")
        if fields[3] != LISTEN or int(port_hex, 16) != port:
            continue
        # Each 32-bit word is in the host's byte order (little-endian on the machines we run on).
        words = [address_hex[i : i + 8] for i in range(0, len(address_hex), 8)]
        found.append(ipaddress.ip_address(b"".join(bytes.fromhex(w)[::-1] for w in words)))
    return found


def listening_addresses(port: int) -> list[Address]:
    """Every local address a socket listens on at `port`, from the kernel's own tables."""
    return [
        address
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for address in listeners(Path(table).read_text(encoding="ascii"), port)
    ]


def is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"


def test_the_reader_tells_loopback_from_every_interface() -> None:
    """The checks below cannot pass by reading nothing or by calling everything loopback: these
    are the kernel's lines for sockets on port 8000 (0x1F40)."""
    tcp = HEADER + (
        "   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0\n"
        "   1: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0\n"
        "   2: 0100007F:1F40 0100007F:CF84 01 00000000:00000000 00:00000000 00000000 0\n"
    )
    tcp6 = HEADER + (
        "   0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000 0\n"
        "   1: 0000000000000000FFFF00000100007F:1F40 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000 0\n"
        "   2: 00000000000000000000000001000000:1F40 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000 0\n"
    )

    ipv4, ipv6 = listeners(tcp, 8000), listeners(tcp6, 8000)

    assert [str(a) for a in ipv4] == ["0.0.0.0", "127.0.0.1"]  # noqa: S104 - parsed, not bound
    assert [str(a) for a in ipv6] == ["::", "::ffff:127.0.0.1", "::1"]
    assert [is_loopback(a) for a in ipv4 + ipv6] == [False, True, False, True, True]
    assert listeners(tcp, 8001) == []


def test_dynamodb_local_listens_on_loopback_only(dynamodb_local: Service) -> None:
    addresses = listening_addresses(port_of(dynamodb_local.url))

    assert addresses
    assert all(is_loopback(address) for address in addresses), addresses


def test_moto_and_the_emulator_listen_on_loopback_only(
    moto_server: Service, pleo_emulator: RunningEmulator
) -> None:
    for url in (moto_server.url, pleo_emulator.url):
        addresses = listening_addresses(port_of(url))
        assert addresses, url
        assert all(is_loopback(address) for address in addresses), (url, addresses)
