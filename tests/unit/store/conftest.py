from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from pleo_connector.store.dynamodb import DynamoTable
from tests.unit.store.support import FakeClock, make_table


@pytest.fixture
def table() -> Iterator[DynamoTable]:
    with mock_aws():
        yield make_table()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
