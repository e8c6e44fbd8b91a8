"""Reading history back from the persister's tables (the dashboard's charts; read-only).

- ``fills_of_day``: one UTC day's fills from ``{prefix}trade_log`` (``date`` partition, rows in
  time order), each as (ts_ms, ticker, position after, realized PnL after) in dora's units;
- ``daily_pnl_snapshots``: the last snapshot of each of the past days from ``{prefix}state``.

Both are blocking boto3 calls (run them in a thread from asyncio) and bounded: a day of a busy
account holds many rows, and a chart needs a few thousand points at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from common.dynamo.codec import count_units, from_attrs, money_units, whole_number
from common.dynamo.state_store import StateStore
from common.dynamo.tables import TableNames
from common.errors import StorageError


@dataclass(frozen=True, slots=True)
class StoredFill:
    ts_ms: int
    ticker: str
    position_after: int
    realized_pnl_after: int  # gross of fees, as the position holds it


def fills_of_day(
    client: Any, names: TableNames, day: str, *, max_rows: int = 50_000
) -> list[StoredFill]:
    """The fills of UTC ``day`` (YYYY-MM-DD), oldest first; at most ``max_rows`` rows are read
    (order events included), so a very busy day gives its first part."""
    request: dict[str, Any] = {
        "TableName": names.trade_log,
        "KeyConditionExpression": "#d = :d",
        # a fill row carries ``fill_id``; an order event logged ``filled`` (a cancel that found the
        # order executed) does not, and has no position to chart
        "FilterExpression": "#s = :filled AND attribute_exists(#f)",
        "ProjectionExpression": "#ts, #m, #p, #r",
        "ExpressionAttributeNames": {
            "#d": "date",
            "#s": "status",
            "#ts": "ts_ms",
            "#m": "market_id",
            "#p": "position_after",
            "#r": "pnl_realized",
            "#f": "fill_id",
        },
        "ExpressionAttributeValues": {":d": {"S": day}, ":filled": {"S": "filled"}},
    }
    fills: list[StoredFill] = []
    read = 0
    while read < max_rows:
        page = client.query(**request, Limit=min(1_000, max_rows - read))
        read += int(page.get("ScannedCount", 0))
        for raw in page.get("Items", ()):
            item = from_attrs(raw)
            try:
                fills.append(
                    StoredFill(
                        ts_ms=whole_number(item.get("ts_ms"), "ts_ms"),
                        ticker=str(item["market_id"]),
                        position_after=count_units(item.get("position_after", 0)),
                        realized_pnl_after=money_units(item.get("pnl_realized", 0)),
                    )
                )
            except (KeyError, StorageError):
                continue  # a row without what a chart needs: leave it out
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return fills


def daily_pnl_snapshots(state: StateStore, today: str, days: int) -> list[dict[str, Any]]:
    """The stored end-of-day PnL of each of the ``days`` days before ``today``, oldest first;
    days without a snapshot are left out. Money in dora's units."""
    first = date.fromisoformat(today)
    out = []
    for back in range(days, 0, -1):
        day = (first - timedelta(days=back)).isoformat()
        item = state.get_pnl_snapshot(day)
        if item is None:
            continue
        try:
            out.append(
                {
                    "day": day,
                    "daily_pnl": money_units(item.get("daily_pnl", 0)),
                    "realized_pnl": money_units(item.get("realized_pnl", 0)),
                    "fees": money_units(item.get("fees", 0)),
                    "halted": bool(item.get("trading_halted", False)),
                }
            )
        except StorageError:
            continue
    return out
