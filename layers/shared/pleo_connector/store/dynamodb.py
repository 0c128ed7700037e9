"""The one DynamoDB adapter: every request to the table goes through `DynamoTable`.

It speaks the low-level client's attribute-value format (no resource layer, no Decimal surprises)
and is the only place that reads botocore `ClientError` codes: a failed condition becomes
`WriteConflictError`, throttling becomes `StoreUnavailableError`, an index that cannot be read
(backfilling, or missing) `IndexUnavailableError`, anything else `StoreError`.
Repositories map their domain models to items with the small attribute helpers below.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pleo_connector.aws import aws_client, aws_errors
from pleo_connector.store.errors import (
    IndexUnavailableError,
    StoreError,
    StoreUnavailableError,
    WriteConflictError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
Key = dict[str, Any]

# The table's GSIs, both KEYS_ONLY. `Schedulable` (schedule_pk/schedule_sk): each partition is a
# work list. `ByStatus` (status): every installation under its status, only the META items
# having that attribute; it is counted (`count`), and its keys lead a listing to the META items.
SCHEDULABLE_INDEX = "Schedulable"
STATUS_INDEX = "ByStatus"

_RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
_BATCH_SIZE = 25
_BATCH_GET_SIZE = 100
_BATCH_ATTEMPTS = 8
# What DynamoDB says (a ValidationException) when a query names an index it cannot serve: one
# still backfilling after it was added, or one the table does not have.
_INDEX_UNAVAILABLE_MESSAGES = ("backfilling", "does not have the specified index")


# --- attribute helpers: explicit, so each repository's mapping reads as a table of fields -------


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: float) -> dict[str, str]:
    if isinstance(value, int):
        return {"N": str(value)}
    if not math.isfinite(value):
        raise ValueError("DynamoDB numbers must be finite")
    return {"N": format(value, ".3f")}


def b(value: bytes) -> dict[str, bytes]:
    return {"B": value}


def json_attr(value: Any) -> dict[str, str]:
    """Free-form documents (settings, choices) are kept as compact JSON strings: no float/Decimal
    conversion, and DynamoDB never needs to look inside them."""
    return {"S": json.dumps(value, separators=(",", ":"), sort_keys=True)}


def get_s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def need_s(item: Mapping[str, Any], name: str) -> str:
    value = get_s(item, name)
    if value is None:
        raise StoreError(f"stored item lacks the attribute {name!r}", operation="read")
    return value


def get_n(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    return None if value is None else float(value["N"])


def get_int(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return default if value is None else int(value["N"])


def get_b(item: Mapping[str, Any], name: str) -> bytes | None:
    value = item.get(name)
    return None if value is None else bytes(value["B"])


def get_json(item: Mapping[str, Any], name: str) -> Any:
    value = get_s(item, name)
    return None if value is None else json.loads(value)


# --- the adapter ---------------------------------------------------------------------------------


class DynamoTable:
    """One table, reached through a low-level client that is built lazily (or injected)."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = aws_client("dynamodb")
        return self._client

    def get(self, key: Key, *, consistent: bool = True) -> Item | None:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": key,
            "ConsistentRead": consistent,
        }
        with _translated("GetItem"):
            response = self.client.get_item(**request)
        item: Item | None = response.get("Item")
        return item

    def batch_get(
        self, keys: Sequence[Key], *, consistent: bool = False, sleep: Any = time.sleep
    ) -> list[Item]:
        """The items stored under `keys` (those that exist; in no particular order, so map them
        by key), 100 keys a request, asking again for what DynamoDB leaves unprocessed."""
        found: list[Item] = []
        for start in range(0, len(keys), _BATCH_GET_SIZE):
            pending: list[Key] = list(keys[start : start + _BATCH_GET_SIZE])
            for attempt in range(_BATCH_ATTEMPTS):
                request: dict[str, Any] = {
                    "RequestItems": {
                        self.table_name: {"Keys": pending, "ConsistentRead": consistent}
                    }
                }
                with _translated("BatchGetItem"):
                    response = self.client.batch_get_item(**request)
                responses: Any = response.get("Responses", {})
                found.extend(responses.get(self.table_name, []))
                unprocessed: Any = response.get("UnprocessedKeys", {})
                pending = list(unprocessed.get(self.table_name, {}).get("Keys", []))
                if not pending:
                    break
                sleep(_backoff(attempt))
            else:
                raise StoreUnavailableError(
                    "BatchGetItem left keys unprocessed", operation="BatchGetItem"
                )
        return found

    def put(
        self,
        item: Item,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        request: dict[str, Any] = {"TableName": self.table_name, "Item": item}
        _add_expressions(request, condition, names, values)
        with _translated("PutItem"):
            self.client.put_item(**request)

    def update(
        self,
        key: Key,
        *,
        update: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_old_on_conflict: bool = False,
    ) -> Item:
        """Apply `update` and return the item as it is afterwards."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": key,
            "UpdateExpression": update,
            "ReturnValues": "ALL_NEW",
        }
        _add_expressions(request, condition, names, values)
        if return_old_on_conflict:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        with _translated("UpdateItem"):
            response = self.client.update_item(**request)
        attributes: Item = response.get("Attributes", {})
        return attributes

    def delete(
        self,
        key: Key,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_old_on_conflict: bool = False,
    ) -> Item | None:
        """Delete one item and return what it held (None when there was nothing)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": key,
            "ReturnValues": "ALL_OLD",
        }
        _add_expressions(request, condition, names, values)
        if return_old_on_conflict:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        with _translated("DeleteItem"):
            response = self.client.delete_item(**request)
        old: Item | None = response.get("Attributes") or None
        return old

    def transact_write(self, actions: Sequence[Mapping[str, Any]]) -> None:
        """All of `actions` or none. Each action is {"Put"|"Update"|"Delete"|"ConditionCheck":
        {...}} without TableName (added here)."""
        items: list[dict[str, Any]] = []
        for action in actions:
            ((kind, body),) = action.items()
            items.append({kind: {"TableName": self.table_name, **body}})
        request: dict[str, Any] = {"TransactItems": items}
        with _translated("TransactWriteItems"):
            self.client.transact_write_items(**request)

    def query(
        self,
        *,
        key_condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
        index: str | None = None,
        consistent: bool = False,
        page_size: int | None = None,
        descending: bool = False,
    ) -> Iterator[Item]:
        """Every item matching `key_condition`, page after page (a page is read only when the
        iteration reaches it). `descending`: from the highest sort key down."""
        request = self._query_request(key_condition, values, names, index, page_size)
        if descending:
            request["ScanIndexForward"] = False
        if consistent and not index:
            request["ConsistentRead"] = True
        for response in self._query_pages(request):
            yield from response.get("Items", [])

    def count(
        self,
        *,
        key_condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
        index: str | None = None,
        page_size: int | None = None,
    ) -> int:
        """How many items match `key_condition` (`Select=COUNT`: DynamoDB reads them, and bills
        the read, but returns none), page after page (1 MB of items each, or `page_size`)."""
        request = self._query_request(key_condition, values, names, index, page_size)
        request["Select"] = "COUNT"
        return sum(int(response.get("Count", 0)) for response in self._query_pages(request))

    def _query_request(
        self,
        key_condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None,
        index: str | None,
        page_size: int | None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": dict(values),
        }
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if index:
            request["IndexName"] = index
        if page_size:
            request["Limit"] = page_size
        return request

    def _query_pages(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The Query's responses, one page at a time, each read when the iteration reaches it."""
        while True:
            with _translated("Query"):
                response = self.client.query(**request)
            yield dict(response)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def scan_pages(
        self,
        *,
        filter_expression: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[list[Item]]:
        """The whole table, one page (the items of it that pass `filter_expression`) at a time:
        for operator tools that must see every installation, not for a request's hot path. A page
        reads up to `page_size` items before the filter, so a page may come back empty."""
        request: dict[str, Any] = {"TableName": self.table_name}
        if filter_expression:
            request["FilterExpression"] = filter_expression
        if values:
            request["ExpressionAttributeValues"] = dict(values)
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if page_size:
            request["Limit"] = page_size
        while True:
            with _translated("Scan"):
                response = self.client.scan(**request)
            yield list(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def delete_many(self, keys: Sequence[Key], *, sleep: Any = time.sleep) -> int:
        """Delete `keys` in batches of 25, retrying what DynamoDB leaves unprocessed."""
        return self._batch_write([{"DeleteRequest": {"Key": key}} for key in keys], sleep)

    def put_many(self, items: Sequence[Item], *, sleep: Any = time.sleep) -> int:
        """Put `items` (unconditionally) in batches of 25, retrying what DynamoDB leaves
        unprocessed; each batch is written before the next is sent."""
        return self._batch_write([{"PutRequest": {"Item": item}} for item in items], sleep)

    def _batch_write(self, writes: Sequence[dict[str, Any]], sleep: Any) -> int:
        for start in range(0, len(writes), _BATCH_SIZE):
            pending: list[dict[str, Any]] = list(writes[start : start + _BATCH_SIZE])
            for attempt in range(_BATCH_ATTEMPTS):
                request: dict[str, Any] = {"RequestItems": {self.table_name: pending}}
                with _translated("BatchWriteItem"):
                    response = self.client.batch_write_item(**request)
                unprocessed: Any = response.get("UnprocessedItems", {})
                pending = list(unprocessed.get(self.table_name, []))
                if not pending:
                    break
                sleep(_backoff(attempt))
            else:
                raise StoreUnavailableError(
                    "BatchWriteItem left items unprocessed", operation="BatchWriteItem"
                )
        return len(writes)


def _backoff(attempt: int) -> float:
    """Seconds to wait before sending a batch's unprocessed part again: doubling, at most 1."""
    return float(min(1.0, 0.05 * 2**attempt))


def _add_expressions(
    request: dict[str, Any],
    condition: str | None,
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None,
) -> None:
    if condition:
        request["ConditionExpression"] = condition
    if names:
        request["ExpressionAttributeNames"] = dict(names)
    if values:
        request["ExpressionAttributeValues"] = dict(values)


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Turn a botocore ClientError raised inside the block into a domain error."""
    try:
        yield
    except aws_errors() as error:
        raise translate_client_error(error, operation) from error


def translate_client_error(error: Any, operation: str) -> StoreError:
    """The domain error for one botocore ClientError (the mapping lives only here)."""
    response = getattr(error, "response", {}) or {}
    code = str(response.get("Error", {}).get("Code", "Unknown"))
    if code == "ConditionalCheckFailedException":
        return WriteConflictError(
            f"{operation}: the condition failed",
            operation=operation,
            code=code,
            current=response.get("Item"),
        )
    if code == "TransactionCanceledException":
        reasons = tuple(
            str(reason.get("Code", "None")) for reason in response.get("CancellationReasons", [])
        )
        if any(reason in ("ConditionalCheckFailed", "TransactionConflict") for reason in reasons):
            return WriteConflictError(
                f"{operation}: the transaction was cancelled ({', '.join(reasons)})",
                operation=operation,
                code=code,
                reasons=reasons,
            )
        if any(reason in _RETRYABLE_CODES or reason == "ThrottlingError" for reason in reasons):
            return StoreUnavailableError(f"{operation}: throttled", operation=operation, code=code)
        return StoreError(
            f"{operation}: the transaction was cancelled", operation=operation, code=code
        )
    if code == "TransactionConflictException":
        return WriteConflictError(
            f"{operation}: a concurrent transaction", operation=operation, code=code
        )
    if code in _RETRYABLE_CODES:
        return StoreUnavailableError(f"{operation}: {code}", operation=operation, code=code)
    message = str(response.get("Error", {}).get("Message", "")).lower()
    if code == "ValidationException" and any(
        words in message for words in _INDEX_UNAVAILABLE_MESSAGES
    ):
        return IndexUnavailableError(
            f"{operation}: the index cannot be read (backfilling, or missing)",
            operation=operation,
            code=code,
        )
    return StoreError(f"{operation}: {code}", operation=operation, code=code)
