"""template.yaml keeps the invariants the application relies on.

Each invariant is a `check_*` function over the parsed template. The tests run every check on the
real template, and `test_each_check_catches_its_mutation` proves each one can fail: it breaks the
template in memory the way a careless edit would and expects the check to object.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from local.resources import TEMPLATE, load_template, resources_of_type
from pleo_connector.config import (
    AdapterSettings,
    DispatcherFunctionSettings,
    PleoSettings,
    QueueSettings,
    StoreSettings,
    WebSettings,
)
from pleo_connector.store.dynamodb import SCHEDULABLE_INDEX, STATUS_INDEX
from pleo_connector.sync.dispatcher import GAUGE_WINDOW_S
from tests.support.metric_contract import emitted_series

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.unit

Template = dict[str, Any]

# Every route, on the function that serves it (docs/architecture.md "Deployed").
EXPECTED_ROUTES = {
    ("GET", "/oauth/start"): "OAuthFunction",
    ("GET", "/oauth/callback"): "OAuthFunction",
    ("GET", "/install/api-key"): "ApiKeyInstallFunction",
    ("POST", "/install/api-key"): "ApiKeyInstallFunction",
    ("GET", "/settings"): "SettingsFunction",
    ("POST", "/settings"): "SettingsFunction",
    ("POST", "/settings/sync"): "SettingsFunction",
    ("POST", "/settings/preview"): "SettingsFunction",
    ("GET", "/settings/progress"): "SettingsFunction",
    ("POST", "/settings/disconnect"): "DisconnectFunction",
    ("GET", "/health"): "HealthFunction",
}
WORKER = "SyncWorkerFunction"
DISPATCHER = "SyncDispatcherFunction"
CREDENTIALS_KEY = "CredentialsKey"
OPERATIONS_KEY = "OperationsKey"
# What a principal may do with the operations key, by the service it goes through: SQS generates
# a data key to send and decrypts to receive (and to send: it checks the cached key); Secrets
# Manager only decrypts for the functions, which never write a secret.
OPERATIONS_KEY_ACTIONS = {
    "sqs": {"kms:GenerateDataKey", "kms:Decrypt"},
    "secretsmanager": {"kms:Decrypt"},
}
POWERTOOLS_ENV = ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL")
# Which resource type each service's actions may name.
SCOPE_OF_SERVICE = {
    "dynamodb": "AWS::DynamoDB::Table",
    "kms": "AWS::KMS::Key",
    "sqs": "AWS::SQS::Queue",
    "secretsmanager": "AWS::SecretsManager::Secret",
}
# The functions that read snapshot sources: the worker, and the settings page for its tag groups.
SOURCE_READERS = {"SettingsFunction", WORKER}
# The only S3 objects any function may read: under the stack's prefix of the stack's bucket.
SOURCE_OBJECTS = "arn:${AWS::Partition}:s3:::${SourceBucket}/${SourcePrefix}*"
SOURCE_ENV = {
    "ALLOW_LOCAL_SOURCES": "AllowLocalSources",
    "SOURCE_BUCKET": "SourceBucket",
    "SOURCE_PREFIX": "SourcePrefix",
}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def functions(template: Template) -> dict[str, dict[str, Any]]:
    return resources_of_type(template, "AWS::Serverless::Function")


def function_setting(template: Template, name: str, key: str) -> Any:
    """A function's property, falling back to Globals as SAM does."""
    properties = functions(template)[name]["Properties"]
    if key in properties:
        return properties[key]
    return template.get("Globals", {}).get("Function", {}).get(key)


def events_of(function: dict[str, Any], event_type: str) -> Iterator[dict[str, Any]]:
    for event in function["Properties"].get("Events", {}).values():
        if event["Type"] == event_type:
            yield event["Properties"]


def getatt_target(value: Any) -> str:
    """The logical id in `!GetAtt X.Arn`; fails for anything else (a literal ARN, a `*`)."""
    assert isinstance(value, dict), f"expected !GetAtt <resource>.Arn, got {value!r}"
    assert "Fn::GetAtt" in value, f"expected !GetAtt <resource>.Arn, got {value!r}"
    logical, attribute = value["Fn::GetAtt"]
    assert attribute == "Arn", value
    return str(logical)


def policy_documents(function: dict[str, Any]) -> Iterator[tuple[str | None, Any]]:
    """(condition, policy) of each of a function's policies; a policy that only some stacks
    have is written `!If [Condition, {Statement: ...}, !Ref AWS::NoValue]`."""
    for policy in function["Properties"].get("Policies", []):
        if isinstance(policy, dict) and set(policy) == {"Fn::If"}:
            condition, when_true, when_false = policy["Fn::If"]
            assert when_false == {"Ref": "AWS::NoValue"}, f"{condition}: {when_false!r}"
            yield condition, when_true
        else:
            yield None, policy


def statement_actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return list(actions) if isinstance(actions, list) else [actions]


def resource_scopes(template: Template, resource: Any) -> list[tuple[str, str]]:
    """(logical id, suffix after its ARN) for every entry of a statement's Resource."""
    entries = resource if isinstance(resource, list) else [resource]
    scopes: list[tuple[str, str]] = []
    for entry in entries:
        assert isinstance(entry, dict), f"literal resource {entry!r}: name a template resource"
        if "Fn::GetAtt" in entry:
            scopes.append((getatt_target(entry), ""))
        elif "Ref" in entry:
            # !Ref of a secret is its ARN; of anything else it is not an ARN at all.
            logical = entry["Ref"]
            kind = template["Resources"].get(logical, {}).get("Type")
            assert kind == "AWS::SecretsManager::Secret", f"!Ref {logical} is not an ARN"
            scopes.append((logical, ""))
        elif "Fn::Sub" in entry:
            match = re.fullmatch(r"\$\{(\w+)\.Arn\}(/.*)?", str(entry["Fn::Sub"]))
            assert match, f"unexpected resource {entry!r}"
            scopes.append((match.group(1), match.group(2) or ""))
        else:
            raise AssertionError(f"unexpected resource {entry!r}")
    return scopes


def index_names(template: Template) -> set[str]:
    table = template["Resources"]["Table"]["Properties"]
    return {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}


def required_env_names() -> set[str]:
    """Every environment variable that a settings model needs and cannot default."""
    names: set[str] = set()
    for model in (StoreSettings, PleoSettings, QueueSettings, WebSettings):
        for field in model.model_fields.values():
            if field.is_required() and field.alias:
                names.add(field.alias)
    return names


def sub_text(value: Any) -> str:
    """The format string of `!Sub "..."` or `!Sub ["...", {...}]`."""
    assert isinstance(value, dict), value
    assert "Fn::Sub" in value, value
    sub = value["Fn::Sub"]
    return str(sub[0] if isinstance(sub, list) else sub)


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
def check_globals_runtime(template: Template) -> None:
    function = template["Globals"]["Function"]
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    variables = function["Environment"]["Variables"]
    for name in POWERTOOLS_ENV:
        assert variables.get(name), f"{name} missing from Globals"
    for name, function_resource in functions(template).items():
        properties = function_resource["Properties"]
        assert properties.get("Runtime", "python3.13") == "python3.13", name
        assert properties.get("Architectures", ["arm64"]) == ["arm64"], name


def check_settings_environment(template: Template) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    missing = required_env_names() - set(variables)
    assert not missing, f"settings the functions cannot start without: {sorted(missing)}"


def check_tracing_parameter(template: Template) -> None:
    tracing = template["Globals"]["Function"]["Tracing"]
    assert isinstance(tracing, dict), f"tracing fixed at {tracing!r}, not switched by a parameter"
    condition, when_true, when_false = tracing["Fn::If"]
    assert (when_true, when_false) == ("Active", "PassThrough")
    left, right = template["Conditions"][condition]["Fn::Equals"]
    parameter = left["Ref"] if isinstance(left, dict) else right["Ref"]
    assert parameter in template["Parameters"]


