"""Market and global config in DynamoDB, with a ``version`` that only goes up.

Every write is a read-modify-write guarded by a condition on the version it read, so two writers
(two operators, or an operator and the persister) can never lose each other's change: the loser
re-reads and retries. Items are validated with ``MarketConfig``/``GlobalConfig`` before anything
is written; a rejected change writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from common.config import EventLimits, GlobalConfig, MarketConfig
from common.dynamo.codec import (
    config_attrs,
    from_attrs,
    global_config_item,
    market_config_item,
    to_attr,
    to_attrs,
)
from common.dynamo.tables import (
    STATE_EVENT_CONFIG,
    STATE_GLOBAL_CONFIG,
    TableNames,
    error_code,
)
from common.errors import ConfigError, StorageError
from common.numbers import NumberError, parse_fixed

TICKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
WRITE_ATTEMPTS = 5
GLOBAL_LABEL = "(global)"  # how the global item is named where tickers are listed
C = TypeVar("C")


def check_ticker(ticker: object) -> str:
    if not isinstance(ticker, str) or not TICKER.match(ticker):
        raise ConfigError(
            f"market_id must be a market ticker (letters, digits, '.', '_', '-'; up to 128), "
            f"was {ticker!r}"
        )
    return ticker


def parse_version(value: object) -> int:
    """The stored version: missing means 0; otherwise a whole number >= 0."""
    if value is None:
        return 0
    version: int | None = None
    if isinstance(value, int | str | Decimal) and not isinstance(value, bool):
        try:
            version = parse_fixed(value, 0, "version")
        except NumberError:
            version = None
    if version is None or not 0 <= version <= 2**53:
        raise ConfigError(f"version must be a whole number >= 0, was {value!r}")
    return version


def validate_market_item(item: Mapping[str, Any]) -> tuple[MarketConfig, int]:
    """A stored market item -> its config and version, or ``ConfigError`` with the reason."""
    ticker = check_ticker(item.get("market_id"))
    version = parse_version(item.get("version"))
    return MarketConfig.from_item(item, ticker), version


def validate_event_item(item: Mapping[str, Any]) -> tuple[EventLimits, int]:
    version = parse_version(item.get("version"))
    return EventLimits.from_item(item), version


def validate_global_item(item: Mapping[str, Any]) -> tuple[GlobalConfig, int]:
    version = parse_version(item.get("version"))
    return GlobalConfig.from_item(item), version


@dataclass(frozen=True, slots=True)
class ConfigWrite:
    """What a successful write stored."""

    version: int
    created: bool
    dropped: tuple[str, ...]  # unknown attributes the stored item had and the write removed


class ConfigStore:
    """Reads and conditional writes of ``{prefix}market_config`` and ``state[global_config]``."""

    def __init__(self, client: Any, names: TableNames) -> None:
        self.client = client
        self.names = names

    # ---- reads (strongly consistent: the mirror must never step back) ----------------------

    def scan_markets(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self.names.market_config, "ConsistentRead": True}
        while True:
            page = self.client.scan(**request)
            items.extend(from_attrs(raw) for raw in page.get("Items", ()))
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_market(self, ticker: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.names.market_config,
            Key={"market_id": {"S": ticker}},
            ConsistentRead=True,
        )
        return from_attrs(response["Item"]) if "Item" in response else None

    def get_global(self) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.names.state,
            Key={"key": {"S": STATE_GLOBAL_CONFIG}},
            ConsistentRead=True,
        )
        return from_attrs(response["Item"]) if "Item" in response else None

    def get_events(self) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.names.state,
            Key={"key": {"S": STATE_EVENT_CONFIG}},
            ConsistentRead=True,
        )
        return from_attrs(response["Item"]) if "Item" in response else None

    # ---- writes ------------------------------------------------------------------------------

    def update_event(
        self, event: str, changes: Mapping[str, Any], now_iso: str
    ) -> tuple[EventLimits, ConfigWrite]:
        """Change one event's overrides (``max_event_loss``) in the one event config item."""
        check_ticker(event)

        def build(current: dict[str, Any] | None) -> tuple[dict[str, Any], EventLimits]:
            base = EventLimits.from_item(current or {})
            limits = base.with_event(event, changes, now_iso)
            item = {"key": STATE_EVENT_CONFIG, **config_attrs(limits.to_item(), 0)}
            item["version"] = _next_version(current)
            return item, limits

        current_keys = set((self.get_events() or {}).keys())
        return self._write(
            self.names.state,
            {"key": STATE_EVENT_CONFIG},
            "key",
            self.get_events,
            build,
            current_keys | {"key", "version"},
        )

    def update_market(
        self, ticker: str, changes: Mapping[str, Any], now_iso: str, *, create: bool = True
    ) -> tuple[MarketConfig, ConfigWrite]:
        """Apply ``changes`` (field -> human value) to the market's item, creating it with the
        defaults (disabled unless ``enabled`` is among the changes) when missing and ``create``."""
        check_ticker(ticker)
        fields = set(MarketConfig.FIELDS)

        def build(current: dict[str, Any] | None) -> tuple[dict[str, Any], MarketConfig]:
            if current is None and not create:
                raise ConfigError(f"market {ticker} has no config")
            base = {k: v for k, v in (current or {}).items() if k in fields}
            config = MarketConfig.from_item({**base, **changes, "updated_at": now_iso}, ticker)
            version = _next_version(current)
            return market_config_item(config, version), config

        return self._write(
            self.names.market_config,
            {"market_id": ticker},
            "market_id",
            lambda: self.get_market(ticker),
            build,
            fields | {"market_id", "version"},
        )

    def update_global(
        self, changes: Mapping[str, Any], now_iso: str
    ) -> tuple[GlobalConfig, ConfigWrite]:
        fields = set(GlobalConfig.FIELDS)

        def build(current: dict[str, Any] | None) -> tuple[dict[str, Any], GlobalConfig]:
            base = {k: v for k, v in (current or {}).items() if k in fields}
            config = GlobalConfig.from_item({**base, **changes, "updated_at": now_iso})
            version = _next_version(current)
            return global_config_item(config, version, STATE_GLOBAL_CONFIG), config

        return self._write(
            self.names.state,
            {"key": STATE_GLOBAL_CONFIG},
            "key",
            self.get_global,
            build,
            fields | {"key", "version"},
        )

    def _write(
        self,
        table: str,
        key: dict[str, str],
        key_name: str,
        read: Callable[[], dict[str, Any] | None],
        build: Callable[[dict[str, Any] | None], tuple[dict[str, Any], C]],
        known: set[str],
    ) -> tuple[C, ConfigWrite]:
        for _ in range(WRITE_ATTEMPTS):
            current = read()
            item, config = build(current)
            condition, names, values = _version_condition(current, key_name)
            try:
                self.client.put_item(
                    TableName=table,
                    Item=to_attrs(item),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    **({"ExpressionAttributeValues": values} if values else {}),
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue  # someone else wrote meanwhile: read again and re-apply
                raise
            dropped = tuple(sorted(set(current or {}) - known))
            return config, ConfigWrite(int(item["version"]), current is None, dropped)
        raise StorageError(f"{table} {key} kept changing under us; nothing written, try again")

    def bump_market_version(self, ticker: str, stored_version: object, new_version: int) -> bool:
        """Raise the version of an item changed without a version bump (e.g. in the console)."""
        return self._bump(
            self.names.market_config, {"market_id": {"S": ticker}}, stored_version, new_version
        )

    def bump_global_version(self, stored_version: object, new_version: int) -> bool:
        return self._bump(
            self.names.state, {"key": {"S": STATE_GLOBAL_CONFIG}}, stored_version, new_version
        )

    def _bump(self, table: str, key: dict[str, Any], stored: object, new_version: int) -> bool:
        values: dict[str, Any] = {":new": {"N": str(new_version)}}
        names = {"#v": "version"}
        if stored is None:
            # no version, or one stored as an explicit null (a console edit can do that)
            # the key's name through an alias: "key" (dora_state's) is a DynamoDB reserved word
            names["#k"] = next(iter(key))
            condition = (
                "attribute_exists(#k) AND (attribute_not_exists(#v) OR attribute_type(#v, :null))"
            )
            values[":null"] = {"S": "NULL"}
        else:
            condition = "#v = :old"
            values[":old"] = to_attr(stored)
        try:
            self.client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #v = :new",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def delete_market(self, ticker: str) -> None:
        self.client.delete_item(
            TableName=self.names.market_config, Key={"market_id": {"S": ticker}}
        )


def _next_version(current: Mapping[str, Any] | None) -> int:
    if current is None:
        return 1
    try:
        return parse_version(current.get("version")) + 1
    except ConfigError:
        return 1


def _version_condition(
    current: Mapping[str, Any] | None, key_name: str
) -> tuple[str, dict[str, str], dict[str, Any]]:
    if current is None:
        return "attribute_not_exists(#k)", {"#k": key_name}, {}
    if current.get("version") is None:
        names = {"#k": key_name, "#v": "version"}
        return "attribute_exists(#k) AND attribute_not_exists(#v)", names, {}
    return "#v = :old", {"#v": "version"}, {":old": to_attr(current["version"])}
