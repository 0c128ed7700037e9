"""Signed, expiring session cookies: round trip, tampering, expiry, keys and cookie attributes."""

from __future__ import annotations

import base64
import json

import pytest

from pleo_connector.web.session import (
    SessionCodec,
    SessionExpiredError,
    SessionInvalidError,
    SessionMissingError,
    SessionScopeError,
)

pytestmark = pytest.mark.unit

SECRET = "s" * 40
OTHER_SECRET = "o" * 40


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_codec(
    secret: str | list[str] = SECRET,
    base_url: str = "https://connector.example",
    clock: FakeClock | None = None,
    max_age_s: int = 3600,
) -> SessionCodec:
    return SessionCodec(
        secret, public_base_url=base_url, max_age_s=max_age_s, clock=clock or FakeClock()
    )


def test_issued_session_round_trips_through_the_cookie() -> None:
    codec = make_codec()
    session = codec.issue("inst-a")

    decoded = codec.read([f"{codec.cookie_name}={codec.encode(session)}"])

    assert decoded == session
    assert decoded.require_installation() == "inst-a"


def test_each_session_gets_its_own_id_and_csrf_secret() -> None:
    codec = make_codec()
    first, second = codec.issue("inst-a"), codec.issue("inst-a")
    assert first.session_id != second.session_id
    assert first.csrf_secret != second.csrf_secret


@pytest.mark.parametrize("part", [1, 2, 3])
def test_a_changed_character_anywhere_is_rejected(part: int) -> None:
    codec = make_codec()
    parts = codec.encode(codec.issue("inst-a")).split(".")
    chunk = parts[part]
    parts[part] = chunk[:-1] + ("A" if chunk[-1] != "A" else "B")
    with pytest.raises(SessionInvalidError):
        codec.decode(".".join(parts))


def test_a_payload_naming_another_installation_fails_the_signature() -> None:
    codec = make_codec()
    version, kid, payload, mac = codec.encode(codec.issue("inst-a")).split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["iid"] = "inst-b"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    with pytest.raises(SessionInvalidError):
        codec.decode(f"{version}.{kid}.{forged}.{mac}")


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "v1.a.b", "v2.x.y.z", "v1.x.y.z.w", "v1...", "ü" * 10, "x" * 5000],
)
def test_malformed_cookies_are_invalid(value: str) -> None:
    with pytest.raises(SessionInvalidError):
        make_codec().decode(value)


def test_a_cookie_signed_with_another_secret_is_invalid() -> None:
    value = make_codec(OTHER_SECRET).encode(make_codec(OTHER_SECRET).issue("inst-a"))
    with pytest.raises(SessionInvalidError):
        make_codec(SECRET).decode(value)


def test_rotation_keeps_old_cookies_valid_and_signs_with_the_new_secret() -> None:
    clock = FakeClock()
    old = make_codec(OTHER_SECRET, clock=clock)
    old_value = old.encode(old.issue("inst-a"))
    rotated = make_codec([SECRET, OTHER_SECRET], clock=clock)

    assert rotated.decode(old_value).installation_id == "inst-a"
    new_value = rotated.encode(rotated.issue("inst-a"))
    assert make_codec(SECRET, clock=clock).decode(new_value).installation_id == "inst-a"
    with pytest.raises(SessionInvalidError):
        old.decode(new_value)


def test_an_expired_session_raises_expired_not_invalid() -> None:
    clock = FakeClock()
    codec = make_codec(clock=clock, max_age_s=600)
    value = codec.encode(codec.issue("inst-a"))

    clock.now += 599
    assert codec.decode(value).installation_id == "inst-a"
    clock.now += 1
    with pytest.raises(SessionExpiredError):
        codec.decode(value)


def test_a_shorter_max_age_cuts_sessions_issued_under_a_longer_one() -> None:
    clock = FakeClock()
    value = make_codec(clock=clock, max_age_s=7200).encode(
        make_codec(clock=clock, max_age_s=7200).issue("inst-a")
    )
    clock.now += 1000
    with pytest.raises(SessionExpiredError):
        make_codec(clock=clock, max_age_s=600).decode(value)


