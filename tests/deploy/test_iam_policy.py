"""Least privilege: the policies grant exactly the AWS calls the code makes, each on its resource.

The DynamoDB actions are derived from the code (every ``client.<operation>(`` of a DynamoDB
operation in common/ and services/), so a new call without a policy change fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.deploy.support import (
    REGION,
    REPO,
    SECRET_ARN,
    SSM_PARAM,
    as_list,
    create_stack,
    load_policy,
    load_template,
    normalized,
    parse_policy_document,
    policy_values,
    role_policy,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:Tried to parse AWS.*not supported by moto:UserWarning"
)

TOPIC = f"arn:aws:sns:{REGION}:123456789012:dora-alerts"
TABLES_MODULE = "common/dynamo/tables.py"  # only `dora tables create` runs what is in here
# Methods defined in the code but called by no process and no command (so not granted):
UNUSED = {"delete_item": "ConfigStore.delete_market"}
# Per table, what the runtime policy allows (tables by logical name)
RUNTIME_BY_TABLE = {
    "market_config": {"GetItem", "PutItem", "UpdateItem", "Scan"},
    "state": {"GetItem", "PutItem", "UpdateItem"},
    "trade_log": {"BatchWriteItem", "PutItem", "Query"},  # Query: the dashboard's history
    "decision_log": {"BatchWriteItem", "PutItem"},
}
# Everything else the code calls, and the code that calls it
OTHER_ACTIONS = {
    "secretsmanager:GetSecretValue": ("common/connect.py", ".get_secret_value("),
    "ssm:GetParameter": ("common/connect.py", ".get_parameter("),
    "cloudwatch:PutMetricData": ("common/metrics.py", ".put_metric_data("),
}
NOT_CALLED_BY_CODE = {
    "kms:Decrypt": "made by Secrets Manager/SSM on the role's behalf (kms:ViaService) for a CMK",
    "sns:Publish": "the risk process's alerts (checked in test_sns_publish_is_in_the_code)",
    "logs:CreateLogStream": "the CloudWatch agent",
    "logs:PutLogEvents": "the CloudWatch agent",
}


def _sources() -> Iterator[tuple[str, str]]:
    for folder in ("common", "services", "cli"):  # the processes and the on-box commands
        for path in sorted((REPO / folder).rglob("*.py")):
            yield str(path.relative_to(REPO)), path.read_text()


def dynamodb_calls() -> dict[str, set[str]]:
    """API name (``GetItem``) -> files calling it on a DynamoDB client."""
    mapping = boto3.client("dynamodb", region_name=REGION).meta.method_to_api_mapping
    calls: dict[str, set[str]] = {}
    for name, text in _sources():
        for method in re.findall(r"client\.([a-z_]+)\(", text):
            if method in mapping:
                calls.setdefault(mapping[method], set()).add(name)
        if re.search(r"get_waiter\(\s*[\"']table_exists", text):
            calls.setdefault("DescribeTable", set()).add(name)  # the waiter polls DescribeTable
    return calls


def _dynamodb_actions(doc: dict[str, Any]) -> set[str]:
    return {
        a.split(":", 1)[1]
        for s in doc["Statement"]
        for a in as_list(s["Action"])
        if a.startswith("dynamodb:")
    }


def runtime_policy() -> dict[str, Any]:
    return load_policy("iam-policy.json", policy_values(TOPIC))


def runtime_dynamodb_actions() -> set[str]:
    """What the processes and the on-box commands call: all but tables-create and UNUSED."""
    mapping = boto3.client("dynamodb", region_name=REGION).meta.method_to_api_mapping
    unused_api = {mapping[m] for m in UNUSED}
    calls = dynamodb_calls()
    return {api for api, files in calls.items() if files - {TABLES_MODULE}} - unused_api


def test_the_code_calls_what_we_think() -> None:
    assert dynamodb_calls(), "no DynamoDB call found: has the code moved?"
    for method, caller in UNUSED.items():
        name = caller.split(".")[1]
        called = [n for n, t in _sources() if re.search(rf"\.{name}\(", t)]
        assert not called, f"{caller} is now called by {called}: grant {method} or drop it"
    assert runtime_dynamodb_actions() == set().union(*RUNTIME_BY_TABLE.values())


def test_runtime_policy_dynamodb_actions_are_exactly_the_codes() -> None:
    assert _dynamodb_actions(runtime_policy()) == runtime_dynamodb_actions()


def test_runtime_policy_scopes_each_table() -> None:
    granted: dict[str, set[str]] = {}
    for s in runtime_policy()["Statement"]:
        for resource in as_list(s["Resource"]):
            if ":dynamodb:" in resource:
                table = resource.rsplit("/", 1)[1].removeprefix("dora_")
                granted.setdefault(table, set()).update(
                    a.split(":", 1)[1] for a in as_list(s["Action"])
                )
    assert granted == RUNTIME_BY_TABLE


def test_tables_admin_policy_is_exactly_tables_create() -> None:
    calls = dynamodb_calls()
    create = {api for api, files in calls.items() if TABLES_MODULE in files}
    create -= {api for api, files in calls.items() if files - {TABLES_MODULE}}
    doc = load_policy("iam-policy-tables-admin.json", policy_values(TOPIC))
    assert (
        _dynamodb_actions(doc)
        == create
        == {
            "CreateTable",
            "DescribeTable",
            "DescribeTimeToLive",
            "UpdateTimeToLive",
        }
    )
    resources = {r for s in doc["Statement"] for r in as_list(s["Resource"])}
    assert len(resources) == 4 and all(":table/dora_" in r for r in resources)


def test_other_actions_are_the_allowed_ones_and_the_code_makes_them() -> None:
    actions = {
        a
        for s in runtime_policy()["Statement"]
        for a in as_list(s["Action"])
        if not a.startswith("dynamodb:")
    }
    assert actions == set(OTHER_ACTIONS) | set(NOT_CALLED_BY_CODE)
    for action, (path, call) in OTHER_ACTIONS.items():
        assert call in (REPO / path).read_text(), f"{action}: {path} no longer calls {call}"


def test_sns_publish_is_in_the_code() -> None:
    found = [
        n for n, t in _sources() if re.search(r"[\"']sns[\"']", t) and re.search(r"\.publish\b", t)
    ]
    if not found:
        pytest.skip("no SNS client in common/ or services/ yet (the alerts are being built)")
    assert found


def test_every_resource_is_scoped() -> None:
    for doc in (
        runtime_policy(),
        load_policy("iam-policy-tables-admin.json", policy_values(TOPIC)),
    ):
        for s in doc["Statement"]:
            assert s["Effect"] == "Allow"
            assert all("*" not in a for a in as_list(s["Action"])), s
            for resource in as_list(s["Resource"]):
                if resource == "*":
                    # PutMetricData has no resource type; the namespace condition scopes it
                    assert as_list(s["Action"]) == ["cloudwatch:PutMetricData"], s
                    assert s["Condition"] == {"StringEquals": {"cloudwatch:namespace": "dora"}}
                else:
                    assert resource.startswith("arn:aws:"), resource
                    assert resource.count("*") <= 1 and (
                        "*" not in resource or resource.endswith(":log-group:/dora:*")
                    ), resource


def test_kms_only_through_secrets_manager_or_ssm() -> None:
    (kms,) = [s for s in runtime_policy()["Statement"] if s["Sid"] == "KalshiKeyDecrypt"]
    assert kms["Condition"] == {
        "StringEquals": {
            "kms:ViaService": [
                f"secretsmanager.{REGION}.amazonaws.com",
                f"ssm.{REGION}.amazonaws.com",
            ]
        }
    }


@pytest.mark.parametrize(
    ("parameters", "dropped"),
    [
        ({"KalshiKeySecretArn": SECRET_ARN}, {"KalshiKeyParameter", "KalshiKeyDecrypt"}),
        ({"KalshiKeySsmParameterName": SSM_PARAM}, {"KalshiKeySecret", "KalshiKeyDecrypt"}),
    ],
)
def test_template_policy_equals_the_standalone_policy(
    parameters: dict[str, str], dropped: set[str]
) -> None:
    with mock_aws():
        outputs = create_stack(
            boto3.client("cloudformation", region_name=REGION), "dora", parameters
        )
        from_stack = normalized(role_policy(outputs["InstanceRoleArn"])["Statement"])
        standalone = load_policy("iam-policy.json", policy_values(outputs["AlertTopicArn"]))
        expected = {
            k: v for k, v in normalized(standalone["Statement"]).items() if k not in dropped
        }
        assert from_stack == expected
        # IAM accepts the standalone documents as they are once the placeholders are filled
        iam = boto3.client("iam", region_name=REGION)
        for name in ("iam-policy.json", "iam-policy-tables-admin.json"):
            doc = load_policy(name, policy_values(outputs["AlertTopicArn"]))
            iam.create_policy(PolicyName=name.removesuffix(".json"), PolicyDocument=json.dumps(doc))


def test_template_inline_policy_has_no_extra_statements() -> None:
    role = load_template()["Resources"]["InstanceRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    (policy,) = role["Policies"]
    sids = []
    for statement in policy["PolicyDocument"]["Statement"]:
        if "Fn::If" in statement:
            statement = statement["Fn::If"][1]
        sids.append(statement["Sid"])
    standalone = load_policy("iam-policy.json", policy_values(TOPIC))
    assert sids == [s["Sid"] for s in standalone["Statement"]]


def test_parse_policy_document_drops_novalue() -> None:
    assert parse_policy_document("{'Statement': [None, {'Sid': 'A'}]}") == {
        "Statement": [{"Sid": "A"}]
    }
