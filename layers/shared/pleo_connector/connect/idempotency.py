"""Powertools idempotency for the effects a retried invocation must not repeat (spending an OAuth
grant, queueing a second first sync). Records live in the app's table under their own partition.

Imported only on the paths that need it: the idempotency utility costs a few hundred milliseconds
of cold start, which the other routes should not pay.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from pleo_connector.connect.errors import ConnectError

if TYPE_CHECKING:
    from collections.abc import Callable

IDEMPOTENCY_TTL_S = 3600


class AlreadyInProgressError(ConnectError):
    """The same step is running in another invocation right now."""

    http_status: ClassVar[int] = 409


@cache
def _persistence(table_name: str) -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr="pk",
        sort_key_attr="sk",
        expiry_attr="ttl",
    )


def once(
    table_name: str,
    key: str,
    effect: Callable[[], dict[str, Any]],
    lambda_context: Any = None,
) -> dict[str, Any]:
    """Run `effect` once per `key` within the TTL; a retry gets the first result back, and a
    concurrent duplicate gets AlreadyInProgressError. With the Lambda context, an in-progress
    record left by an invocation that timed out expires with that invocation."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    def effect_for(request: dict[str, str]) -> dict[str, Any]:
        return effect()

    config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_TTL_S)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    run: Callable[..., dict[str, Any]] = idempotent_function(
        effect_for,
        data_keyword_argument="request",
        persistence_store=_persistence(table_name),
        config=config,
    )

    try:
        result: dict[str, Any] = run(request={"key": key})
    except IdempotencyAlreadyInProgressError:
        raise AlreadyInProgressError(
            "This step is already under way. Please wait a moment."
        ) from None
    return result
