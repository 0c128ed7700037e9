"""The JSON snapshot adapter reads a snapshot from a real HTTPS server, over real sockets and TLS.

The server listens on loopback, which the adapter refuses by design. So this test, and only
this one, injects the address check: it admits 127.0.0.1 alone, and judges every other address
by the real rule (`is_public_address`). It also injects the DNS (the test's host names resolve
to 127.0.0.1) and trust in the test's own certificate authority. What it proves: the connection
goes to the checked address while TLS verifies the certificate against the host name, redirects
are checked again on the wire, a 304 saves the settings page a download, and a reader streams
the records of a document served in pieces.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.https import HttpsFetcher, HttpsLimits, IPAddress, is_public_address
from pleo_connector.adapters.json_snapshot import JsonSnapshotAdapter, JsonSnapshotSettings
from pleo_connector.adapters.sources import SourceOpener, SourcePolicy
from tests.support.snapshots import encoded, example

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

pytestmark = pytest.mark.integration

HOST = "snapshot.test"
LOOPBACK = ipaddress.ip_address("127.0.0.1")
SECRET = "s3cr3t-token"


@dataclass
class Served:
    """What the test server answers, and what it was asked."""

    port: int
    ca_pem: bytes
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # host, path, status

    def url(self, path: str, host: str = HOST) -> str:
        return f"https://{host}:{self.port}{path}"


def _certificates(tmp_path: Path) -> tuple[bytes, Path, Path]:
    """A certificate authority, and a certificate it issued for HOST alone."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "snapshot test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path = tmp_path / "server.pem"
    key_path = tmp_path / "server.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca.public_bytes(serialization.Encoding.PEM), cert_path, key_path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    ca_pem, cert_path, key_path = _certificates(tmp_path_factory.mktemp("tls"))
    state: dict[str, Served] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            me = state["served"]
            status, headers, body = me.routes.get(self.path.split("?")[0], (404, {}, b""))
            if "ETag" in headers and self.headers.get("If-None-Match") == headers["ETag"]:
                status, body = 304, b""
            me.requests.append((self.headers.get("Host", ""), self.path, status))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # In pieces, so the reader's window moves across many reads.
            for start in range(0, len(body), 1000):
                self.wfile.write(body[start : start + 1000])
                self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state["served"] = Served(port=server.server_address[1], ca_pem=ca_pem)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["served"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(served: Served) -> Served:
    served.routes.clear()
    served.requests.clear()
    return served


def resolver(host: str, port: int) -> Sequence[IPAddress]:
    """The test's DNS: its names lead to the loopback server, or to a private address."""
    table = {HOST: ["127.0.0.1"], "other.test": ["127.0.0.1"], "internal.test": ["10.0.0.1"]}
    return [ipaddress.ip_address(address) for address in table[host]]


def loopback_or_public(address: IPAddress) -> bool:
    """The injected check: the test server's own address, and what the real rule admits."""
    return address == LOOPBACK or is_public_address(address)


def adapter_for(server: Served) -> JsonSnapshotAdapter:
    fetcher = HttpsFetcher(
        HttpsLimits(connect_timeout_s=5.0, read_timeout_s=10.0),
        resolver=resolver,
        address_allowed=loopback_or_public,
        ssl_context=ssl.create_default_context(cadata=server.ca_pem.decode()),
    )
    return JsonSnapshotAdapter(SourceOpener(SourcePolicy(max_bytes=5_000_000), https=fetcher))


def settings(url: str) -> JsonSnapshotSettings:
    return JsonSnapshotSettings.model_validate({"source": url})


def big_snapshot() -> bytes:
    document = example()
    document["tagGroups"][0]["tags"] = [
        {"code": f"D-{n}", "name": f"Department {n}"} for n in range(3000)
    ]
    return encoded(document)


def test_a_snapshot_is_read_over_https_by_its_host_name(server: Served) -> None:
    server.routes["/snapshot.json"] = (200, {"Content-Type": "application/json"}, big_snapshot())

    source = settings(server.url(f"/snapshot.json?token={SECRET}"))
    with adapter_for(server).open_reader(source) as reader:
        tags = list(reader.tags())
        vendors = list(reader.vendors())

    assert len(tags) == 3000
    assert tags[-1].group_code == "DEPT"
    assert [vendor.external_id for vendor in vendors] == ["V-1"]
    assert server.requests == [(f"{HOST}:{server.port}", f"/snapshot.json?token={SECRET}", 200)]


def test_the_certificate_is_verified_against_the_host_name_not_the_address(
    server: Served,
) -> None:
    server.routes["/snapshot.json"] = (200, {}, encoded(example()))

    with (
        pytest.raises(SourceError) as raised,
        adapter_for(server).open_reader(settings(server.url("/snapshot.json", host="other.test"))),
    ):
        pass

    assert raised.value.problem is SourceProblem.UNREACHABLE
    assert server.requests == []  # the TLS handshake failed before any request


def test_a_redirect_is_followed_on_the_wire_and_checked_again(server: Served) -> None:
    server.routes["/old.json"] = (301, {"Location": "/snapshot.json"}, b"")
    server.routes["/snapshot.json"] = (200, {}, encoded(example()))
    server.routes["/leak.json"] = (302, {"Location": "https://internal.test/secrets"}, b"")
    adapter = adapter_for(server)

    with adapter.open_reader(settings(server.url("/old.json"))) as reader:
        assert [group.code for group in reader.tag_groups()] == ["DEPT"]
    with (
        pytest.raises(SourceError) as raised,
        adapter.open_reader(settings(server.url("/leak.json"))),
    ):
        pass

    assert raised.value.problem is SourceProblem.REFUSED
    assert [(path, status) for _, path, status in server.requests] == [
        ("/old.json", 301),
        ("/snapshot.json", 200),
        ("/leak.json", 302),
    ]


def test_the_settings_page_reads_the_groups_once_while_the_etag_holds(server: Served) -> None:
    server.routes["/snapshot.json"] = (200, {"ETag": '"v1"'}, encoded(example()))
    adapter = adapter_for(server)
    source = settings(server.url("/snapshot.json"))

    first = adapter.offered_tag_groups(source)
    second = adapter.offered_tag_groups(source)

    assert list(first) == list(second) == [("DEPT", "Departments")]
    assert [status for _, _, status in server.requests] == [200, 304]


def test_a_snapshot_over_the_size_cap_is_refused_on_the_wire(server: Served) -> None:
    server.routes["/snapshot.json"] = (200, {}, big_snapshot())
    fetcher = HttpsFetcher(
        HttpsLimits(connect_timeout_s=5.0, read_timeout_s=10.0),
        resolver=resolver,
        address_allowed=loopback_or_public,
        ssl_context=ssl.create_default_context(cadata=server.ca_pem.decode()),
    )
    adapter = JsonSnapshotAdapter(SourceOpener(SourcePolicy(max_bytes=10_000), https=fetcher))

    with (
        pytest.raises(SourceError) as raised,
        adapter.open_reader(settings(server.url("/snapshot.json"))),
    ):
        pass

    assert raised.value.problem is SourceProblem.TOO_LARGE
