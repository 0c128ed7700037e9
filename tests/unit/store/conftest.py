from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from moto import mock_aws

from tests.unit.store.support import FakeClock, make_table

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pleo_connector.store.dynamodb import DynamoTable


@pytest.fixture
def table() -> Iterator[DynamoTable]:
    with mock_aws():
        yield make_table()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