def check_layer(template: Template) -> None:
    layer = template["Resources"]["SharedLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    architectures = template["Globals"]["Function"]["Architectures"]
    assert [layer["Metadata"]["BuildArchitecture"]] == architectures
    assert layer["Properties"]["CompatibleArchitectures"] == architectures
    assert template["Globals"]["Function"]["Layers"] == [
        {"Ref": "SharedLayer"},
        {"Ref": "TracingLayer"},
    ]


def check_tracing_layer(template: Template) -> None:
    """The X-Ray SDK ships in a layer of its own, built without its dependencies (botocore is
    the runtime's), and the functions are told whether tracing is on."""
    layer = template["Resources"]["TracingLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    architectures = template["Globals"]["Function"]["Architectures"]
    assert [layer["Metadata"]["BuildArchitecture"]] == architectures
    assert layer["Properties"]["CompatibleArchitectures"] == architectures
    makefile_path = Path(TEMPLATE).parent / layer["Properties"]["ContentUri"] / "Makefile"
    makefile = makefile_path.read_text(encoding="utf-8")
    assert "--no-deps" in makefile
    assert "manylinux2014_aarch64" in makefile
    assert architectures == ["arm64"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    condition, when_true, when_false = variables["TRACING_ENABLED"]["Fn::If"]
    assert (when_true, when_false) == ("true", "false")
    assert condition == template["Globals"]["Function"]["Tracing"]["Fn::If"][0]


def check_gnucash_layer(template: Template) -> None:
    """piecash and SQLAlchemy 1.4 in a layer of their own, built like the shared one, and
    attached to the worker alone: the web functions never load them."""
    layer = template["Resources"]["GnuCashLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/gnucash/"
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    architectures = template["Globals"]["Function"]["Architectures"]
    assert [layer["Metadata"]["BuildArchitecture"]] == architectures
    assert layer["Properties"]["CompatibleArchitectures"] == architectures
    with_layer = {
        name
        for name, function in functions(template).items()
        if {"Ref": "GnuCashLayer"} in function["Properties"].get("Layers", [])
    }
    assert with_layer == {WORKER}
    assert {"Ref": "GnuCashLayer"} not in template["Globals"]["Function"]["Layers"]


def check_routes(template: Template) -> None:
    routes: dict[tuple[str, str], list[str]] = {}
    for name, function in functions(template).items():
        for event in events_of(function, "HttpApi"):
            assert event.get("ApiId") == {"Ref": "HttpApi"}, f"{name}: route on another API"
            routes.setdefault((event["Method"].upper(), event["Path"]), []).append(name)
    assert routes == {route: [name] for route, name in EXPECTED_ROUTES.items()}


def check_worker_queue(template: Template) -> None:
    worker = functions(template)[WORKER]
    [event] = list(events_of(worker, "SQS"))
    timeout = int(function_setting(template, WORKER, "Timeout"))
    assert timeout <= 300, "the worker must stop well inside Lambda's limit"
    assert "ReportBatchItemFailures" in event["FunctionResponseTypes"]
    assert int(event["ScalingConfig"]["MaximumConcurrency"]) >= 2
    queue = template["Resources"][getatt_target(event["Queue"])]
    assert queue["Type"] == "AWS::SQS::Queue"
    visibility = int(queue["Properties"]["VisibilityTimeout"])
    batching_window = int(event.get("MaximumBatchingWindowInSeconds", 0))
    assert visibility >= 6 * timeout + batching_window
    redrive = queue["Properties"]["RedrivePolicy"]
    assert int(redrive["maxReceiveCount"]) >= 5
    dead_letter = template["Resources"][getatt_target(redrive["deadLetterTargetArn"])]
    assert dead_letter["Type"] == "AWS::SQS::Queue"


def check_schedule(template: Template) -> None:
    dispatcher = functions(template)[DISPATCHER]
    [schedule] = list(events_of(dispatcher, "ScheduleV2"))
    assert int(schedule["RetryPolicy"]["MaximumRetryAttempts"]) >= 1
    assert int(schedule["RetryPolicy"]["MaximumEventAgeInSeconds"]) >= 60
    dead_letter = template["Resources"][getatt_target(schedule["DeadLetterConfig"]["Arn"])]
    assert dead_letter["Type"] == "AWS::SQS::Queue"
    expression = sub_text(schedule["ScheduleExpression"])
    match = re.fullmatch(r"rate\(\$\{(\w+)\} minutes\)", expression)
    assert match, expression
    parameter = template["Parameters"][match.group(1)]
    assert parameter["Type"] == "Number"
    assert int(parameter["MinValue"]) >= 2, "`rate(1 minutes)` is not a valid expression"


def check_table(template: Template) -> None:
    [(name, table)] = resources_of_type(template, "AWS::DynamoDB::Table").items()
    assert name == "Table"
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    schedulable, by_status = properties["GlobalSecondaryIndexes"]
    assert schedulable["IndexName"] == SCHEDULABLE_INDEX
    assert schedulable["KeySchema"] == [
        {"AttributeName": "schedule_pk", "KeyType": "HASH"},
        {"AttributeName": "schedule_sk", "KeyType": "RANGE"},
    ]
    # Keyed on the attribute the META items already have, so DynamoDB fills it from them.
    assert by_status["IndexName"] == STATUS_INDEX
    assert by_status["KeySchema"] == [{"AttributeName": "status", "KeyType": "HASH"}]
    for index in (schedulable, by_status):
        assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}, index["IndexName"]
    defined = {d["AttributeName"]: d["AttributeType"] for d in properties["AttributeDefinitions"]}
    assert defined["status"] == "S"
    assert table.get("DeletionPolicy") == "Retain"


def check_key(template: Template) -> None:
    key = template["Resources"]["CredentialsKey"]
    assert key["Type"] == "AWS::KMS::Key"
    properties = key["Properties"]
    assert properties["EnableKeyRotation"] is True
    statements = properties["KeyPolicy"]["Statement"]
    assert statements, "a key policy with no statement locks everyone out"
    for statement in statements:
        assert statement["Principal"] != "*", "the key must not trust every principal"
        assert statement["Principal"] != {"AWS": "*"}, "the key must not trust every principal"
    assert key.get("DeletionPolicy") == "Retain", "deleting the key loses every credential"


def check_secrets(template: Template) -> None:
    secrets = resources_of_type(template, "AWS::SecretsManager::Secret")
    assert {"PleoClientSecret", "SessionSigningKey"} <= set(secrets)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PLEO_CLIENT_SECRET_ID"] == {"Ref": "PleoClientSecret"}
    assert variables["SESSION_SECRET_ID"] == {"Ref": "SessionSigningKey"}


def check_parameters(template: Template) -> None:
    parameters = template["Parameters"]
    assert set(parameters["PleoEnvironment"]["AllowedValues"]) == {"staging", "production"}
    urls = template["Mappings"]["Pleo"]
    assert set(urls) == {"staging", "production"}
    assert urls["production"] == {
        "AuthUrl": "https://auth.pleo.io",
        "ApiUrl": "https://external.pleo.io",
    }
    for name in (
        "PleoClientId",
        "RequiresConfiguration",
        "SyncRateMinutes",
        "PleoRateBudgetPerMinute",
    ):
        assert name in parameters, name
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PLEO_RATE_BUDGET_PER_MIN"] == {"Ref": "PleoRateBudgetPerMinute"}
    assert variables["REQUIRES_CONFIGURATION"] == {"Ref": "RequiresConfiguration"}
    assert variables["PLEO_CLIENT_ID"] == {"Ref": "PleoClientId"}
    # The worker alone skips unchanged sources; off by default, within the bounds its settings
    # model takes (`WorkerFunctionSettings.sync_full_reconcile_hours`).
    reconcile = parameters["FullReconcileHours"]
    assert (reconcile["Default"], reconcile["MinValue"], reconcile["MaxValue"]) == (0, 0, 720)
    worker = _properties(template, WORKER)["Environment"]["Variables"]
    assert worker["SYNC_FULL_RECONCILE_HOURS"] == {"Ref": "FullReconcileHours"}
    # The dispatcher knows the schedule's period (which run sends the gauge), within the bounds
    # its settings model takes.
    rate = parameters["SyncRateMinutes"]
    rate_field = DispatcherFunctionSettings.model_fields["sync_rate_minutes"]
    bounds = {type(m).__name__: m for m in rate_field.metadata}
    assert (rate["MinValue"], rate["MaxValue"]) == (bounds["Ge"].ge, bounds["Le"].le)
    dispatcher = _properties(template, DISPATCHER)["Environment"]["Variables"]
    assert dispatcher["SYNC_RATE_MINUTES"] == {"Ref": "SyncRateMinutes"}


def check_policies_scoped(template: Template) -> None:
    """Every inline statement names the exact ARNs its actions need, of the right kind. S3 is
    read only from the stack's source bucket and prefix, and only when the stack names one. KMS
    is used only under a condition: the credentials' key with an installation's context, the
    operations key only through the service whose data it encrypts."""
    for name, function in functions(template).items():
        for condition, policy in policy_documents(function):
            assert isinstance(policy, dict), f"{name}: managed policy {policy!r} is not scoped"
            assert set(policy) == {"Statement"}, f"{name}: SAM policy template {policy!r}"
            for statement in policy["Statement"]:
                assert statement["Effect"] == "Allow"
                actions = statement_actions(statement)
                services = {action.split(":", 1)[0] for action in actions}
                assert len(services) == 1, f"{name}: one service per statement, got {services}"
                [service] = services
                assert all("*" not in action for action in actions), f"{name}: {actions}"
                if service == "s3":
                    assert actions == ["s3:GetObject"], f"{name}: {actions}"
                    assert statement["Resource"] == {"Fn::Sub": SOURCE_OBJECTS}, name
                    assert condition == "HasSourceBucket", f"{name}: S3 read without a bucket"
                    continue
                expected_type = SCOPE_OF_SERVICE[service]
                for logical, suffix in resource_scopes(template, statement["Resource"]):
                    kind = template["Resources"][logical]["Type"]
                    assert kind == expected_type, f"{name}: {service} action on {logical}"
                    if suffix:
                        assert service == "dynamodb", f"{name}: {logical}{suffix}"
                        index = suffix.removeprefix("/index/")
                        assert index in index_names(template), f"{name}: {logical}{suffix}"
                if service == "kms":
                    check_key_statement(name, statement)


def check_key_statement(name: str, statement: dict[str, Any]) -> None:
    """One KMS statement of a function or role: which key, which actions, under which condition."""
    key = getatt_target(statement["Resource"])
    actions = set(statement_actions(statement))
    if key == CREDENTIALS_KEY:
        context = statement["Condition"]["ForAnyValue:StringEquals"]
        assert context["kms:EncryptionContextKeys"] == "installation_id", name
        assert actions <= {"kms:Encrypt", "kms:Decrypt"}, f"{name}: {actions}"
        return
    assert key == OPERATIONS_KEY, f"{name}: KMS on {key}"
    assert set(statement["Condition"]) == {"StringEquals"}, name
    [service] = via_services(statement)
    assert actions <= OPERATIONS_KEY_ACTIONS[service], f"{name}: {actions} through {service}"


def via_services(statement: dict[str, Any]) -> list[str]:
    """The services of a statement's `kms:ViaService` condition ("sqs", "secretsmanager")."""
    values = statement["Condition"]["StringEquals"]["kms:ViaService"]
    services = []
    for value in values if isinstance(values, list) else [values]:
        match = re.fullmatch(r"([a-z]+)\.\$\{AWS::Region\}\.amazonaws\.com", sub_text(value))
        assert match, f"kms:ViaService {value!r} is not one service of this region"
        services.append(match.group(1))
    return services


def check_function_permissions(template: Template) -> None:
    """Who may do what: the health check nothing, the dispatcher only query its two indexes
    (never the table's items) and send to its queue (with the queue's key, and never the
    credentials' key)."""
    assert "Policies" not in functions(template)["HealthFunction"]["Properties"]
    dispatcher = functions(template)[DISPATCHER]["Properties"]["Policies"]
    dispatcher_actions = {
        action
        for policy in dispatcher
        for statement in policy["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert dispatcher_actions == {
        "dynamodb:Query",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    queried = set()
    for policy in dispatcher:
        for statement in policy["Statement"]:
            if statement_actions(statement)[0].startswith("kms:"):
                assert getatt_target(statement["Resource"]) == OPERATIONS_KEY
            if statement_actions(statement)[0].startswith("dynamodb:"):
                queried.update(resource_scopes(template, statement["Resource"]))
    assert queried == {
        ("Table", f"/index/{SCHEDULABLE_INDEX}"),
        ("Table", f"/index/{STATUS_INDEX}"),
    }


def check_source_reading(template: Template) -> None:
    """Where snapshot sources may be read is the stack's to say, strict by default: no local
    files, no bucket; the functions that read sources may read the bucket, no other may."""
    parameters = template["Parameters"]
    assert parameters["AllowLocalSources"]["Default"] == "false"
    assert set(parameters["AllowLocalSources"]["AllowedValues"]) == {"true", "false"}
    assert parameters["SourceBucket"]["Default"] == ""
    assert parameters["SourcePrefix"]["Default"] == ""
    assert template["Conditions"]["HasSourceBucket"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SourceBucket"}, ""]}]
    }
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    aliases = {field.alias for field in AdapterSettings.model_fields.values()}
    for variable, parameter in SOURCE_ENV.items():
        assert variable in aliases, f"{variable} is not a setting"
        assert variables.get(variable) == {"Ref": parameter}, variable
    readers = {
        name
        for name, function in functions(template).items()
        for _, policy in policy_documents(function)
        for statement in policy["Statement"]
        if any(action.startswith("s3:") for action in statement_actions(statement))
    }
    assert readers == SOURCE_READERS, f"functions that read S3: {sorted(readers)}"


def check_logs(template: Template) -> None:
    """Every function logs to a group of its own whose retention a parameter sets."""
    groups: set[str] = set()
    for name, function in functions(template).items():
        group = function["Properties"].get("LoggingConfig", {}).get("LogGroup", {}).get("Ref")
        assert group, f"{name} logs to Lambda's default group, kept forever"
        resource = template["Resources"][group]
        assert resource["Type"] == "AWS::Logs::LogGroup"
        retention = resource["Properties"].get("RetentionInDays")
        assert retention == {"Ref": "LogRetentionDays"}, f"{group}: {retention!r}"
        groups.add(group)
    assert len(groups) == len(functions(template)), "functions share a log group"
    assert template["Globals"]["Function"]["LoggingConfig"]["LogFormat"] == "JSON"


def check_outputs(template: Template) -> None:
    outputs = template["Outputs"]
    assert "execute-api" in sub_text(outputs["ApiUrl"]["Value"])
    for name, path in (
        ("InitiationUri", "/oauth/start"),
        ("RedirectUri", "/oauth/callback"),
        ("SettingsUri", "/settings"),
    ):
        assert sub_text(outputs[name]["Value"]).endswith(path), name
        assert ("GET", path) in EXPECTED_ROUTES


# --- operations: encryption, concurrency, alarms, dashboard, scan suppressions ----------------


def key_of(value: Any) -> str:
    """The key a KmsKeyId or KmsMasterKeyId names: `!GetAtt <Key>.Arn`."""
    return getatt_target(value)


def check_encryption_at_rest(template: Template) -> None:
    """Every queue, topic, secret and log group is encrypted under the operations key, which
    rotates and outlives the stack (a message or log event under it must stay readable)."""
    properties_of = {
        "AWS::SQS::Queue": "KmsMasterKeyId",
        "AWS::SNS::Topic": "KmsMasterKeyId",
        "AWS::SecretsManager::Secret": "KmsKeyId",
        "AWS::Logs::LogGroup": "KmsKeyId",
    }
    for kind, key_property in properties_of.items():
        resources = resources_of_type(template, kind)
        assert resources, kind
        for name, resource in resources.items():
            properties = resource["Properties"]
            assert key_of(properties.get(key_property)) == OPERATIONS_KEY, name
            assert "SqsManagedSseEnabled" not in properties, f"{name}: two encryptions"
    key = template["Resources"][OPERATIONS_KEY]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key.get("DeletionPolicy") == "Retain"
    assert key.get("UpdateReplacePolicy") == "Retain"


def key_statement(template: Template, sid: str) -> dict[str, Any]:
    statements = template["Resources"][OPERATIONS_KEY]["Properties"]["KeyPolicy"]["Statement"]
    [statement] = [s for s in statements if s.get("Sid") == sid]
    return dict(statement)


def check_operations_key_policy(template: Template) -> None:
    """Who may use the operations key: the account's principals only through SQS and Secrets
    Manager; CloudWatch Logs only for this account's log groups; CloudWatch, to publish alarms to
    the encrypted topic. Nobody else: no wildcard principal, no other statement."""
    statements = template["Resources"][OPERATIONS_KEY]["Properties"]["KeyPolicy"]["Statement"]
    account = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] not in ("*", {"AWS": "*"}), statement.get("Sid")
    assert {s["Sid"] for s in statements} == {
        "AccountAdministersTheKey",
        "AccountUsesTheKeyThroughSqsAndSecretsManager",
        "CloudWatchLogsEncryptsTheAccountsLogGroups",
        "CloudWatchAlarmsPublishToTheEncryptedTopic",
    }
    admin = key_statement(template, "AccountAdministersTheKey")
    assert admin["Principal"] == account
    assert not {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"} & set(admin["Action"])
    assert not any(action in ("kms:*", "*") for action in admin["Action"])

    use = key_statement(template, "AccountUsesTheKeyThroughSqsAndSecretsManager")
    assert use["Principal"] == account
    assert set(use["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert sorted(via_services(use)) == ["secretsmanager", "sqs"]
    assert use["Condition"]["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}

    logs = key_statement(template, "CloudWatchLogsEncryptsTheAccountsLogGroups")
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    assert {"kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"} <= set(logs["Action"])
    arn = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert sub_text(arn).startswith(
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
    )

    alarms = key_statement(template, "CloudWatchAlarmsPublishToTheEncryptedTopic")
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(alarms["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}


def key_grants(statements: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(key, service it is used through) -> actions, over a policy's KMS statements."""
    grants: dict[tuple[str, str], set[str]] = {}
    for statement in statements:
        actions = statement_actions(statement)
        if not actions[0].startswith("kms:") or "StringEquals" not in statement.get(
            "Condition", {}
        ):
            continue
        for service in via_services(statement):
            key = getatt_target(statement["Resource"])
            grants.setdefault((key, service), set()).update(actions)
    return grants


def key_needs(template: Template, statements: list[dict[str, Any]], receives: set[str]) -> Any:
    """What a principal needs of the keys, from what it does: send to a queue (generate and
    decrypt through SQS), receive from one (decrypt through SQS), read a secret (decrypt through
    Secrets Manager)."""
    needs: dict[tuple[str, str], set[str]] = {}
    resources = template["Resources"]

    def need(key: str, service: str, *actions: str) -> None:
        needs.setdefault((key, service), set()).update(actions)

    for statement in statements:
        actions = statement_actions(statement)
        if "sqs:SendMessage" in actions:
            for queue, _ in resource_scopes(template, statement["Resource"]):
                key = key_of(resources[queue]["Properties"]["KmsMasterKeyId"])
                need(key, "sqs", "kms:GenerateDataKey", "kms:Decrypt")
        if "secretsmanager:GetSecretValue" in actions:
            for secret, _ in resource_scopes(template, statement["Resource"]):
                key = key_of(resources[secret]["Properties"]["KmsKeyId"])
                need(key, "secretsmanager", "kms:Decrypt")
    for queue in receives:
        need(key_of(resources[queue]["Properties"]["KmsMasterKeyId"]), "sqs", "kms:Decrypt")
    return needs


def check_key_use_follows_the_data(template: Template) -> None:
    """Each function (and the schedule's role) may use the operations key exactly as far as the
    queues it sends to or polls and the secrets it reads need: no less (SQS and Secrets Manager
    refuse it), no more."""
    for name, function in functions(template).items():
        statements = [
            statement
            for _, policy in policy_documents(function)
            for statement in policy["Statement"]
        ]
        receives = {getatt_target(event["Queue"]) for event in events_of(function, "SQS")}
        assert key_grants(statements) == key_needs(template, statements, receives), name
    role = template["Resources"]["SyncScheduleRole"]["Properties"]
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert key_grants(statements) == key_needs(template, statements, set())


def check_schedule_role(template: Template) -> None:
    """The schedule runs as a role of its own: only EventBridge Scheduler of this account may
    assume it, and it may start the dispatcher and dead-letter to the schedule's queue, no more."""
    [schedule] = list(events_of(functions(template)[DISPATCHER], "ScheduleV2"))
    assert schedule["RoleArn"] == {"Fn::GetAtt": ["SyncScheduleRole", "Arn"]}
    role = template["Resources"]["SyncScheduleRole"]
    assert role["Type"] == "AWS::IAM::Role"
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert "ManagedPolicyArns" not in role["Properties"]
    granted: dict[str, set[str]] = {}
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in statement_actions(statement):
                assert "*" not in action, action
                granted.setdefault(action, set()).add(getatt_target(statement["Resource"]))
    dead_letter = getatt_target(schedule["DeadLetterConfig"]["Arn"])
    assert granted == {
        "lambda:InvokeFunction": {DISPATCHER},
        "sqs:SendMessage": {dead_letter},
        "kms:GenerateDataKey": {OPERATIONS_KEY},
        "kms:Decrypt": {OPERATIONS_KEY},
    }


def check_worker_concurrency(template: Template) -> None:
    """The worker's reservation bounds the load on Pleo: equal to its event source's
    MaximumConcurrency (a smaller one throttles what the poller hands over; a larger one would
    let a manual invoke add workers)."""
    worker = functions(template)[WORKER]["Properties"]
    [event] = list(events_of(functions(template)[WORKER], "SQS"))
    maximum = int(event["ScalingConfig"]["MaximumConcurrency"])
    assert int(worker["ReservedConcurrentExecutions"]) == maximum


# The alarms and what each watches: (namespace, metric, dimensions, statistic, comparison,
# threshold, period, evaluation periods). Dimension values are what the template writes.
SERVICE_DIMENSION = ("service", "pleo-connector")
ALARMS: dict[str, tuple[str, str, dict[str, Any], str, str, Any, int, Any]] = {
    "SyncDeadLetterAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["SyncDeadLetterQueue", "QueueName"]}},
        "Maximum",
        "GreaterThanThreshold",
        0,
        300,
        1,
    ),
    "ScheduleDeadLetterAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "QueueName"]}},
        "Maximum",
        "GreaterThanThreshold",
        0,
        300,
        1,
    ),
    "SyncWorkerErrorsAlarm": (
        "AWS/Lambda",
        "Errors",
        {"FunctionName": {"Ref": WORKER}},
        "Sum",
        "GreaterThanThreshold",
        0,
        300,
        1,
    ),
    "SyncDispatcherErrorsAlarm": (
        "AWS/Lambda",
        "Errors",
        {"FunctionName": {"Ref": DISPATCHER}},
        "Sum",
        "GreaterThanThreshold",
        0,
        300,
        1,
    ),
    "Api5xxAlarm": (
        "AWS/ApiGateway",
        "5xx",
        {"ApiId": {"Ref": "HttpApi"}},
        "Sum",
        "GreaterThanThreshold",
        0,
        300,
        1,
    ),
    # SyncRateMinutes periods of two minutes: two schedule periods.
    "SyncDispatcherNotRunAlarm": (
        "AWS/Lambda",
        "Invocations",
        {"FunctionName": {"Ref": DISPATCHER}},
        "Sum",
        "LessThanThreshold",
        1,
        120,
        {"Ref": "SyncRateMinutes"},
    ),
    "PleoRateLimitedAlarm": (
        "PleoConnector",
        "Pleo429s",
        dict([SERVICE_DIMENSION]),
        "Sum",
        "GreaterThanOrEqualToThreshold",
        5,
        900,
        1,
    ),
    "InstallationsStoppedAlarm": (
        "PleoConnector",
        "InstallationsStopped",
        dict([SERVICE_DIMENSION]),
        "Sum",
        "GreaterThanThreshold",
        {"Ref": "StoppedInstallationsAlarmThreshold"},
        3600,
        1,
    ),
}


def check_alarms(template: Template) -> None:
    """Every alarm watches what ALARMS says, tells AlarmTopic, and says what missing data means;
    one on the app's own metrics names a series that metrics.py prints, exactly."""
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    assert set(alarms) == set(ALARMS), "an alarm without its pinned expectation, or one missing"
    namespace, series = emitted_series(template)
    for name, (space, metric, dims, stat, comparison, threshold, period, periods) in ALARMS.items():
        properties = alarms[name]["Properties"]
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert properties["Namespace"] == space, name
        assert properties["MetricName"] == metric, name
        written = {d["Name"]: d["Value"] for d in properties["Dimensions"]}
        assert written == dims, name
        assert properties["Statistic"] == stat, name
        assert properties["ComparisonOperator"] == comparison, name
        assert properties["Threshold"] == threshold, name
        assert properties["Period"] == period, name
        assert properties["EvaluationPeriods"] == periods, name
        assert properties.get("DatapointsToAlarm", periods) == periods, name
        assert properties["TreatMissingData"] in ("breaching", "notBreaching"), name
        if space == namespace:
            assert (metric, tuple(sorted(written.items()))) in series, f"{name}: not emitted"
        elif space not in ("AWS/SQS", "AWS/Lambda", "AWS/ApiGateway"):
            raise AssertionError(f"{name}: namespace {space} is neither the app's nor AWS's")
    # A missing invocation is the point of this one: no data must count as breaching.
    assert alarms["SyncDispatcherNotRunAlarm"]["Properties"]["TreatMissingData"] == "breaching"
    rate = template["Parameters"]["SyncRateMinutes"]
    # Under an hour a period, CloudWatch evaluates at most a day: 2 x the longest schedule.
    assert int(rate["MaxValue"]) * 120 <= 86_400
    threshold = template["Parameters"]["StoppedInstallationsAlarmThreshold"]
    assert threshold["Type"] == "Number"
    assert int(threshold["Default"]) >= 1


def dashboard_widgets(template: Template) -> list[dict[str, Any]]:
    """The dashboard's widgets, its `${...}` substitutions read as `<...>`."""
    body = sub_text(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    body = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", r"<\1>", body)
    widgets: list[dict[str, Any]] = json.loads(body)["widgets"]
    return widgets


def widget_metrics(widget: dict[str, Any]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(namespace, metric, dimensions sorted) of each metric row of a metric widget."""
    rows = []
    for row in widget["properties"].get("metrics", []):
        names = [part for part in row if isinstance(part, str)]
        if not names:
            continue  # an expression
        namespace, metric, *pairs = names
        dimensions = tuple(sorted(zip(pairs[::2], pairs[1::2], strict=True)))
        rows.append((namespace, metric, dimensions))
    return rows


def widget_searches(widget: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(namespace, metric, dimension names sorted) of each SEARCH expression of a widget."""
    searches = []
    for row in widget["properties"].get("metrics", []):
        for part in row:
            if isinstance(part, dict) and "SEARCH(" in part.get("expression", ""):
                match = re.fullmatch(
                    r"SEARCH\('\{(\w+),([\w,]+)\} MetricName=\"(\w+)\"', '\w+', \d+\)",
                    part["expression"],
                )
                assert match, part["expression"]
                namespace, dimensions, metric = match.groups()
                searches.append((namespace, metric, tuple(sorted(dimensions.split(",")))))
    return searches


def check_dashboard(template: Template) -> None:
    """The dashboard shows syncs (a search over every outcome, present and future), errors
    (every function, the API), 429s, the dead-letter queues, the run duration's p95, the
    installations in each status (a gauge: its maximum, never a sum) and their moves between
    statuses; each of the app's metrics exactly as metrics.py prints it, each alarm's state."""
    widgets = dashboard_widgets(template)
    namespace, series = emitted_series(template)
    shown = [row for widget in widgets for row in widget_metrics(widget)]
    for space, metric, dimensions in shown:
        if space == namespace:
            assert (metric, dimensions) in series, f"{metric} {dimensions}: not emitted"
    service = dict([SERVICE_DIMENSION])["service"]
    searches = [search for widget in widgets for search in widget_searches(widget)]
    emitted_names = {(metric, tuple(sorted(name for name, _ in dims))) for metric, dims in series}
    for space, metric, dimension_names in searches:
        assert space == namespace, f"SEARCH of {metric} in {space}"
        assert (metric, dimension_names) in emitted_names, f"SEARCH of {metric} {dimension_names}"
    assert (namespace, "Syncs", ("Outcome", "service")) in searches
    assert (namespace, "Installations", ("Status", "service")) in searches
    [by_status] = [
        part["expression"]
        for widget in widgets
        for row in widget["properties"].get("metrics", [])
        for part in row
        if isinstance(part, dict) and 'MetricName="Installations"' in part.get("expression", "")
    ]
    # A gauge sent once in each window: its points are read over the window, not summed.
    assert re.search(rf"', '(Maximum|Average)', {GAUGE_WINDOW_S}\)$", by_status), by_status
    errors = {dict(dims)["FunctionName"] for space, metric, dims in shown if metric == "Errors"}
    assert errors == {f"<{name}>" for name in functions(template)}
    assert ("AWS/ApiGateway", "5xx", (("ApiId", "<HttpApi>"),)) in shown
    for queue in ("SyncDeadLetterQueue", "ScheduleDeadLetterQueue"):
        depth = (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            (("QueueName", f"<{queue}.QueueName>"),),
        )
        assert depth in shown, queue
    for metric in ("Pleo429s", "PleoRequests", "InstallationsStopped", "Activations"):
        assert (namespace, metric, (("service", service),)) in shown, metric
    assert any(metric == "Installs" for _, metric, _ in shown)
    durations = [
        part.get("stat")
        for widget in widgets
        for row in widget["properties"].get("metrics", [])
        if "SyncRunDuration" in row
        for part in row
        if isinstance(part, dict)
    ]
    assert "p95" in durations
    [alarm_widget] = [widget for widget in widgets if widget["type"] == "alarm"]
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    assert set(alarm_widget["properties"]["alarms"]) == {f"<{name}.Arn>" for name in alarms}
    # The dispatcher's log line carries the counts of the installations on the schedule.
    [log_widget] = [widget for widget in widgets if widget["type"] == "log"]
    query = log_widget["properties"]["query"]
    assert query.startswith("SOURCE '<SyncDispatcherFunctionLogs>'")
    dispatcher = (Path(TEMPLATE).parent / "functions/sync_dispatcher/app.py").read_text()
    [message] = re.findall(r"filter message = '([^']+)'", query)
    assert f'logger.info("{message}"' in dispatcher
    for field in re.findall(r"max\((\w+)\)", query):
        assert f'"{field}":' in dispatcher, field
    for widget in widgets:
        if widget["type"] in ("metric", "log"):
            assert widget["properties"]["region"] == "<AWS::Region>"


# The checks the template fixes rather than skips: each would hide a real gap.
FIXED_CHECKS = {
    "CKV_AWS_26": "the SNS topic is encrypted",
    "CKV_AWS_27": "the SQS queues are encrypted",
    "CKV_AWS_149": "the secrets use a customer key",
    "CKV_AWS_158": "the log groups use a customer key",
}
CHECKOV_ID = re.compile(r"CKV2?_AWS_\d+")


def check_scan_suppressions(template: Template) -> None:
    """Every checkov finding the template skips names its check and says why, beside it; the
    fixed gaps are never skipped, and the worker's concurrency check is met, not skipped."""
    for name, resource in template["Resources"].items():
        skips = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        ids = [skip["id"] for skip in skips]
        assert len(ids) == len(set(ids)), f"{name}: a check skipped twice"
        for skip in skips:
            assert CHECKOV_ID.fullmatch(skip["id"]), f"{name}: {skip['id']!r}"
            assert len(str(skip.get("comment", "")).split()) >= 6, f"{name}: {skip['id']} why?"
            assert skip["id"] not in FIXED_CHECKS, f"{name}: {FIXED_CHECKS[skip['id']]}"
        if name == WORKER:
            assert "CKV_AWS_115" not in ids, "the worker's concurrency is reserved, not skipped"


def check_runbook(template: Template) -> None:
    """docs/operations.md has an entry for each alarm: what it means, how to look, what to do."""
    runbook = (Path(TEMPLATE).parent / "docs" / "operations.md").read_text(encoding="utf-8")
    entries = re.split(r"^### ", runbook, flags=re.MULTILINE)
    by_title = {entry.split("\n", 1)[0].strip(): entry for entry in entries[1:]}
    for name in resources_of_type(template, "AWS::CloudWatch::Alarm"):
        entry = by_title.get(f"`{name}`")
        assert entry, f"no runbook entry `### \\`{name}\\``"
        for part in ("**Means**", "**Look**", "**Do**"):
            assert part in entry, f"{name}: no {part}"


CHECKS: list[Callable[[Template], None]] = [
    check_globals_runtime,
    check_settings_environment,
    check_tracing_parameter,
    check_layer,
    check_gnucash_layer,
    check_tracing_layer,
    check_routes,
    check_worker_queue,
    check_schedule,
    check_table,
    check_key,
    check_secrets,
    check_parameters,
    check_policies_scoped,
    check_function_permissions,
    check_source_reading,
    check_logs,
    check_outputs,
    check_encryption_at_rest,
    check_operations_key_policy,
    check_key_use_follows_the_data,
    check_schedule_role,
    check_worker_concurrency,
    check_alarms,
    check_dashboard,
    check_scan_suppressions,
    check_runbook,
]


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_template_keeps_invariant(template: Template, check: Callable[[Template], None]) -> None:
    check(copy.deepcopy(template))


def _resources(template: Template) -> Any:
    return template["Resources"]


def _properties(template: Template, name: str) -> Any:
    return template["Resources"][name]["Properties"]


def _statements(template: Template, name: str) -> Any:
    return _properties(template, name)["Policies"][0]["Statement"]


def _worker_event(template: Template) -> Any:
    return _properties(template, WORKER)["Events"]["Queue"]["Properties"]


def _schedule_event(template: Template) -> Any:
    return _properties(template, DISPATCHER)["Events"]["Schedule"]["Properties"]


def _first(statements: list[dict[str, Any]], service: str) -> dict[str, Any]:
    return next(s for s in statements if str(s["Action"]).count(f"{service}:"))


def _source_policy(template: Template, name: str) -> Any:
    """The `!If [HasSourceBucket, ...]` policy of a function that reads sources."""
    policies = _properties(template, name)["Policies"]
    return next(p for p in policies if "Fn::If" in p)


def _source_statement(template: Template, name: str) -> Any:
    return _source_policy(template, name)["Fn::If"][1]["Statement"][0]


def _unconditional_source_policy(template: Template) -> None:
    policies = _properties(template, WORKER)["Policies"]
    index = policies.index(_source_policy(template, WORKER))
    policies[index] = policies[index]["Fn::If"][1]


def _key_policy(template: Template) -> Any:
    return _properties(template, OPERATIONS_KEY)["KeyPolicy"]["Statement"]


def _key_statement(template: Template, sid: str) -> Any:
    return next(s for s in _key_policy(template) if s["Sid"] == sid)


def _sid(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    return next(s for s in statements if s.get("Sid") == sid)


def _schedule_role_statements(template: Template) -> Any:
    return _properties(template, "SyncScheduleRole")["Policies"][0]["PolicyDocument"]["Statement"]


def _replace_in_dashboard(template: Template, old: str, new: str) -> None:
    body = _properties(template, "Dashboard")["DashboardBody"]
    if old not in body["Fn::Sub"]:  # not an AssertionError: a mutation that misses must not pass
        raise RuntimeError(f"{old!r} is not in the dashboard")
    body["Fn::Sub"] = body["Fn::Sub"].replace(old, new, 1)


def _skips(template: Template, name: str) -> Any:
    return _resources(template)[name]["Metadata"]["checkov"]["skip"]


REASON = "a reason long enough to pass for one, which is the point"


# (description, mutation, the check that must object)
MUTATIONS: list[tuple[str, Callable[[Template], object], Callable[[Template], None]]] = [
    (
        "runtime 3.12",
        lambda t: t["Globals"]["Function"].update(Runtime="python3.12"),
        check_globals_runtime,
    ),
    (
        "x86_64",
        lambda t: t["Globals"]["Function"].update(Architectures=["x86_64"]),
        check_globals_runtime,
    ),
    (
        "function overrides architecture",
        lambda t: _properties(t, WORKER).update(Architectures=["x86_64"]),
        check_globals_runtime,
    ),
    (
        "no Powertools service name",
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].pop(
            "POWERTOOLS_SERVICE_NAME"
        ),
        check_globals_runtime,
    ),
    (
        "no TABLE_NAME",
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].pop("TABLE_NAME"),
        check_settings_environment,
    ),
    (
        "no PUBLIC_BASE_URL",
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].pop("PUBLIC_BASE_URL"),
        check_settings_environment,
    ),
    (
        "tracing always on",
        lambda t: t["Globals"]["Function"].update(Tracing="Active"),
        check_tracing_parameter,
    ),
    (
        "layer built for x86_64",
        lambda t: t["Resources"]["SharedLayer"]["Metadata"].update(BuildArchitecture="x86_64"),
        check_layer,
    ),
    (
        "layer built another way",
        lambda t: t["Resources"]["SharedLayer"]["Metadata"].update(BuildMethod="makefile"),
        check_layer,
    ),
    (
        "GnuCash layer built for x86_64",
        lambda t: t["Resources"]["GnuCashLayer"]["Metadata"].update(BuildArchitecture="x86_64"),
        check_gnucash_layer,
    ),
    (
        "GnuCash layer on a web function",
        lambda t: _properties(t, "SettingsFunction").update(Layers=[{"Ref": "GnuCashLayer"}]),
        check_gnucash_layer,
    ),
    (
        "GnuCash layer in Globals",
        lambda t: t["Globals"]["Function"]["Layers"].append({"Ref": "GnuCashLayer"}),
        check_gnucash_layer,
    ),
    (
        "GnuCash layer not on the worker",
        lambda t: _properties(t, WORKER).pop("Layers"),
        check_gnucash_layer,
    ),
    (
        "tracing layer with botocore",
        lambda t: t["Resources"]["TracingLayer"]["Metadata"].update(BuildMethod="python3.13"),
        check_tracing_layer,
    ),
    (
        "functions not told of tracing",
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
            TRACING_ENABLED="false"
        ),
        check_tracing_layer,
    ),
    (
        "a route missing",
        lambda t: _properties(t, "SettingsFunction")["Events"].pop("SyncNow"),
        check_routes,
    ),
    (
        "a route on the wrong function",
        lambda t: _properties(t, "HealthFunction")["Events"].update(
            Extra=_properties(t, "DisconnectFunction")["Events"].pop("Disconnect")
        ),
        check_routes,
    ),
    (
        "a route with another method",
        lambda t: _properties(t, "OAuthFunction")["Events"]["Callback"]["Properties"].update(
            Method="POST"
        ),
        check_routes,
    ),
    (
        "an extra route",
        lambda t: _properties(t, "HealthFunction")["Events"].update(
            Extra={
                "Type": "HttpApi",
                "Properties": {"ApiId": {"Ref": "HttpApi"}, "Method": "GET", "Path": "/debug"},
            }
        ),
        check_routes,
    ),
    (
        "visibility below 6x timeout",
        lambda t: _properties(t, "SyncQueue").update(
            VisibilityTimeout=int(_properties(t, WORKER)["Timeout"]) * 6 - 1
        ),
        check_worker_queue,
    ),
    (
        "worker timeout raised alone",
        lambda t: _properties(t, WORKER).update(
            Timeout=int(_properties(t, "SyncQueue")["VisibilityTimeout"]) // 6 + 1
        ),
        check_worker_queue,
    ),
    (
        "worker timeout above 300",
        lambda t: (
            _properties(t, WORKER).update(Timeout=301),
            _properties(t, "SyncQueue").update(VisibilityTimeout=6 * 301),
        ),
        check_worker_queue,
    ),
    (
        "maxReceiveCount 3",
        lambda t: _properties(t, "SyncQueue")["RedrivePolicy"].update(maxReceiveCount=3),
        check_worker_queue,
    ),
    ("no redrive", lambda t: _properties(t, "SyncQueue").pop("RedrivePolicy"), check_worker_queue),
    (
        "no partial batch responses",
        lambda t: _worker_event(t).pop("FunctionResponseTypes"),
        check_worker_queue,
    ),
    ("no maximum concurrency", lambda t: _worker_event(t).pop("ScalingConfig"), check_worker_queue),
    ("no schedule retry policy", lambda t: _schedule_event(t).pop("RetryPolicy"), check_schedule),
    ("no schedule DLQ", lambda t: _schedule_event(t).pop("DeadLetterConfig"), check_schedule),
    (
        "fixed rate",
        lambda t: _schedule_event(t).update(ScheduleExpression="rate(60 minutes)"),
        check_schedule,
    ),
    (
        "classic schedule",
        lambda t: _properties(t, DISPATCHER)["Events"]["Schedule"].update(Type="Schedule"),
        check_schedule,
    ),
    (
        "provisioned table",
        lambda t: _properties(t, "Table").update(BillingMode="PROVISIONED"),
        check_table,
    ),
    (
        "no PITR",
        lambda t: _properties(t, "Table").pop("PointInTimeRecoverySpecification"),
        check_table,
    ),
    ("no TTL", lambda t: _properties(t, "Table").pop("TimeToLiveSpecification"), check_table),
    (
        "TTL renamed",
        lambda t: _properties(t, "Table")["TimeToLiveSpecification"].update(
            AttributeName="expires"
        ),
        check_table,
    ),
    ("no SSE", lambda t: _properties(t, "Table").pop("SSESpecification"), check_table),
    ("no GSI", lambda t: _properties(t, "Table").pop("GlobalSecondaryIndexes"), check_table),
    (
        "GSI projects everything",
        lambda t: _properties(t, "Table")["GlobalSecondaryIndexes"][0].update(
            Projection={"ProjectionType": "ALL"}
        ),
        check_table,
    ),
    (
        "no status index",
        lambda t: _properties(t, "Table")["GlobalSecondaryIndexes"].pop(1),
        check_table,
    ),
    (
        "the status index keyed on an attribute nobody writes",
        lambda t: _properties(t, "Table")["GlobalSecondaryIndexes"][1].update(
            KeySchema=[{"AttributeName": "state", "KeyType": "HASH"}]
        ),
        check_table,
    ),
    (
        "no key rotation",
        lambda t: _properties(t, "CredentialsKey").pop("EnableKeyRotation"),
        check_key,
    ),
    ("no key policy", lambda t: _properties(t, "CredentialsKey").pop("KeyPolicy"), check_key),
    (
        "key trusts everyone",
        lambda t: _properties(t, "CredentialsKey")["KeyPolicy"]["Statement"][0].update(
            Principal="*"
        ),
        check_key,
    ),
    ("no session key secret", lambda t: _resources(t).pop("SessionSigningKey"), check_secrets),
    ("no production URLs", lambda t: t["Mappings"]["Pleo"].pop("production"), check_parameters),
    (
        "no rate budget parameter",
        lambda t: t["Parameters"].pop("PleoRateBudgetPerMinute"),
        check_parameters,
    ),
    (
        "unchanged sources skipped by default",
        lambda t: t["Parameters"]["FullReconcileHours"].update(Default=24),
        check_parameters,
    ),
    (
        "worker without the reconcile interval",
        lambda t: _properties(t, WORKER)["Environment"]["Variables"].pop(
            "SYNC_FULL_RECONCILE_HOURS"
        ),
        check_parameters,
    ),
    (
        "DynamoDB on every table",
        lambda t: _first(_statements(t, "OAuthFunction"), "dynamodb").update(Resource="*"),
        check_policies_scoped,
    ),
    (
        "DynamoDB on every index",
        lambda t: _first(_statements(t, "OAuthFunction"), "dynamodb").update(
            Resource=[{"Fn::GetAtt": ["Table", "Arn"]}, {"Fn::Sub": "${Table.Arn}/index/*"}]
        ),
        check_policies_scoped,
    ),
    (
        "DynamoDB wildcard action",
        lambda t: _first(_statements(t, WORKER), "dynamodb").update(Action="dynamodb:*"),
        check_policies_scoped,
    ),
    (
        "KMS on every key",
        lambda t: _first(_statements(t, WORKER), "kms").update(Resource="*"),
        check_policies_scoped,
    ),
    (
        "KMS without context",
        lambda t: _first(_statements(t, WORKER), "kms").pop("Condition"),
        check_policies_scoped,
    ),
    (
        "SQS on a literal ARN",
        lambda t: _first(_statements(t, DISPATCHER), "sqs").update(
            Resource="arn:aws:sqs:eu-west-1:123456789012:x"
        ),
        check_policies_scoped,
    ),
    (
        "SQS on the table",
        lambda t: _first(_statements(t, DISPATCHER), "sqs").update(
            Resource={"Fn::GetAtt": ["Table", "Arn"]}
        ),
        check_policies_scoped,
    ),
    (
        "secrets by wildcard",
        lambda t: _first(_statements(t, "SettingsFunction"), "secretsmanager").update(
            Resource={"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:*"}
        ),
        check_policies_scoped,
    ),
    (
        "a managed policy",
        lambda t: _properties(t, "SettingsFunction")["Policies"].append("AmazonDynamoDBFullAccess"),
        check_policies_scoped,
    ),
    (
        "a SAM policy template",
        lambda t: _properties(t, "SettingsFunction")["Policies"].append(
            {"DynamoDBCrudPolicy": {"TableName": {"Ref": "Table"}}}
        ),
        check_policies_scoped,
    ),
    (
        "health gains a policy",
        lambda t: _properties(t, "HealthFunction").update(
            Policies=copy.deepcopy(_properties(t, "OAuthFunction")["Policies"])
        ),
        check_function_permissions,
    ),
    (
        "dispatcher may not count by status",
        lambda t: _statements(t, DISPATCHER).pop(1),
        check_function_permissions,
    ),
    (
        "dispatcher may query the table itself",
        lambda t: _statements(t, DISPATCHER)[1].update(Resource={"Fn::GetAtt": ["Table", "Arn"]}),
        check_function_permissions,
    ),
    (
        "dispatcher gains KMS",
        lambda t: _statements(t, DISPATCHER).append(
            copy.deepcopy(_first(_statements(t, WORKER), "kms"))
        ),
        check_function_permissions,
    ),
    (
        "S3 read in every stack, bucket or not",
        _unconditional_source_policy,
        check_policies_scoped,
    ),
    (
        "S3 read of the whole bucket",
        lambda t: _source_statement(t, WORKER).update(
            Resource={"Fn::Sub": "arn:${AWS::Partition}:s3:::${SourceBucket}/*"}
        ),
        check_policies_scoped,
    ),
    (
        "S3 read of every bucket",
        lambda t: _source_statement(t, "SettingsFunction").update(Resource="*"),
        check_policies_scoped,
    ),
    (
        "S3 write",
        lambda t: _source_statement(t, WORKER).update(Action=["s3:GetObject", "s3:PutObject"]),
        check_policies_scoped,
    ),
    (
        "S3 wildcard action",
        lambda t: _source_statement(t, WORKER).update(Action="s3:Get*"),
        check_policies_scoped,
    ),
    (
        "local sources allowed by default",
        lambda t: t["Parameters"]["AllowLocalSources"].update(Default="true"),
        check_source_reading,
    ),
    (
        "local sources always allowed",
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
            ALLOW_LOCAL_SOURCES="true"
        ),
        check_source_reading,
    ),
    (
        "a default source bucket",
        lambda t: t["Parameters"]["SourceBucket"].update(Default="my-company-data"),
        check_source_reading,
    ),
    (
        "no SOURCE_PREFIX",
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].pop("SOURCE_PREFIX"),
        check_source_reading,
    ),
    (
        "the bucket condition always holds",
        lambda t: t["Conditions"].update(HasSourceBucket={"Fn::Equals": ["a", "a"]}),
        check_source_reading,
    ),
    (
        "the dispatcher reads sources",
        lambda t: _properties(t, DISPATCHER)["Policies"].append(
            copy.deepcopy(_source_policy(t, WORKER))
        ),
        check_source_reading,
    ),
    (
        "the worker cannot read sources",
        lambda t: _properties(t, WORKER)["Policies"].remove(_source_policy(t, WORKER)),
        check_source_reading,
    ),
    (
        "a function without its log group",
        lambda t: _properties(t, WORKER).pop("LoggingConfig"),
        check_logs,
    ),
    (
        "two functions share a log group",
        lambda t: _properties(t, WORKER).update(
            LoggingConfig={"LogGroup": {"Ref": "HealthFunctionLogs"}}
        ),
        check_logs,
    ),
    (
        "logs kept forever",
        lambda t: _properties(t, "HealthFunctionLogs").pop("RetentionInDays"),
        check_logs,
    ),
    (
        "plain-text logs",
        lambda t: t["Globals"]["Function"].pop("LoggingConfig"),
        check_logs,
    ),
    ("no Settings URI", lambda t: t["Outputs"].pop("SettingsUri"), check_outputs),
    ("no API URL", lambda t: t["Outputs"].pop("ApiUrl"), check_outputs),
    (
        "Redirect URI to the wrong path",
        lambda t: t["Outputs"]["RedirectUri"]["Value"]["Fn::Sub"].__setitem__(
            0, "${Base}/oauth/start"
        ),
        check_outputs,
    ),
    (
        "a queue back on SQS-managed encryption",
        lambda t: _properties(t, "SyncQueue").update(SqsManagedSseEnabled=True),
        check_encryption_at_rest,
    ),
    (
        "a dead-letter queue unencrypted",
        lambda t: _properties(t, "ScheduleDeadLetterQueue").pop("KmsMasterKeyId"),
        check_encryption_at_rest,
    ),
    (
        "the alarm topic unencrypted",
        lambda t: _properties(t, "AlarmTopic").pop("KmsMasterKeyId"),
        check_encryption_at_rest,
    ),
    (
        "a secret under the AWS-managed key",
        lambda t: _properties(t, "PleoClientSecret").pop("KmsKeyId"),
        check_encryption_at_rest,
    ),
    (
        "a log group without a key",
        lambda t: _properties(t, "ApiAccessLogs").pop("KmsKeyId"),
        check_encryption_at_rest,
    ),
    (
        "a log group under the credentials' key",
        lambda t: _properties(t, "SyncWorkerFunctionLogs").update(
            KmsKeyId={"Fn::GetAtt": [CREDENTIALS_KEY, "Arn"]}
        ),
        check_encryption_at_rest,
    ),
    (
        "operations key not rotated",
        lambda t: _properties(t, OPERATIONS_KEY).pop("EnableKeyRotation"),
        check_encryption_at_rest,
    ),
    (
        "operations key deleted with the stack",
        lambda t: _resources(t)[OPERATIONS_KEY].update(DeletionPolicy="Delete"),
        check_encryption_at_rest,
    ),
    (
        "CloudWatch cannot publish to the encrypted topic",
        lambda t: _key_policy(t).remove(
            key_statement(t, "CloudWatchAlarmsPublishToTheEncryptedTopic")
        ),
        check_operations_key_policy,
    ),
    (
        "CloudWatch Logs cannot encrypt",
        lambda t: _key_policy(t).remove(
            key_statement(t, "CloudWatchLogsEncryptsTheAccountsLogGroups")
        ),
        check_operations_key_policy,
    ),
    (
        "CloudWatch Logs for any account's log groups",
        lambda t: _key_statement(t, "CloudWatchLogsEncryptsTheAccountsLogGroups").pop("Condition"),
        check_operations_key_policy,
    ),
    (
        "the account uses the key directly",
        lambda t: _key_statement(t, "AccountUsesTheKeyThroughSqsAndSecretsManager").pop(
            "Condition"
        ),
        check_operations_key_policy,
    ),
    (
        "the account may encrypt anything",
        lambda t: _key_statement(t, "AccountUsesTheKeyThroughSqsAndSecretsManager").update(
            Action=["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]
        ),
        check_operations_key_policy,
    ),
    (
        "the key trusts everyone",
        lambda t: _key_policy(t).append(
            {"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "kms:*"}
        ),
        check_operations_key_policy,
    ),
    (
        "the worker cannot read its queue",
        lambda t: _statements(t, WORKER).remove(
            _sid(_statements(t, WORKER), "OperationsKeyForTheQueue")
        ),
        check_key_use_follows_the_data,
    ),
    (
        "the disconnect cannot read the secrets",
        lambda t: _statements(t, "DisconnectFunction").remove(
            _sid(_statements(t, "DisconnectFunction"), "OperationsKeyForTheSecrets")
        ),
        check_key_use_follows_the_data,
    ),
    (
        "the dispatcher may read secrets it never reads",
        lambda t: _statements(t, DISPATCHER).append(
            copy.deepcopy(_sid(_statements(t, WORKER), "OperationsKeyForTheSecrets"))
        ),
        check_key_use_follows_the_data,
    ),
    (
        "the schedule role cannot dead-letter",
        lambda t: _schedule_role_statements(t).remove(
            _sid(_schedule_role_statements(t), "OperationsKeyForTheDeadLetterQueue")
        ),
        check_key_use_follows_the_data,
    ),
    (
        "the operations key through any service",
        lambda t: _sid(_statements(t, "OAuthFunction"), "OperationsKeyForTheSecrets").update(
            Condition={}
        ),
        check_policies_scoped,
    ),
    (
        "the operations key to generate through Secrets Manager",
        lambda t: _sid(_statements(t, "OAuthFunction"), "OperationsKeyForTheSecrets").update(
            Action=["kms:Decrypt", "kms:GenerateDataKey"]
        ),
        check_policies_scoped,
    ),
    (
        "SAM's schedule role again",
        lambda t: _schedule_event(t).pop("RoleArn"),
        check_schedule_role,
    ),
    (
        "the schedule role invokes any function",
        lambda t: _sid(_schedule_role_statements(t), "InvokeTheDispatcher").update(
            Resource={"Fn::GetAtt": [WORKER, "Arn"]}
        ),
        check_schedule_role,
    ),
    (
        "the schedule role assumed by anyone's scheduler",
        lambda t: _properties(t, "SyncScheduleRole")["AssumeRolePolicyDocument"]["Statement"][
            0
        ].pop("Condition"),
        check_schedule_role,
    ),
    (
        "no worker reservation",
        lambda t: _properties(t, WORKER).pop("ReservedConcurrentExecutions"),
        check_worker_concurrency,
    ),
    (
        "a reservation below the poller's concurrency",
        lambda t: _properties(t, WORKER).update(ReservedConcurrentExecutions=4),
        check_worker_concurrency,
    ),
    (
        "more workers than the poller's",
        lambda t: _worker_event(t)["ScalingConfig"].update(MaximumConcurrency=10),
        check_worker_concurrency,
    ),
    (
        "an unpinned alarm",
        lambda t: _resources(t).update(
            ExtraAlarm=copy.deepcopy(_resources(t)["SyncWorkerErrorsAlarm"])
        ),
        check_alarms,
    ),
    (
        "the dispatcher errors alarm missing",
        lambda t: _resources(t).pop("SyncDispatcherErrorsAlarm"),
        check_alarms,
    ),
    (
        "an alarm that tells nobody",
        lambda t: _properties(t, "PleoRateLimitedAlarm").pop("AlarmActions"),
        check_alarms,
    ),
    (
        "a 429 alarm on a metric nobody emits",
        lambda t: _properties(t, "PleoRateLimitedAlarm").update(MetricName="Pleo429"),
        check_alarms,
    ),
    (
        "a 429 alarm without the service dimension",
        lambda t: _properties(t, "PleoRateLimitedAlarm").update(Dimensions=[]),
        check_alarms,
    ),
    (
        "a 429 alarm in another namespace",
        lambda t: _properties(t, "PleoRateLimitedAlarm").update(Namespace="Pleo"),
        check_alarms,
    ),
    (
        "the metrics namespace renamed alone",
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
            POWERTOOLS_METRICS_NAMESPACE="Connector"
        ),
        check_alarms,
    ),
    (
        "the service renamed alone",
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
            POWERTOOLS_SERVICE_NAME="connector"
        ),
        check_alarms,
    ),
    (
        "a stopped-installations threshold fixed",
        lambda t: _properties(t, "InstallationsStoppedAlarm").update(Threshold=3),
        check_alarms,
    ),
    (
        "a missed dispatcher counted as fine",
        lambda t: _properties(t, "SyncDispatcherNotRunAlarm").update(
            TreatMissingData="notBreaching"
        ),
        check_alarms,
    ),
    (
        "a missed dispatcher looked for over one period",
        lambda t: _properties(t, "SyncDispatcherNotRunAlarm").update(Period=60),
        check_alarms,
    ),
    (
        "a schedule longer than the alarm can look back",
        lambda t: t["Parameters"]["SyncRateMinutes"].update(MaxValue=1440),
        check_alarms,
    ),
    (
        "the DLQ alarm on the sync queue",
        lambda t: _properties(t, "SyncDeadLetterAlarm").update(
            Dimensions=[{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SyncQueue", "QueueName"]}}]
        ),
        check_alarms,
    ),
    (
        "a dashboard metric nobody emits",
        lambda t: _replace_in_dashboard(t, '"SyncRunDuration"', '"RunDuration"'),
        check_dashboard,
    ),
    (
        "the syncs searched without their service",
        lambda t: _replace_in_dashboard(
            t, "{PleoConnector,Outcome,service}", "{PleoConnector,Outcome}"
        ),
        check_dashboard,
    ),
    (
        "the syncs searched by a dimension nobody records",
        lambda t: _replace_in_dashboard(
            t, "{PleoConnector,Outcome,service}", "{PleoConnector,Kind,service}"
        ),
        check_dashboard,
    ),
    (
        "a search of a metric nobody emits",
        lambda t: _replace_in_dashboard(t, 'MetricName=\\"Syncs\\"', 'MetricName=\\"Sync\\"'),
        check_dashboard,
    ),
    (
        "the status gauge summed over the period",
        lambda t: _replace_in_dashboard(
            t, "Installations\\\"', 'Maximum'", "Installations\\\"', 'Sum'"
        ),
        check_dashboard,
    ),
    (
        "the status gauge searched without its status",
        lambda t: _replace_in_dashboard(
            t, "{PleoConnector,Status,service}", "{PleoConnector,service}"
        ),
        check_dashboard,
    ),
    (
        "a dashboard without the p95",
        lambda t: _replace_in_dashboard(t, '"p95"', '"p90"'),
        check_dashboard,
    ),
    (
        "a dashboard without the schedule's DLQ",
        lambda t: _replace_in_dashboard(
            t, "${ScheduleDeadLetterQueue.QueueName}", "${SyncQueue.QueueName}"
        ),
        check_dashboard,
    ),
    (
        "a dashboard without the worker's errors",
        lambda t: _replace_in_dashboard(
            t, '"FunctionName", "${SyncWorkerFunction}"', '"FunctionName", "${HealthFunction}"'
        ),
        check_dashboard,
    ),
    (
        "a dashboard without an alarm",
        lambda t: _replace_in_dashboard(t, '"${Api5xxAlarm.Arn}"', '"${SyncDeadLetterAlarm.Arn}"'),
        check_dashboard,
    ),
    (
        "a dashboard query of a log line nobody prints",
        lambda t: _replace_in_dashboard(t, "'sync dispatched'", "'dispatched'"),
        check_dashboard,
    ),
    (
        "a suppression without its reason",
        lambda t: _skips(t, "HealthFunction")[0].pop("comment"),
        check_scan_suppressions,
    ),
    (
        "a suppression with a token reason",
        lambda t: _skips(t, "Table")[0].update(comment="not needed"),
        check_scan_suppressions,
    ),
    (
        "the queue encryption check skipped",
        lambda t: _resources(t)["SyncQueue"].update(
            Metadata={"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": REASON}]}}
        ),
        check_scan_suppressions,
    ),
    (
        "the worker's concurrency skipped",
        lambda t: _skips(t, WORKER).append({"id": "CKV_AWS_115", "comment": REASON}),
        check_scan_suppressions,
    ),
    (
        "a suppression of no check",
        lambda t: _skips(t, "OAuthFunction")[0].update(id="VPC"),
        check_scan_suppressions,
    ),
    (
        "an alarm without a runbook entry",
        lambda t: _resources(t).update(
            UndocumentedAlarm=copy.deepcopy(_resources(t)["SyncWorkerErrorsAlarm"])
        ),
        check_runbook,
    ),
]


@pytest.mark.parametrize(
    ("mutate", "check"),
    [pytest.param(mutate, check, id=description) for description, mutate, check in MUTATIONS],
)
def test_each_check_catches_its_mutation(
    template: Template,
    mutate: Callable[[Template], object],
    check: Callable[[Template], None],
) -> None:
    broken = copy.deepcopy(template)
    mutate(broken)
    with pytest.raises((AssertionError, KeyError, TypeError, ValueError)):
        check(broken)


def test_every_check_has_a_mutation() -> None:
    assert {check for _, _, check in MUTATIONS} == set(CHECKS)


def test_cfn_lint_finds_nothing() -> None:
    """Errors, warnings and informational findings alike: the template stays clean."""
    matches = lint_file(Path(TEMPLATE), config=ManualArgs(include_checks=["I"]))
    assert [str(match) for match in matches] == []
