"""SAM CLI accepts template.yaml, and what SAM generates from it stays least-privilege.

Integration tier because both run SAM CLI's code in its own virtualenv (a subprocess); neither
needs the network.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAM_VENV = ROOT / ".venv-sam" / "bin"

# Runs in SAM CLI's virtualenv: the template as CloudFormation will receive it after the
# AWS::Serverless transform (code locations stubbed, managed policy names left unresolved).
TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

with open(sys.argv[1], encoding="utf-8") as handle:
    template = yaml_parse(handle.read())
for resource in template["Resources"].values():
    for key in ("CodeUri", "ContentUri"):
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = "s3://bucket/key"

class NoManagedPolicies:
    def load(self):
        return {}

print(json.dumps(transform(template, {}, NoManagedPolicies())))
"""


def sam_environment() -> dict[str, str]:
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "eu-west-1"}


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    result = subprocess.run(
        [str(SAM_VENV / "python"), "-c", TRANSFORM, str(ROOT / "template.yaml")],
        cwd=ROOT,
        env=sam_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    document: dict[str, Any] = json.loads(result.stdout)
    return document


# The one grant that needs a wildcard: snapshot sources are objects under the stack's prefix of
# the stack's bucket, whose keys the customers choose (tests/unit/test_template.py pins it).
SOURCE_OBJECTS = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${SourceBucket}/${SourcePrefix}*"}


def role_statements(transformed: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement of the role, those of a policy only some stacks get (`!If`) included."""
    properties = transformed["Resources"][role]["Properties"]
    policies = [
        policy["Fn::If"][1] if set(policy) == {"Fn::If"} else policy
        for policy in properties.get("Policies", [])
    ]
    return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("config_env", ["default", "dev", "staging", "prod"])
def test_sam_validate_lint_passes(config_env: str) -> None:
    command = [str(SAM_VENV / "sam"), "validate", "--lint", "--template", "template.yaml"]

    result = subprocess.run(
        [*command, "--config-env", config_env],
        cwd=ROOT,
        env=sam_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_generated_roles_name_no_wildcard_resource(transformed: dict[str, Any]) -> None:
    """Inline statements of every generated role, SAM's own included, name their resources."""
    roles = [
        name
        for name, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    ]
    assert len(roles) >= 8  # seven functions and the scheduler
    for role in roles:
        for statement in role_statements(transformed, role):
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                if resource == SOURCE_OBJECTS and statement["Action"] == "s3:GetObject":
                    continue
                assert resource != "*", f"{role}: {statement}"
                assert "*" not in json.dumps(resource), f"{role}: {statement}"


def test_scheduler_reaches_only_the_dispatcher_and_its_dead_letter_queue(
    transformed: dict[str, Any],
) -> None:
    [schedule] = [
        resource
        for resource in transformed["Resources"].values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
    ]
    """The schedule's role: start the dispatcher, dead-letter to its queue, and use that queue's
    key only through SQS (the queue is encrypted under OperationsKey)."""
    role = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    statements = role_statements(transformed, role)

    grants = {
        (
            tuple(sorted(actions if isinstance(actions := s["Action"], list) else [actions])),
            json.dumps(s["Resource"], sort_keys=True),
        )
        for s in statements
    }

    assert grants == {
        (("lambda:InvokeFunction",), json.dumps({"Fn::GetAtt": ["SyncDispatcherFunction", "Arn"]})),
        (("sqs:SendMessage",), json.dumps({"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]})),
        (
            ("kms:Decrypt", "kms:GenerateDataKey"),
            json.dumps({"Fn::GetAtt": ["OperationsKey", "Arn"]}),
        ),
    }
    [key_use] = [s for s in statements if "kms:Decrypt" in s["Action"]]
    assert key_use["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"}}
    }
    assert schedule["Properties"]["Target"]["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}
    }
    assert schedule["Properties"]["Target"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1


def test_worker_polls_its_queue_with_partial_batch_responses(
    transformed: dict[str, Any],
) -> None:
    [mapping] = [
        resource["Properties"]
        for resource in transformed["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
    ]

    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["SyncQueue", "Arn"]}
    assert mapping["FunctionName"] == {"Ref": "SyncWorkerFunction"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] >= 2
