"""The stack with the Kalshi key in SSM Parameter Store (its own module: moto state is per mock)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from common.dynamo.tables import TableNames
from tests.deploy.support import REGION, SSM_PARAM, create_stack, normalized, role_policy

pytestmark = pytest.mark.filterwarnings(
    "ignore:Tried to parse AWS.*not supported by moto:UserWarning"
)


def test_role_policy_for_the_ssm_variant() -> None:
    with mock_aws():
        outputs = create_stack(
            boto3.client("cloudformation", region_name=REGION),
            "dora-ssm",
            {"KalshiKeySsmParameterName": SSM_PARAM, "TablePrefix": "prod_"},
        )
        statements = normalized(role_policy(outputs["InstanceRoleArn"])["Statement"])
        assert "KalshiKeySecret" not in statements and "KalshiKeyDecrypt" not in statements
        assert statements["KalshiKeyParameter"] == {
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": [f"arn:aws:ssm:{REGION}:123456789012:parameter{SSM_PARAM}"],
            "Condition": None,
        }
        assert "InstanceId" not in outputs
        tables = boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"]
        assert sorted(tables) == sorted(TableNames.from_prefix("prod_").all())
