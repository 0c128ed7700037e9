"""The SQS poller gives a function Lambda's event source mapping semantics on moto's SQS:
partial batch responses, the visibility timeout, and the dead-letter queue after maxReceiveCount."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from local.functions import load_function_specs
from local.invoker import Invoker
from local.resources import LocalResources, create_all, load_template
from local.sqs_poller import SqsPoller, SqsSource, sqs_sources

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from local.function_spec import FunctionSpec
    from local.services import Service

pytestmark = pytest.mark.integration

MAX_RECEIVE_COUNT = 2
BATCH_SIZE = 3

WORKER = """
import json


def handler(event, context):
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        if body.get("crash"):
            raise RuntimeError("the whole batch fails")
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
"""

TEMPLATE = f"""\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 600
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDeadLetterQueue.Arn
        maxReceiveCount: {MAX_RECEIVE_COUNT}
  WorkDeadLetterQueue:
    Type: AWS::SQS::Queue
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.handler
      Runtime: python3.13
      Timeout: 10
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: {BATCH_SIZE}
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 2
"""


@dataclass
class QueueWorld:
    sqs: Any
    resources: LocalResources
    source: SqsSource
    invoker: Invoker
    moto_url: str

    def poller(self, visibility_timeout_s: int) -> SqsPoller:
        return SqsPoller(
            self.invoker, self.source, self.moto_url, visibility_timeout_s, wait_time_s=0
        )

    def send(self, **body: Any) -> str:
        return str(
            self.sqs.send_message(QueueUrl=self.source.queue_url, MessageBody=json.dumps(body))[
                "MessageId"
            ]
        )

    def counts(self, logical_id: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.resources.queue_urls[logical_id],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )


@pytest.fixture(scope="module")
def sam_template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sqs-template")
    (root / "worker").mkdir()
    (root / "worker" / "app.py").write_text(WORKER, encoding="utf-8")
    (root / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def specs(sam_template_dir: Path) -> dict[str, FunctionSpec]:
    """The template's functions, read once by SAM CLI (queues are bound per test below)."""
    return load_function_specs(sam_template_dir / "template.yaml")


@pytest.fixture
def queue_world(
    sam_template_dir: Path,
    specs: dict[str, FunctionSpec],
    moto_server: Service,
    request: pytest.FixtureRequest,
) -> Iterator[QueueWorld]:
    resources = create_all(
        moto_server.url,  # the template has no table: DynamoDB is never called
        moto_server.url,
        prefix=f"poller-{request.node.name[:40]}",
        template=load_template(sam_template_dir / "template.yaml"),
    )
    # Bind the template's SQS event to this test's own queue (as `!GetAtt WorkQueue.Arn` would).
    bound = {
        name: replace(spec, events=_bind_queue(spec.events, resources.queue_arns["WorkQueue"]))
        for name, spec in specs.items()
    }
    urls_by_arn = {resources.queue_arns[k]: v for k, v in resources.queue_urls.items()}
    (source,) = sqs_sources(bound, urls_by_arn)
    sqs = boto3.client("sqs", endpoint_url=moto_server.url, region_name="eu-west-1")
    with Invoker(bound, log=io.StringIO()) as invoker:
        yield QueueWorld(sqs, resources, source, invoker, moto_server.url)


def _bind_queue(events: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    bound: dict[str, Any] = json.loads(json.dumps(events))
    for event in bound.values():
        if event["Type"] == "SQS":
            event["Properties"]["Queue"] = queue_arn
    return bound


def test_the_source_is_read_from_the_template(queue_world: QueueWorld) -> None:
    source = queue_world.source

    assert source.function_name == "WorkerFunction"
    assert source.batch_size == BATCH_SIZE
    assert source.max_concurrency == 2
    assert source.report_batch_item_failures is True
    assert source.queue_url == queue_world.resources.queue_urls["WorkQueue"]


def test_only_the_reported_failures_stay_on_the_queue(queue_world: QueueWorld) -> None:
    kept = queue_world.send(n=1)
    failing = queue_world.send(n=2, fail=True)
    other = queue_world.send(n=3)

    outcome = queue_world.poller(visibility_timeout_s=600).poll_once()

    assert outcome is not None
    assert sorted(outcome.message_ids) == sorted([kept, failing, other])
    assert sorted(outcome.deleted) == sorted([kept, other])
    assert outcome.failed == [failing]
    # The failed message was not deleted: it waits, hidden, for its visibility timeout.
    assert queue_world.counts("WorkQueue") == (0, 1)


def test_a_function_error_leaves_the_whole_batch(queue_world: QueueWorld) -> None:
    first = queue_world.send(n=1)
    crashing = queue_world.send(n=2, crash=True)

    outcome = queue_world.poller(visibility_timeout_s=600).poll_once()

    assert outcome is not None
    assert outcome.invocation.is_error
    assert sorted(outcome.failed) == sorted([first, crashing])
    assert outcome.deleted == []
    assert queue_world.counts("WorkQueue") == (0, 2)


def test_a_message_that_keeps_failing_moves_to_the_dead_letter_queue(
    queue_world: QueueWorld,
) -> None:
    failing = queue_world.send(fail=True)
    poller = queue_world.poller(visibility_timeout_s=0)  # visible again at once

    outcomes = [poller.poll_once() for _ in range(MAX_RECEIVE_COUNT + 1)]

    invoked = [outcome for outcome in outcomes if outcome is not None]
    assert len(invoked) == MAX_RECEIVE_COUNT
    assert all(outcome.failed == [failing] for outcome in invoked)
    assert queue_world.counts("WorkQueue") == (0, 0)
    dead = queue_world.sqs.receive_message(
        QueueUrl=queue_world.resources.queue_urls["WorkDeadLetterQueue"], MaxNumberOfMessages=10
    )["Messages"]
    assert [message["MessageId"] for message in dead] == [failing]
