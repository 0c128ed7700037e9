"""Where the admin tool acts: the running local world (`--local`), or a deployed stack found by
its name through CloudFormation's outputs (`--stack NAME`), with the caller's AWS credentials.

Both give the same thing: the stack's outputs by name (template.yaml's `Outputs`), from which the
functions' own environment variables are made, so the tool parses its settings with the same
models the functions use. The local world has no CloudFormation: its outputs are made from what
the world recorded in its state file (the resources it created from the template, and the
environment overrides the functions run with).
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pleo_connector_admin.errors import TargetNotFoundError

if TYPE_CHECKING:
    from collections.abc import Mapping

# Each output the tool reads, and the function environment variables it stands for.
OUTPUT_VARIABLES: dict[str, tuple[str, ...]] = {
    "TableName": ("TABLE_NAME",),
    "CredentialsKeyId": ("KMS_KEY_ID",),
    "SyncQueueUrl": ("SYNC_QUEUE_URL",),
    "PleoAuthUrl": ("PLEO_AUTH_URL", "PLEO_ISSUER"),
    "PleoApiUrl": ("PLEO_API_URL",),
    "PleoClientId": ("PLEO_CLIENT_ID",),
    "PleoClientSecretArn": ("PLEO_CLIENT_SECRET_ID",),
    "SessionSigningKeyArn": ("SESSION_SECRET_ID",),
    "PublicBaseUrl": ("PUBLIC_BASE_URL",),
    "Adapter": ("ADAPTER",),
}
SYNC_DLQ_OUTPUT = "SyncDeadLetterQueueUrl"
SCHEDULE_DLQ_OUTPUT = "ScheduleDeadLetterQueueUrl"
READ_OUTPUTS = (*OUTPUT_VARIABLES, SYNC_DLQ_OUTPUT, SCHEDULE_DLQ_OUTPUT)


@dataclass(frozen=True, slots=True)
class Target:
    """A stack's outputs, and the AWS environment that reaches its resources (the local
    stand-ins' endpoints; nothing for a deployed stack beyond the region)."""

    description: str
    outputs: Mapping[str, str]
    aws_environment: Mapping[str, str] = field(default_factory=dict)
    local: bool = False

    def output(self, name: str) -> str:
        value = self.outputs.get(name)
        if not value:
            raise TargetNotFoundError(
                f"{self.description} has no output {name!r}: deploy the current template.yaml"
            )
        return value

    def function_environment(self) -> dict[str, str]:
        """The variables a function of this stack reads, as far as the tool needs them."""
        environment: dict[str, str] = {}
        for output, variables in OUTPUT_VARIABLES.items():
            for variable in variables:
                environment[variable] = self.output(output)
        return environment

    def apply(self) -> None:
        """Point boto3 at the target (before the first client is made)."""
        os.environ.update(self.aws_environment)


# --- the local world -----------------------------------------------------------------------------


def local_target(state_dir: Path) -> Target:
    """The local world whose state is in `state_dir`, if it runs and is ready."""
    from local.invoker import DEFAULT_OVERRIDES, load_overrides
    from local.resources import TEMPLATE, LocalResources, load_template
    from local.services import aws_endpoint_env
    from local.world import pid_alive, read_state

    state = read_state(state_dir)
    if state is None or not pid_alive(int(state.get("pid", 0))):
        raise TargetNotFoundError(
            f"no local world is running (no live state in {state_dir}): start one with `make up`"
            " (or pass --state-dir)"
        )
    if state.get("status") != "ready":
        raise TargetNotFoundError("the local world is still starting: try again in a moment")
    urls: dict[str, str] = state["urls"]
    resources = LocalResources(**state["resources"])
    env_vars = Path(state["env_vars"]) if state.get("env_vars") else DEFAULT_OVERRIDES
    overrides = load_overrides(env_vars).get("Parameters", {})
    placeholders = {
        "LocalApiUrl": urls.get("api", ""),
        "PleoEmulatorUrl": urls.get("pleo-emulator", ""),
        "DynamoDbUrl": urls["dynamodb-local"],
        "MotoUrl": urls["moto"],
    }

    def overridden(variable: str, default: str) -> str:
        value = overrides.get(variable)
        if value is None:
            return default
        return string.Template(value).safe_substitute(placeholders)

    template = load_template(Path(state.get("template") or TEMPLATE))
    default_adapter = str(template["Parameters"]["Adapter"]["Default"])
    outputs = {
        "TableName": resources.tables["Table"],
        "SyncQueueUrl": resources.queue_urls["SyncQueue"],
        SYNC_DLQ_OUTPUT: resources.queue_urls["SyncDeadLetterQueue"],
        SCHEDULE_DLQ_OUTPUT: resources.queue_urls["ScheduleDeadLetterQueue"],
        "CredentialsKeyId": resources.keys["CredentialsKey"],
        "PleoClientSecretArn": resources.secrets["PleoClientSecret"],
        "SessionSigningKeyArn": resources.secrets["SessionSigningKey"],
        "PleoAuthUrl": overridden("PLEO_AUTH_URL", ""),
        "PleoApiUrl": overridden("PLEO_API_URL", ""),
        "PleoClientId": overridden("PLEO_CLIENT_ID", ""),
        "PublicBaseUrl": overridden("PUBLIC_BASE_URL", urls.get("api", "")),
        "Adapter": state.get("adapter") or overridden("ADAPTER", default_adapter),
    }
    return Target(
        description=f"the local world (pid {state['pid']}, {state_dir})",
        outputs=outputs,
        aws_environment=aws_endpoint_env(urls["dynamodb-local"], urls["moto"]),
        local=True,
    )


# --- a deployed stack ----------------------------------------------------------------------------


def stack_target(stack_name: str, region: str | None = None) -> Target:
    """The deployed stack `stack_name`, read with the caller's credentials."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        session = boto3.session.Session(region_name=region)
        where = session.region_name or "the default region"
        cloudformation = session.client("cloudformation")
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except NoCredentialsError:
        raise TargetNotFoundError(
            "no AWS credentials: set AWS_PROFILE or the AWS_* variables to reach the stack"
        ) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ValidationError" and "does not exist" in message:
            raise TargetNotFoundError(f"stack {stack_name!r} not found in {where}") from None
        raise TargetNotFoundError(f"could not read stack {stack_name!r}: {code}") from None
    except BotoCoreError as error:
        raise TargetNotFoundError(
            f"could not reach CloudFormation: {type(error).__name__}"
        ) from None
    outputs = {
        str(output["OutputKey"]): str(output["OutputValue"])
        for output in stacks[0].get("Outputs", [])
    }
    environment = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region} if region else {}
    return Target(
        description=f"stack {stack_name} ({where})", outputs=outputs, aws_environment=environment
    )
