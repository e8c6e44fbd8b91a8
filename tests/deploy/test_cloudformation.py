"""deploy/cloudformation.yaml: lint-clean, matches the code's tables and metrics, and creates in
moto (tables, topic, role and policy, log group, instance; the alarms through the CloudWatch API,
since moto's CloudFormation does not create AWS::CloudWatch::Alarm)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from common.domain import Position
from common.dynamo import Dynamo
from common.dynamo.tables import KEY_SCHEMAS, TTL_ATTRIBUTE, TableNames
from common.position_record import PositionRecord
from tests.deploy.support import (
    KMS_ARN,
    REGION,
    REPO,
    SECRET_ARN,
    TEMPLATE,
    create_stack,
    load_template,
    normalized,
    resources_of_type,
    role_policy,
)

# moto's CloudFormation creates neither of these (the alarms are checked through the API below)
pytestmark = pytest.mark.filterwarnings(
    "ignore:Tried to parse AWS.*not supported by moto:UserWarning"
)

# The metrics the processes publish (common/metrics.py): every alarm must watch one of them.
PUBLISHED_METRICS = {
    "orders_placed",
    "orders_cancelled",
    "api_errors",
    "fills_count",
    "loop_latency_ms",
    "daily_pnl",
    "total_exposure",
}


def test_cfn_lint_passes() -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    if cfn_lint is None:
        pytest.skip("cfn-lint is not installed in this environment")
    result = subprocess.run(
        [cfn_lint, str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tables_are_the_codes_tables() -> None:
    tables = resources_of_type(load_template(), "AWS::DynamoDB::Table")
    by_name = {t["Properties"]["TableName"]["Fn::Sub"]: t for t in tables.values()}
    assert set(by_name) == {f"${{TablePrefix}}{logical}" for logical in KEY_SCHEMAS}
    for logical, (hash_key, range_key) in KEY_SCHEMAS.items():
        table = by_name[f"${{TablePrefix}}{logical}"]
        props = table["Properties"]
        keys = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
        assert keys == ({"HASH": hash_key, "RANGE": range_key} if range_key else {"HASH": hash_key})
        assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
            k: "S" for k in keys.values()
        }
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert table["DeletionPolicy"] == "Retain"  # trade history outlives the stack
        ttl = props.get("TimeToLiveSpecification")
        if logical == "decision_log":
            assert ttl == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
        else:
            assert ttl is None


def test_alarms_watch_published_metrics_and_notify_the_topic() -> None:
    alarms = resources_of_type(load_template(), "AWS::CloudWatch::Alarm")
    assert {a["Properties"]["MetricName"] for a in alarms.values()} == {
        "daily_pnl",
        "api_errors",
        "fills_count",
        "total_exposure",
    }
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["MetricName"] in PUBLISHED_METRICS
        assert props["Namespace"] == {"Ref": "MetricsNamespace"}
        assert "Dimensions" not in props  # the processes publish without dimensions
        assert props["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_alarm_metric_names_are_published_by_the_code() -> None:
    """Each alarmed metric appears as a string literal in the code that records metrics."""
    sources = "\n".join(
        p.read_text() for d in ("common", "services") for p in (REPO / d).rglob("*.py")
    )
    missing = [m for m in sorted(PUBLISHED_METRICS) if not re.search(rf"[\"']{m}[\"']", sources)]
    assert not missing, f"no code records {missing}"


# ---- the stack in moto ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Any]]:
    """The stack with a key secret under a CMK, an alert e-mail and the instance."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]
        cf = boto3.client("cloudformation", region_name=REGION)
        outputs = create_stack(
            cf,
            "dora",
            {
                "KalshiKeySecretArn": SECRET_ARN,
                "KmsKeyArn": KMS_ARN,
                "AlertEmail": "ops@example.com",
                "CreateInstance": "true",
                "SubnetId": subnet["SubnetId"],
                "VpcId": vpc,
                "RepoUrl": "https://git.example.com/dora.git",
                "KalshiKeyId": "0b5e0a8c-1111-2222-3333-444455556666",
            },
        )
        yield outputs


def test_stack_creates_the_tables(stack: dict[str, Any]) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    names = TableNames.from_prefix("dora_")
    assert sorted(client.list_tables()["TableNames"]) == sorted(names.all())
    for logical, full in zip(KEY_SCHEMAS, names.all(), strict=True):
        table = client.describe_table(TableName=full)["Table"]
        hash_key, range_key = KEY_SCHEMAS[logical]
        expected = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            expected.append({"AttributeName": range_key, "KeyType": "RANGE"})
        assert table["KeySchema"] == expected
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert stack[f"{''.join(p.title() for p in logical.split('_'))}TableName"] == full
    # moto's CloudFormation ignores TimeToLiveSpecification: checked on the template above.


