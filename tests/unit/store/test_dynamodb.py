"""The adapter alone maps DynamoDB's error codes to domain errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from pleo_connector.store.dynamodb import DynamoTable, n, translate_client_error
from pleo_connector.store.errors import StoreError, StoreUnavailableError, WriteConflictError

pytestmark = pytest.mark.unit


def _client_error(code: str, **extra: object) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, **extra}
    return ClientError(response, "Op")


def test_a_failed_condition_is_a_write_conflict_with_the_current_item(table: DynamoTable) -> None:
    key = {"pk": {"S": "K"}, "sk": {"S": "S"}}
    table.put({**key, "v": n(1)})

    with pytest.raises(WriteConflictError) as raised:
        table.update(
            key,
            update="SET v = :two",
            condition="v = :zero",
            values={":two": n(2), ":zero": n(0)},
            return_old_on_conflict=True,
        )

    assert raised.value.current == {**key, "v": {"N": "1"}}


def test_a_cancelled_transaction_reports_its_reasons(table: DynamoTable) -> None:
    table.put({"pk": {"S": "A"}, "sk": {"S": "S"}})

    with pytest.raises(WriteConflictError) as raised:
        table.transact_write(
            [
                {"Put": {"Item": {"pk": {"S": "B"}, "sk": {"S": "S"}}}},
                {
                    "Put": {
                        "Item": {"pk": {"S": "A"}, "sk": {"S": "S"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    assert raised.value.reasons[1] == "ConditionalCheckFailed"
    assert table.get({"pk": {"S": "B"}, "sk": {"S": "S"}}) is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ConditionalCheckFailedException", WriteConflictError),
        ("TransactionConflictException", WriteConflictError),
        ("ProvisionedThroughputExceededException", StoreUnavailableError),
        ("ThrottlingException", StoreUnavailableError),
        ("ValidationException", StoreError),
    ],
)
def test_error_codes_map_to_domain_errors(code: str, expected: type[StoreError]) -> None:
    error = translate_client_error(_client_error(code), "PutItem")

    assert type(error) is expected
    assert error.code == code


def test_a_throttled_transaction_is_unavailable_not_a_conflict() -> None:
    error = translate_client_error(
        _client_error(
            "TransactionCanceledException",
            CancellationReasons=[{"Code": "ThrottlingError"}, {"Code": "None"}],
        ),
        "TransactWriteItems",
    )

    assert type(error) is StoreUnavailableError


def test_numbers_must_be_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        n(float("nan"))


class _Unprocessing:
    """A client whose batch writes leave the first item unprocessed once, then take it."""

    def __init__(self) -> None:
        self.requests: list[list[Any]] = []

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        [(table, writes)] = RequestItems.items()
        self.requests.append(writes)
        left = writes[:1] if len(self.requests) == 1 else []
        return {"UnprocessedItems": {table: left} if left else {}}


def test_put_many_writes_25_a_batch_and_sends_again_what_was_left_unprocessed() -> None:
    client = _Unprocessing()
    table = DynamoTable("T", client=client)  # type: ignore[arg-type]
    items = [{"pk": {"S": "K"}, "sk": {"S": f"S{index}"}} for index in range(30)]

    written = table.put_many(items, sleep=lambda seconds: None)

    assert written == 30
    assert [len(writes) for writes in client.requests] == [25, 1, 5]
    assert client.requests[1] == [{"PutRequest": {"Item": items[0]}}]
