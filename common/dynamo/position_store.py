"""Positions in ``{prefix}state``: one item per market, ``positions#{ticker}`` (DESIGN.md §4).

| key | attributes |
|---|---|
| ``positions#{ticker}`` | ``ticker``, ``position``, ``cost``, ``realized_pnl``, ``fees``, ``last_fill_ms``, ``version``, ``recent_fills`` (fill id -> exchange ms), the plan's ``yes_qty``/``no_qty``/``avg_cost_yes``/``avg_cost_no``; a settled market also ``settled_ms`` and ``settlement_id`` |
| ``positions#_closed`` | the realized PnL and fees of the markets that settled and left the live set |
| ``fills_cursor`` | ``backfilled_to_ms``, ``settled_to_ms``: how far the REST backfill had covered |
| ``positions`` | the original plan's single item holding every market: read once, migrated, deleted |

Each item holds one market's ``PositionRecord`` (common/position_record.py) and is replaced only
by a newer version (a conditional put), so a replayed or reclaimed event never steps back. Counts
are stored in contracts and money in dollars, exact Decimals (codec.py); a market's size does not
grow with the number of markets, so thousands never meet DynamoDB's 400 KB item limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from common.clock import iso_from_ms
from common.domain import Position
from common.dynamo.codec import (
    count_contracts,
    count_units,
    from_attrs,
    money_dollars,
    money_units,
    price_dollars,
    to_attrs,
    whole_number,
)
from common.dynamo.tables import STATE_POSITIONS, TableNames, error_code
from common.errors import StorageError
from common.numbers import ONE_DOLLAR
from common.position_record import PositionRecord

POSITION_KEY_PREFIX = "positions#"
FILLS_CURSOR = "fills_cursor"


def position_key(ticker: str) -> str:
    return f"{POSITION_KEY_PREFIX}{ticker}"


def position_attrs(position: Position) -> dict[str, Any]:
    """A position in human units, with the plan's derived fields for people (averages rounded
    down; a restore reads only position, cost, realized_pnl, fees and last_fill_ms)."""
    yes_qty = max(position.position, 0)
    no_qty = max(-position.position, 0)
    average = position.average_price  # YES price units, rounded down; None when flat
    return {
        "position": count_contracts(position.position),
        "cost": money_dollars(position.cost),
        "realized_pnl": money_dollars(position.realized_pnl),
        "fees": money_dollars(position.fees),
        "last_fill_ms": position.last_fill_ms,
        "yes_qty": count_contracts(yes_qty),
        "no_qty": count_contracts(no_qty),
        "avg_cost_yes": price_dollars(average) if yes_qty and average is not None else None,
        "avg_cost_no": (
            price_dollars(ONE_DOLLAR - average) if no_qty and average is not None else None
        ),
    }


def position_from_attrs(ticker: str, attrs: Mapping[str, Any]) -> Position:
    return Position(
        ticker=ticker,
        position=count_units(attrs.get("position", 0), f"{ticker}.position"),
        cost=money_units(attrs.get("cost", 0), f"{ticker}.cost"),
        realized_pnl=money_units(attrs.get("realized_pnl", 0), f"{ticker}.realized_pnl"),
        fees=money_units(attrs.get("fees", 0), f"{ticker}.fees"),
        last_fill_ms=whole_number(attrs.get("last_fill_ms", 0), f"{ticker}.last_fill_ms"),
    )


def record_item(record: PositionRecord, now_ms: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key": position_key(record.ticker),
        "ticker": record.ticker,
        **position_attrs(record.position),
        "version": record.version,
        "recent_fills": dict(record.recent_fills),
        "updated_ms": now_ms,
        "updated_at": iso_from_ms(now_ms),
    }
    if record.settled_ms:
        item["settled_ms"] = record.settled_ms
        item["settlement_id"] = record.settlement_id
    return {k: v for k, v in item.items() if v is not None}


def record_from_item(item: Mapping[str, Any]) -> PositionRecord:
    key = str(item.get("key", ""))
    ticker = str(item.get("ticker") or key[len(POSITION_KEY_PREFIX) :])
    recent = item.get("recent_fills") or {}
    if not isinstance(recent, dict):
        raise StorageError(f"{key}.recent_fills must be a map, was {recent!r}")
    fills = sorted(
        ((str(i), whole_number(ms, f"{key}.recent_fills")) for i, ms in recent.items()),
        key=lambda f: (f[1], f[0]),
    )
    return PositionRecord(
        position_from_attrs(ticker, item),
        version=whole_number(item.get("version", 0), f"{key}.version"),
        recent_fills=tuple(fills),
        settled_ms=whole_number(item.get("settled_ms", 0), f"{key}.settled_ms"),
        settlement_id=str(item.get("settlement_id") or ""),
    )


class PositionStore:
    def __init__(self, client: Any, names: TableNames) -> None:
        self.client = client
        self.names = names

    def put(self, record: PositionRecord, now_ms: int) -> bool:
        """Store ``record`` unless a newer version is stored (False then). Raises
        ``ClientError`` (a ``ValidationException`` for an item DynamoDB refuses) or
        ``StorageError`` (an item that does not serialize)."""
        return self._put_newer(record_item(record, now_ms), "version", record.version)

    def delete_tombstone(self, record: PositionRecord) -> bool:
        """Remove a settled market's item, unless it changed since ``record``."""
        try:
            self.client.delete_item(
                TableName=self.names.state,
                Key={"key": {"S": position_key(record.ticker)}},
                ConditionExpression="#v = :v AND attribute_exists(settled_ms)",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"N": str(record.version)}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_all(self) -> list[PositionRecord]:
        """Every market's record (live and settled), read consistently."""
        records: list[PositionRecord] = []
        paginator = self.client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.names.state,
            ConsistentRead=True,
            FilterExpression="begins_with(#k, :p)",
            ExpressionAttributeNames={"#k": "key"},
            ExpressionAttributeValues={":p": {"S": POSITION_KEY_PREFIX}},
        )
        for page in pages:
            records.extend(record_from_item(from_attrs(i)) for i in page.get("Items", ()))
        return records

    def put_cursor(self, backfilled_to_ms: int, settled_to_ms: int, now_ms: int) -> bool:
        """Store how far the backfill had covered, unless a later cursor is stored."""
        item = {
            "key": FILLS_CURSOR,
            "backfilled_to_ms": backfilled_to_ms,
            "settled_to_ms": settled_to_ms,
            "updated_ms": now_ms,
            "updated_at": iso_from_ms(now_ms),
        }
        return self._put_newer(item, "backfilled_to_ms", backfilled_to_ms)

    def get_cursor(self) -> tuple[int, int] | None:
        item = self._get(FILLS_CURSOR)
        if item is None:
            return None
        return (
            whole_number(item.get("backfilled_to_ms", 0), "fills_cursor.backfilled_to_ms"),
            whole_number(item.get("settled_to_ms", 0), "fills_cursor.settled_to_ms"),
        )

    # ---- the original plan's single item --------------------------------------------------

    def legacy_positions(self) -> dict[str, Position] | None:
        """The single ``positions`` item's markets, or None when there is no such item."""
        item = self._get(STATE_POSITIONS)
        if item is None:
            return None
        stored = item.get("positions") or {}
        if not isinstance(stored, dict):
            raise StorageError(f"state[positions].positions must be a map, was {stored!r}")
        return {t: position_from_attrs(t, attrs) for t, attrs in stored.items()}

    def migrate_legacy(self, now_ms: int) -> int:
        """Move the single ``positions`` item to one item per market (a market that already has
        its own item keeps it), then delete it; returns how many markets moved. Safe to run
        again after a crash half-way."""
        legacy = self.legacy_positions()
        if legacy is None:
            return 0
        moved = 0
        for position in legacy.values():
            if self._put_newer(record_item(PositionRecord(position), now_ms), "version", -1):
                moved += 1
        self.client.delete_item(TableName=self.names.state, Key={"key": {"S": STATE_POSITIONS}})
        return moved

    # ---- plumbing -------------------------------------------------------------------------

    def _get(self, key: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.names.state, Key={"key": {"S": key}}, ConsistentRead=True
        )
        return from_attrs(response["Item"]) if "Item" in response else None

    def _put_newer(self, item: Mapping[str, Any], field: str, value: int) -> bool:
        """Put ``item`` unless the stored one has ``field`` >= ``value`` (-1: only if absent)."""
        condition = "attribute_not_exists(#k)"
        names = {"#k": "key"}
        values: dict[str, Any] = {}
        if value >= 0:
            condition += " OR #f < :v"
            names["#f"] = field
            values[":v"] = {"N": str(value)}
        try:
            self.client.put_item(
                TableName=self.names.state,
                Item=to_attrs(item),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
