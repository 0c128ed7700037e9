"""The admin tool's command line: it names what it needs from the stack in template.yaml's
outputs, finds a stack through CloudFormation (moto in process), and turns every failure into one
line and an exit code, never a traceback. The commands themselves are driven against the local
world in tests/e2e/test_admin_cli.py."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.stub import Stubber
from moto import mock_aws

from local.resources import load_template
from pleo_connector.aws import forget_clients
from pleo_connector.store.dynamodb import STATUS_INDEX
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.vocabulary import AuthMethod, InstallationStatus
from pleo_connector_admin.cli import main
from pleo_connector_admin.commands import COMMANDS, SCAN_NOTICE
from pleo_connector_admin.errors import (
    EXIT_NO_TARGET,
    EXIT_OK,
    EXIT_UNKNOWN_INSTALLATION,
    EXIT_USAGE,
)
from pleo_connector_admin.targets import OUTPUT_VARIABLES, READ_OUTPUTS
from pleo_connector_admin.wiring import Admin
from tests.unit.store.support import REGION, TABLE_NAME, make_table

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
STACK = "pleo-connector-test"
DLQ_ARN = f"arn:aws:sqs:{REGION}:123456789012:dlq"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_console_script_is_the_cli_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert project["project"]["scripts"] == {
        "pleo-connector-admin": "pleo_connector_admin.cli:main"
    }


def test_every_output_the_tool_reads_is_in_the_template_with_the_functions_value() -> None:
    template = load_template(ROOT / "template.yaml")
    outputs = template["Outputs"]
    environment = template["Globals"]["Function"]["Environment"]["Variables"]

    assert set(READ_OUTPUTS) <= set(outputs)
    for output, variables in OUTPUT_VARIABLES.items():
        for variable in variables:
            # The output carries exactly what the functions get in that variable.
            assert outputs[output]["Value"] == environment[variable], (output, variable)


def test_every_command_is_offered() -> None:
    code, out, _ = run("--help")

    assert code == EXIT_OK
    for name in (
        "list",
        "show",
        "sync-now",
        "dry-run",
        "pause",
        "resume",
        "disconnect",
        "redrive",
        "export",
    ):
        assert name in COMMANDS
        assert name in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list"], "say where: --local"),
        (["--local", "--stack", "x", "list"], "choose one target"),
    ],
)
def test_without_one_target_the_tool_says_so(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)

    assert code == EXIT_USAGE
    assert out == ""
    assert err == f"error: {err.removeprefix('error: ')}"
    assert message in err
    assert "Traceback" not in err


def test_no_local_world_running_is_a_clear_error(tmp_path: Path) -> None:
    code, out, err = run("--local", "--state-dir", str(tmp_path), "list")

    assert code == EXIT_NO_TARGET
    assert out == ""
    assert err.startswith("error: no local world is running")
    assert "make up" in err
    assert err.count("\n") == 1


@pytest.fixture
def aws() -> Iterator[None]:
    forget_clients()
    with mock_aws():
        yield
    forget_clients()


def _deploy(outputs: dict[str, str]) -> None:
    """A stack with the given outputs (one queue, since a stack needs a resource)."""
    body = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=STACK, TemplateBody=json.dumps(body)
    )


def _outputs(queue_url: str) -> dict[str, str]:
    outputs = {name: f"value-of-{name}" for name in READ_OUTPUTS}
    outputs.update(
        TableName=TABLE_NAME,
        SyncQueueUrl=queue_url,
        SyncDeadLetterQueueUrl=queue_url,
        ScheduleDeadLetterQueueUrl=queue_url,
        PleoAuthUrl="https://auth.staging.pleo.io",
        PleoApiUrl="https://external.staging.pleo.io",
        PublicBaseUrl="https://connector.example.com",
        Adapter="placeholder",
    )
    return outputs


def test_a_stack_that_does_not_exist_is_a_clear_error(aws: None) -> None:
    code, out, err = run("--stack", "no-such-stack", "--region", REGION, "list")

    assert (code, out) == (EXIT_NO_TARGET, "")
    assert err == f"error: stack 'no-such-stack' not found in {REGION}\n"


def test_a_stack_is_found_by_its_outputs_and_listed(aws: None) -> None:
    table = make_table()
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="q")["QueueUrl"]
    _deploy(_outputs(queue))
    InstallationRepository(table).create_or_update(
        InstallationRecord(
            installation_id="inst-1",
            company_id="company-1",
            auth_method=AuthMethod.OAUTH,
            status=InstallationStatus.ACTIVATED,
        )
    )

    code, out, err = run("--stack", STACK, "--region", REGION, "--json", "list")
    missing = run("--stack", STACK, "--region", REGION, "show", "inst-2")

    assert (code, err) == (EXIT_OK, "")
    (listed,) = json.loads(out)
    assert (listed["installation_id"], listed["status"], listed["auth_method"]) == (
        "inst-1",
        "ACTIVATED",
        "oauth",
    )
    assert listed["last_run_at"] is None
    assert missing[0] == EXIT_UNKNOWN_INSTALLATION
    assert missing[2] == f"error: no installation 'inst-2' in stack {STACK} ({REGION})\n"


def _index_of(request: dict[str, Any]) -> str | None:
    """The index a serialized DynamoDB request names (its JSON body's `IndexName`)."""
    index: str | None = json.loads(request.get("body") or b"{}").get("IndexName")
    return index


def _backfilling(model: Any, params: dict[str, Any], **_: Any) -> Any:
    """DynamoDB's answer to a query on an index it is still filling after it was added (the
    client takes what a before-call handler returns as the service's answer; botocore's stubs
    type handlers as returning nothing, hence `Any`)."""
    if model.name != "Query" or _index_of(params) != STATUS_INDEX:
        return None
    error = {
        "Code": "ValidationException",
        "Message": f"Cannot read from backfilling global secondary index: {STATUS_INDEX}",
    }
    return AWSResponse("https://dynamodb", 400, HTTPHeaders(), None), {"Error": error}


def test_while_the_status_index_backfills_list_scans_the_table_with_one_warning(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: three installations, in a table whose ByStatus index cannot be read yet
    table = make_table()
    for number in range(3):
        InstallationRepository(table).create_or_update(
            InstallationRecord(
                installation_id=f"inst-{number}",
                company_id=f"company-{number}",
                auth_method=AuthMethod.OAUTH,
                status=InstallationStatus.ACTIVATED,
            )
        )
    table.client.meta.events.register("before-call.dynamodb", _backfilling)
    monkeypatch.setattr(Admin, "table", property(lambda self: table))
    _deploy(
        _outputs(boto3.client("sqs", region_name=REGION).create_queue(QueueName="q")["QueueUrl"])
    )

    # When: listed a page of one item at a time
    code, out, err = run("--stack", STACK, "--region", REGION, "--json", "list", "--page-size", "1")

    # Then: every installation, and the warning once, before the progress lines
    assert code == EXIT_OK, err
    assert {row["installation_id"] for row in json.loads(out)} == {"inst-0", "inst-1", "inst-2"}
    assert err.count("warning: ") == 1
    assert err.startswith(f"warning: {SCAN_NOTICE}\n")
    assert "listing: 2 pages read" in err


def test_a_stack_deployed_from_an_older_template_names_the_missing_output(aws: None) -> None:
    make_table()
    outputs = _outputs("https://sqs.example/q")
    del outputs["CredentialsKeyId"]
    _deploy(outputs)

    code, _, err = run("--stack", STACK, "--region", REGION, "list")

    assert code == EXIT_NO_TARGET
    assert "has no output 'CredentialsKeyId'" in err


# --- redrive on a stack: SQS's move task, or a copy where SQS refuses the action ---------------


@pytest.fixture
def stubbed_sqs(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    make_table()
    _deploy(_outputs("https://sqs.example/q"))
    client = boto3.client("sqs", region_name=REGION)
    monkeypatch.setattr(Admin, "sqs", property(lambda self: client))
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _depths(stubber: Stubber, dead: int, schedule: int) -> None:
    for count in (dead, schedule):
        stubber.add_response(
            "get_queue_attributes",
            {"Attributes": {"ApproximateNumberOfMessages": str(count)}},
        )
    stubber.add_response("get_queue_attributes", {"Attributes": {"QueueArn": DLQ_ARN}})


def test_redrive_on_a_stack_starts_a_message_move_task_back_to_the_source(
    stubbed_sqs: Stubber,
) -> None:
    _depths(stubbed_sqs, 7, 0)
    stubbed_sqs.add_response(
        "start_message_move_task", {"TaskHandle": "task-1"}, {"SourceArn": DLQ_ARN}
    )

    code, out, err = run("--stack", STACK, "--region", REGION, "--json", "redrive")

    assert (code, err) == (EXIT_OK, "")
    assert json.loads(out) == {
        "dead_letter_messages": 7,
        "schedule_dead_letter_messages": 0,
        "method": "move-task",
        "task_handle": "task-1",
        "moved": None,
    }


def test_redrive_copies_when_sqs_does_not_offer_the_move_task(stubbed_sqs: Stubber) -> None:
    _depths(stubbed_sqs, 1, 0)
    stubbed_sqs.add_client_error("start_message_move_task", "InvalidAction", http_status_code=400)
    message: dict[str, Any] = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}"}
    stubbed_sqs.add_response("receive_message", {"Messages": [message]})
    stubbed_sqs.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "0", "MessageId": "m2", "MD5OfMessageBody": "x"}], "Failed": []},
        {"QueueUrl": "https://sqs.example/q", "Entries": [{"Id": "0", "MessageBody": "{}"}]},
    )
    stubbed_sqs.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": "https://sqs.example/q", "Entries": [{"Id": "0", "ReceiptHandle": "r1"}]},
    )
    stubbed_sqs.add_response("receive_message", {"Messages": []})

    code, out, err = run("--stack", STACK, "--region", REGION, "redrive")

    assert code == EXIT_OK
    assert "does not offer StartMessageMoveTask (InvalidAction): copying instead" in err
    assert out == "Moved 1 of 1 messages from the dead-letter queue to the sync queue.\n"


def test_an_aws_error_is_one_line_without_a_traceback(stubbed_sqs: Stubber) -> None:
    stubbed_sqs.add_client_error(
        "get_queue_attributes", "AccessDenied", "not allowed\non two lines", http_status_code=403
    )

    code, out, err = run("--stack", STACK, "--region", REGION, "redrive")

    assert (code, out) == (1, "")
    assert err == "error: GetQueueAttributes failed: AccessDenied: not allowed on two lines\n"