def test_the_codes_stores_work_on_the_stacks_tables(stack: dict[str, Any]) -> None:
    db = Dynamo.from_client(boto3.client("dynamodb", region_name=REGION), "dora_")
    config, _ = db.config.update_market("KXDEPLOY-26", {"enabled": True}, "2026-01-01T00:00:00Z")
    assert config.enabled
    assert [m["market_id"] for m in db.config.scan_markets()] == ["KXDEPLOY-26"]
    assert db.positions.put(PositionRecord(Position("KXDEPLOY-26", 100, 56_000_000), 1), 1)
    assert [r.position.position for r in db.positions.get_all()] == [100]
    report = db.logs.write(
        [
            (db.names.trade_log, {"date": "2026-01-01", "sk": "t1", "size": Decimal(1)}),
            (db.names.decision_log, {"date": "2026-01-01", "timestamp": "d1", "expires_at": 9}),
        ]
    )
    assert report.written == 2 and not report.rejected


def test_stack_creates_topic_log_group_and_instance(stack: dict[str, Any]) -> None:
    topic = stack["AlertTopicArn"]
    sns = boto3.client("sns", region_name=REGION)
    assert topic in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert topic.endswith(":dora-alerts")
    groups = boto3.client("logs", region_name=REGION).describe_log_groups()["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [("/dora", 30)]
    reservations = boto3.client("ec2", region_name=REGION).describe_instances()["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert [i["InstanceId"] for i in instances] == [stack["InstanceId"]]
    profile = instances[0]["IamInstanceProfile"]["Arn"]
    assert profile.endswith("/" + stack["InstanceProfileName"])
    assert "DORA_SNS_TOPIC_ARN=" + topic in stack["DoraEnv"]


def test_role_policy_is_least_privilege_for_the_secret_variant(stack: dict[str, Any]) -> None:
    doc = role_policy(stack["InstanceRoleArn"])
    statements = normalized(doc["Statement"])
    assert "KalshiKeyParameter" not in statements  # no SSM parameter given
    assert statements["KalshiKeySecret"]["Resource"] == [SECRET_ARN]
    assert statements["KalshiKeyDecrypt"]["Resource"] == [KMS_ARN]
    assert statements["Alerts"]["Resource"] == [stack["AlertTopicArn"]]
    assert statements["Metrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "dora"}}
    table_arns = {r for s in statements.values() for r in s["Resource"] if ":dynamodb:" in r}
    assert table_arns == {
        f"arn:aws:dynamodb:{REGION}:123456789012:table/{t}"
        for t in TableNames.from_prefix("dora_").all()
    }


def _resolve(value: Any, refs: dict[str, str]) -> Any:
    """Enough of Ref and Fn::Sub for the alarms' properties."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return refs[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([A-Za-z:]+)\}", lambda m: refs[m.group(1)], value["Fn::Sub"])
    if isinstance(value, list):
        return [_resolve(v, refs) for v in value]
    return value


def test_alarms_are_accepted_by_cloudwatch(stack: dict[str, Any]) -> None:
    template = load_template()
    refs = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    refs.update({"AWS::StackName": "dora", "AlertTopic": stack["AlertTopicArn"]})
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    for alarm in alarms.values():
        props = {k: _resolve(v, refs) for k, v in alarm["Properties"].items()}
        for number in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if number in props:
                props[number] = int(props[number])
        props["Threshold"] = float(props["Threshold"])
        assert props["Period"] * props["EvaluationPeriods"] <= 86_400  # CloudWatch's limit
        cloudwatch.put_metric_alarm(**props)
    found = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(found) == {
        "dora-daily-pnl",
        "dora-api-errors",
        "dora-no-fills",
        "dora-metrics-missing",
    }
    assert found["dora-daily-pnl"]["Threshold"] == -50.0
    assert found["dora-daily-pnl"]["ComparisonOperator"] == "LessThanThreshold"
    assert found["dora-no-fills"]["TreatMissingData"] == "breaching"  # no datapoint = no fill
    assert found["dora-metrics-missing"]["TreatMissingData"] == "breaching"
    for alarm in found.values():
        assert alarm["Namespace"] == "dora"
        assert alarm["AlarmActions"] == [stack["AlertTopicArn"]]


def test_no_port_is_opened_but_ssh() -> None:
    """The dashboard binds to 127.0.0.1 and is reached through an SSH tunnel
    (docs/operations.md): the template opens no port for it, nor any other but SSH, and, with
    RedisClusterMode, ElastiCache's 6379 to the dora instances' own security group only."""
    template = load_template()
    groups = resources_of_type(template, "AWS::EC2::SecurityGroup")
    for group in groups.values():
        assert "SecurityGroupIngress" not in group["Properties"]
    ingress = resources_of_type(template, "AWS::EC2::SecurityGroupIngress")
    assert sorted(
        (r["Properties"]["FromPort"], r["Properties"]["ToPort"]) for r in ingress.values()
    ) == [(22, 22), (6379, 6379)]
    redis = ingress["RedisIngress"]["Properties"]
    assert "CidrIp" not in redis
    assert redis["SourceSecurityGroupId"] == {"Fn::GetAtt": ["InstanceSecurityGroup", "GroupId"]}
    assert "8765" not in TEMPLATE.read_text()
