"""Unit tests never touch the network: any socket connection fails the test that makes it."""

from __future__ import annotations

import io
import logging
import socket
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class NetworkBlockedError(RuntimeError):
    """A unit test tried to open a connection."""


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: Any) -> None:
        raise NetworkBlockedError(f"unit tests must not connect anywhere (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


MetricKey = tuple[str, tuple[tuple[str, str], ...]]


@pytest.fixture
def recorded_metrics() -> Callable[[], dict[MetricKey, list[float]]]:
    """What the code under test recorded since the test began, as (name, dimensions) -> values;
    each call takes what was recorded so far."""
    from pleo_connector import metrics

    metrics.recorded.take()

    def take() -> dict[MetricKey, list[float]]:
        return {
            (name, dimensions): values
            for dimensions, by_name in metrics.recorded.take().items()
            for (name, _unit), values in by_name.items()
        }

    return take


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Every line the package's logger prints during the test, as JSON text with all its keys
    (caplog only shows the message), at DEBUG."""
    from pleo_connector.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield buffer
    finally:
        handler.setStream(previous)
        logger.setLevel(level)
