"""What the deploy tests share: paths, the CloudFormation template as data, policy helpers."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import boto3
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TEMPLATE = DEPLOY / "cloudformation.yaml"
ACCOUNT = "123456789012"
REGION = "us-east-1"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:dora/kalshi-key-AbCdEf"
SSM_PARAM = "/dora/kalshi-key"
KMS_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (``!Ref X`` -> ``{"Ref": "X"}``)."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_form)


def load_template() -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    return data


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def substitute(text: str, values: dict[str, str]) -> str:
    """``${Name}`` placeholders (the standalone policies, Fn::Sub strings) filled from ``values``."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for placeholder ${{{name}}}")
        return values[name]

    return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", one, text)


def policy_values(topic_arn: str, **overrides: str) -> dict[str, str]:
    values = {
        "Region": REGION,
        "AccountId": ACCOUNT,
        "TablePrefix": "dora_",
        "KalshiKeySecretArn": SECRET_ARN,
        "KalshiKeySsmParameterName": SSM_PARAM,
        "KmsKeyArn": KMS_ARN,
        "AlertTopicArn": topic_arn,
        "MetricsNamespace": "dora",
        "LogGroupName": "/dora",
    }
    values.update(overrides)
    return values


def load_policy(name: str, values: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(substitute((DEPLOY / name).read_text(), values))
    return doc


def parse_policy_document(raw: Any) -> dict[str, Any]:
    """A policy document as moto returns it (a dict, JSON text, or a Python repr), without the
    ``None`` that moto leaves where the template says ``AWS::NoValue``."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raw = ast.literal_eval(raw)
    doc = dict(raw)
    doc["Statement"] = [s for s in doc["Statement"] if s is not None]
    return doc


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def normalized(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """Statements by Sid with sorted actions and resources, for comparing two documents."""
    out = {}
    for s in statements:
        out[s["Sid"]] = {
            "Effect": s["Effect"],
            "Action": sorted(as_list(s["Action"])),
            "Resource": sorted(as_list(s["Resource"])),
            "Condition": s.get("Condition"),
        }
    return out


def create_stack(cf: Any, name: str, parameters: dict[str, str]) -> dict[str, Any]:
    cf.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack: dict[str, Any] = cf.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def role_policy(role_arn: str) -> dict[str, Any]:
    iam = boto3.client("iam", region_name=REGION)
    role = role_arn.rsplit("/", 1)[1]
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["dora-runtime"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    raw = iam.get_role_policy(RoleName=role, PolicyName="dora-runtime")["PolicyDocument"]
    return parse_policy_document(raw)
