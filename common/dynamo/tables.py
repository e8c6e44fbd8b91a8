"""The four DynamoDB tables of the original plan, named with a configurable prefix (DESIGN.md §4).

| table | key | holds |
|---|---|---|
| ``{prefix}market_config`` | ``market_id`` | one item per market: the per-market config |
| ``{prefix}state`` | ``key`` | ``positions#{ticker}`` (one per market), ``fills_cursor``, ``global_config``, ``risk_state``, ``pnl#YYYY-MM-DD`` |
| ``{prefix}trade_log`` | ``date`` + ``sk`` | one row per order event or fill (``sk`` = ``timestamp#order_id...``) |
| ``{prefix}decision_log`` | ``date`` + ``timestamp`` | one row per executor decision, expiring (TTL ``expires_at``) |

All are on-demand (PAY_PER_REQUEST). ``create_tables`` is idempotent: it creates what is missing,
waits until each table is active and turns on the TTL of the decision log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from common.errors import StorageError
from common.settings import Settings

TTL_ATTRIBUTE = "expires_at"
STATE_POSITIONS = "positions"  # the original plan's single item: migrated once, then deleted
STATE_GLOBAL_CONFIG = "global_config"
STATE_EVENT_CONFIG = "event_config"  # per-event overrides (max_event_loss), one item
STATE_RISK = "risk_state"
PNL_KEY_PREFIX = "pnl#"


@dataclass(frozen=True, slots=True)
class TableNames:
    market_config: str
    state: str
    trade_log: str
    decision_log: str

    @classmethod
    def from_prefix(cls, prefix: str) -> TableNames:
        return cls(
            market_config=f"{prefix}market_config",
            state=f"{prefix}state",
            trade_log=f"{prefix}trade_log",
            decision_log=f"{prefix}decision_log",
        )

    def all(self) -> tuple[str, ...]:
        return (self.market_config, self.state, self.trade_log, self.decision_log)


# (hash key, range key or None) per logical table; every key attribute is a string
KEY_SCHEMAS: dict[str, tuple[str, str | None]] = {
    "market_config": ("market_id", None),
    "state": ("key", None),
    "trade_log": ("date", "sk"),
    "decision_log": ("date", "timestamp"),
}


def key_of(names: TableNames, table: str) -> tuple[str, str | None]:
    """The key attributes of a table given by its full name."""
    for logical, full in zip(KEY_SCHEMAS, names.all(), strict=True):
        if full == table:
            return KEY_SCHEMAS[logical]
    raise ValueError(f"unknown table {table!r}")


def make_client(settings: Settings, *, max_attempts: int = 3, timeout_s: float = 5.0) -> Any:
    """A low-level DynamoDB client (thread-safe) from ``DORA_DYNAMODB_ENDPOINT``/``DORA_AWS_REGION``.

    Against a local endpoint (moto, DynamoDB Local) without AWS credentials in the environment,
    placeholder credentials are used so nothing reaches out for real ones.
    """
    options: dict[str, Any] = {
        "region_name": settings.aws_region,
        "config": BotoConfig(
            connect_timeout=min(timeout_s, 2.0),
            read_timeout=timeout_s,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
        ),
    }
    if settings.dynamodb_endpoint:
        options["endpoint_url"] = settings.dynamodb_endpoint
        if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
            options["aws_access_key_id"] = "local"
            options["aws_secret_access_key"] = "local"
    return boto3.client("dynamodb", **options)


def _definition(name: str, hash_key: str, range_key: str | None) -> dict[str, Any]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    attrs = [{"AttributeName": hash_key, "AttributeType": "S"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attrs.append({"AttributeName": range_key, "AttributeType": "S"})
    return {
        "TableName": name,
        "KeySchema": schema,
        "AttributeDefinitions": attrs,
        "BillingMode": "PAY_PER_REQUEST",
    }


def create_tables(client: Any, names: TableNames) -> list[tuple[str, str]]:
    """Create whatever table is missing; returns ``(table, "created" | "exists")`` per table
    plus ``(table, "ttl enabled" | "ttl exists")`` for the decision log's TTL."""
    report: list[tuple[str, str]] = []
    try:
        for (hash_key, range_key), name in zip(KEY_SCHEMAS.values(), names.all(), strict=True):
            if _exists(client, name):
                report.append((name, "exists"))
                continue
            try:
                client.create_table(**_definition(name, hash_key, range_key))
                report.append((name, "created"))
            except ClientError as exc:
                if _code(exc) != "ResourceInUseException":  # created meanwhile by someone else
                    raise
                report.append((name, "exists"))
        for name in names.all():
            client.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
        report.append((names.decision_log, _enable_ttl(client, names.decision_log)))
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"could not create the DynamoDB tables: {describe(exc)}") from None
    return report


def _exists(client: Any, name: str) -> bool:
    try:
        client.describe_table(TableName=name)
        return True
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return False
        raise


def _enable_ttl(client: Any, name: str) -> str:
    current = client.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return "ttl exists"
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    return "ttl enabled"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_code(exc: BaseException) -> str:
    return _code(exc) if isinstance(exc, ClientError) else type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line for an operator: what DynamoDB said."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
