"""The adapter alone maps DynamoDB's error codes to domain errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from pleo_connector.store.dynamodb import DynamoTable, n, translate_client_error
from pleo_connector.store.errors import (
    IndexUnavailableError,
    StoreError,
    StoreUnavailableError,
    WriteConflictError,
)

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


@pytest.mark.parametrize(
    "message",
    [
        "Cannot read from backfilling global secondary index: ByStatus",
        "The table does not have the specified index: ByStatus",
    ],
)
def test_an_index_that_cannot_be_read_is_its_own_error(message: str) -> None:
    response: Any = {"Error": {"Code": "ValidationException", "Message": message}}

    error = translate_client_error(ClientError(response, "Query"), "Query")

    assert type(error) is IndexUnavailableError
    assert (error.operation, error.code) == ("Query", "ValidationException")
    assert "ByStatus" not in str(error)


class _Unread:
    """A client whose batch reads leave the first `left` keys of the first request unprocessed
    (`times` times over), and return the rest as items holding their key."""

    def __init__(self, left: int = 1, times: int = 1) -> None:
        self.left = left
        self.times = times
        self.requests: list[dict[str, Any]] = []

    def batch_get_item(self, RequestItems: dict[str, dict[str, Any]]) -> dict[str, Any]:
        [(table, request)] = RequestItems.items()
        self.requests.append(request)
        keys = request["Keys"]
        held = keys[: self.left] if len(self.requests) <= self.times else []
        served = keys[len(held) :]
        response: dict[str, Any] = {"Responses": {table: [{**key, "v": n(1)} for key in served]}}
        if held:
            response["UnprocessedKeys"] = {table: {"Keys": held, "ConsistentRead": False}}
        return response


def test_batch_get_reads_100_keys_a_request_and_asks_again_for_what_was_left_unprocessed() -> None:
    client = _Unread(left=2)
    table = DynamoTable("T", client=client)  # type: ignore[arg-type]
    keys = [{"pk": {"S": f"K{index}"}, "sk": {"S": "META"}} for index in range(130)]
    waits: list[float] = []

    items = table.batch_get(keys, sleep=waits.append)

    assert [len(request["Keys"]) for request in client.requests] == [100, 2, 30]
    assert client.requests[1]["Keys"] == keys[:2]
    assert sorted(item["pk"]["S"] for item in items) == sorted(key["pk"]["S"] for key in keys)
    assert len(items) == 130
    assert len(waits) == 1
    assert all(request["ConsistentRead"] is False for request in client.requests)


def test_batch_get_gives_up_when_keys_stay_unprocessed() -> None:
    client = _Unread(left=1, times=100)
    table = DynamoTable("T", client=client)  # type: ignore[arg-type]
    waits: list[float] = []

    with pytest.raises(StoreUnavailableError):
        table.batch_get([{"pk": {"S": "K"}, "sk": {"S": "META"}}], sleep=waits.append)

    assert len(client.requests) == len(waits) == 8
    assert waits == sorted(waits)
    assert max(waits) <= 1.0


def test_batch_get_of_no_keys_sends_nothing() -> None:
    client = _Unread()
    table = DynamoTable("T", client=client)  # type: ignore[arg-type]

    assert table.batch_get([]) == []
    assert client.requests == []
