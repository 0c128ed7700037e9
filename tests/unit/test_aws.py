"""Clients are built once per process, and never reused across different endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pleo_connector.aws import aws_client, forget_clients

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forget_clients()
    yield
    forget_clients()


def test_one_client_per_service_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")

    first = aws_client("dynamodb")

    assert aws_client("dynamodb") is first
    assert first.meta.endpoint_url == "http://127.0.0.1:9"
    assert aws_client("kms") is not first
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:10")
    moved = aws_client("dynamodb")
    assert moved is not first
    assert moved.meta.endpoint_url == "http://127.0.0.1:10"


def test_clients_of_one_endpoint_environment_share_one_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A boto3 session loads botocore's data; the second client of a process must not pay again."""
    import boto3.session

    made: list[object] = []
    real = boto3.session.Session

    def counting(*args: object, **kwargs: object) -> boto3.session.Session:
        session = real(*args, **kwargs)  # type: ignore[arg-type]
        made.append(session)
        return session

    monkeypatch.setattr(boto3.session, "Session", counting)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    aws_client("dynamodb")
    aws_client("sqs")
    assert len(made) == 1
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    moved = aws_client("sqs")
    assert len(made) == 2
    assert moved.meta.region_name == "eu-central-1"
