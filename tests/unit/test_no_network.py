"""The unit tier's guard: a connection attempt fails the test instead of reaching anything."""

from __future__ import annotations

import socket

import pytest

from tests.unit.conftest import NetworkBlockedError

pytestmark = pytest.mark.unit


def test_a_unit_test_cannot_open_a_connection() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(NetworkBlockedError),
    ):
        sock.connect(("127.0.0.1", 9))