def test_a_session_from_the_future_is_invalid() -> None:
    clock = FakeClock()
    codec = make_codec(clock=clock)
    clock.now += 3600
    value = codec.encode(codec.issue("inst-a"))
    clock.now -= 3600
    with pytest.raises(SessionInvalidError):
        codec.decode(value)


def test_https_cookie_has_host_prefix_secure_httponly_lax_and_root_path() -> None:
    codec = make_codec(base_url="https://connector.example")
    header = str(codec.cookie(codec.issue("inst-a")))
    attributes = [part.strip() for part in header.split(";")]

    assert attributes[0].startswith("__Host-pleo_session=v1.")
    assert "Secure" in attributes
    assert "HttpOnly" in attributes
    assert "SameSite=Lax" in attributes
    assert "Path=/" in attributes
    assert not any(part.startswith("Domain") for part in attributes)
    assert "Max-Age=3600" in attributes


def test_plain_http_loopback_drops_the_prefix_and_secure() -> None:
    codec = make_codec(base_url="http://127.0.0.1:3000")
    header = str(codec.cookie(codec.issue("inst-a")))

    assert header.startswith("pleo_session=")
    assert "Secure" not in header
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header


def test_clear_cookie_expires_it_with_the_same_name() -> None:
    codec = make_codec()
    header = str(codec.clear_cookie())
    assert header.startswith("__Host-pleo_session=;")
    assert "Max-Age=0" in header


def test_read_finds_the_cookie_among_others_and_in_a_cookie_header_string() -> None:
    codec = make_codec()
    value = codec.encode(codec.issue("inst-a"))
    assert codec.read(["a=1", f"{codec.cookie_name}={value}", "b=2"]).installation_id == "inst-a"
    assert codec.read([f"a=1; {codec.cookie_name}={value}"]).installation_id == "inst-a"


def test_no_cookie_is_missing_and_a_duplicated_cookie_is_invalid() -> None:
    codec = make_codec()
    value = codec.encode(codec.issue("inst-a"))
    with pytest.raises(SessionMissingError):
        codec.read(None)
    with pytest.raises(SessionMissingError):
        codec.read(["pleo_session=" + value])  # the unprefixed name does not count on HTTPS
    with pytest.raises(SessionInvalidError):
        codec.read([f"{codec.cookie_name}={value}", f"{codec.cookie_name}={value}"])


def test_a_session_for_one_installation_cannot_act_on_another() -> None:
    session = make_codec().issue("inst-a")
    assert session.require_installation("inst-a") == "inst-a"
    with pytest.raises(SessionScopeError):
        session.require_installation("inst-b")


def test_a_session_before_install_has_no_installation() -> None:
    codec = make_codec()
    anonymous = codec.decode(codec.encode(codec.issue(None)))
    assert anonymous.installation_id is None
    with pytest.raises(SessionMissingError):
        anonymous.require_installation()


def test_errors_and_repr_never_contain_the_cookie_value() -> None:
    codec = make_codec()
    value = codec.encode(codec.issue("inst-a"))
    tampered = value[:-2] + "xx"
    with pytest.raises(SessionInvalidError) as caught:
        codec.decode(tampered)
    assert value.split(".")[2] not in str(caught.value)
    assert SECRET not in repr(codec)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        SessionCodec("short", public_base_url="https://connector.example")


def test_a_non_canonical_encoding_of_the_right_mac_is_rejected() -> None:
    codec = make_codec()
    value = codec.encode(codec.issue("inst-a"))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 32 bytes take 43 characters: the last one carries two padding bits that decoding ignores.
    twin = alphabet[alphabet.index(value[-1]) ^ 1]
    same_bytes = value[:-1] + twin
    mac = value.rsplit(".", 1)[1]
    assert base64.urlsafe_b64decode(mac + "=") == base64.urlsafe_b64decode(
        same_bytes.rsplit(".", 1)[1] + "="
    )
    with pytest.raises(SessionInvalidError):
        codec.decode(same_bytes)
