"""Stream events -> trade log and decision log rows (pure; docs/persistence.md shows the rows).

Keys are deterministic functions of the event, so a replayed event (after a crash, a reclaim or a
producer retry) lands on the same row and never adds one:

- trade log, order event: ``sk = {ISO ms}#{order_id or client_order_id}#{event}:{price}:{count}:{filled}``
- trade log, fill: ``sk = {ISO ms}#{order_id}#fill:{fill_id}``
- trade log, settlement: ``sk = {ISO ms}#{ticker}#settlement``
- trade log, position set from the exchange: ``sk = {ISO ms}#{ticker}#position_set:{version}``
- decision log: ``timestamp = {ISO ms}#{ticker}#{stream id}`` (two decisions of one millisecond
  are two rows)

Top-level numbers are in human units, exact Decimals (prices and money in dollars, sizes in
contracts); the nested parts of a decision (book, targets, actions, denials) are kept as the event
carried them, integers in dora's units. A nested part DynamoDB cannot hold exactly (a float, a
number of more than 38 digits) is stored as its JSON text instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from common.clock import iso_from_ms, utc_date
from common.dynamo.codec import (
    FloatRefusedError,
    count_contracts,
    money_dollars,
    price_dollars,
    to_attr,
)
from common.dynamo.tables import TTL_ATTRIBUTE
from common.numbers import MAX_COUNT, MAX_MONEY, ONE_DOLLAR

BOOK_SIDE_TO_TRADE_SIDE = {"bid": "buy", "ask": "sell"}
# the trade log's ``status`` uses the original plan's words (placed/filled/cancelled, DESIGN.md §4
# keeps its tables); the ``sk`` keeps the event's own name so a replayed row lands on the same key
EVENT_TO_TRADE_STATUS = {"canceled": "cancelled"}
MIN_TS_MS = 946_684_800_000  # 2000-01-01: anything earlier is a corrupt timestamp
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01


class RowError(ValueError):
    """An event that cannot become a row (malformed payload)."""


def _int(payload: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(f"{name} must be an integer, was {value!r}")
    if not low <= value <= high:
        raise RowError(f"{name} must be between {low} and {high}, was {value!r}")
    return value


def _text(payload: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise RowError(f"{name} must be a non-empty string, was {value!r}")
        return ""
    if not isinstance(value, str) or len(value) > 200:
        raise RowError(f"{name} must be a string of up to 200 characters, was {value!r}")
    return value


def _side(payload: Mapping[str, Any]) -> str:
    side = payload.get("side")
    if side not in BOOK_SIDE_TO_TRADE_SIDE:
        raise RowError(f"side must be bid or ask, was {side!r}")
    return str(side)


def _ts(payload: Mapping[str, Any]) -> int:
    return _int(payload, "ts_ms", MIN_TS_MS, MAX_TS_MS)


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None and v != ""}


def order_row(payload: Mapping[str, Any], stream_id: str = "") -> dict[str, Any]:
    """An ``order`` event (placed, amended, decreased, canceled, rejected, unknown, filled)."""
    ts_ms = _ts(payload)
    event = _text(payload, "event")
    client_order_id = _text(payload, "client_order_id")
    order_id = _text(payload, "order_id", required=False)
    side = _side(payload)
    price = _int(payload, "price", 0, ONE_DOLLAR)
    count = _int(payload, "count", 0, MAX_COUNT)
    filled = _int(payload, "filled", 0, MAX_COUNT) if "filled" in payload else 0
    remaining = _int(payload, "remaining", 0, MAX_COUNT) if "remaining" in payload else None
    # a cancel's answer: what it took off the book (the rest of ``filled`` executed before it)
    cancelled = _int(payload, "cancelled", 0, MAX_COUNT) if "cancelled" in payload else None
    iso = iso_from_ms(ts_ms)
    return _compact(
        {
            "date": utc_date(ts_ms),
            "sk": f"{iso}#{order_id or client_order_id}#{event}:{price}:{count}:{filled}",
            "timestamp": iso,
            "ts_ms": ts_ms,
            "market_id": _text(payload, "ticker"),
            "order_id": order_id,
            "client_order_id": client_order_id,
            "side": BOOK_SIDE_TO_TRADE_SIDE[side],
            "book_side": side,
            "price": price_dollars(price),
            "size": count_contracts(count),
            "filled_size": count_contracts(filled),
            "remaining_size": None if remaining is None else count_contracts(remaining),
            "cancelled_size": None if cancelled is None else count_contracts(cancelled),
            "status": EVENT_TO_TRADE_STATUS.get(event, event),
            "order_status": _text(payload, "status", required=False),
            "reason": _text(payload, "reason", required=False)[:200],
            "stream_id": stream_id,
        }
    )


def fill_row(payload: Mapping[str, Any], stream_id: str = "") -> dict[str, Any]:
    """A ``fill`` event: status ``filled`` with fill_price, fill_size and pnl_realized (the
    market's realized PnL after this fill, gross of fees)."""
    ts_ms = _ts(payload)
    fill_id = _text(payload, "fill_id")
    order_id = _text(payload, "order_id")
    side = _side(payload)
    price = _int(payload, "price", 0, ONE_DOLLAR)
    count = _int(payload, "count", 0, MAX_COUNT)
    fee = _int(payload, "fee", -MAX_MONEY, MAX_MONEY) if "fee" in payload else None
    position_after = (
        _int(payload, "position_after", -MAX_COUNT, MAX_COUNT)
        if "position_after" in payload
        else None
    )
    realized = (
        _int(payload, "realized_pnl_after", -MAX_MONEY, MAX_MONEY)
        if "realized_pnl_after" in payload
        else None
    )
    is_taker = payload.get("is_taker")
    iso = iso_from_ms(ts_ms)
    return _compact(
        {
            "date": utc_date(ts_ms),
            "sk": f"{iso}#{order_id}#fill:{fill_id}",
            "timestamp": iso,
            "ts_ms": ts_ms,
            "market_id": _text(payload, "ticker"),
            "order_id": order_id,
            "client_order_id": _text(payload, "client_order_id", required=False),
            "fill_id": fill_id,
            "side": BOOK_SIDE_TO_TRADE_SIDE[side],
            "book_side": side,
            "price": price_dollars(price),
            "size": count_contracts(count),
            "fill_price": price_dollars(price),
            "fill_size": count_contracts(count),
            "fee": None if fee is None else money_dollars(fee),
            "is_taker": is_taker if isinstance(is_taker, bool) else None,
            "position_after": None if position_after is None else count_contracts(position_after),
            "pnl_realized": None if realized is None else money_dollars(realized),
            "status": "filled",
            "stream_id": stream_id,
        }
    )


def settlement_row(payload: Mapping[str, Any], stream_id: str = "") -> dict[str, Any]:
    """A ``settlement`` event: the market paid out and the position closed at the result, with
    the realized PnL of the settlement itself (``pnl_realized``) and the market's total after."""
    ts_ms = _ts(payload)
    ticker = _text(payload, "ticker")
    result = _text(payload, "result")
    before = _int(payload, "position_before", -MAX_COUNT, MAX_COUNT)
    realized = _int(payload, "realized_pnl", -MAX_MONEY, MAX_MONEY)
    after = _int(payload, "realized_pnl_after", -MAX_MONEY, MAX_MONEY)
    fee = _int(payload, "fee", -MAX_MONEY, MAX_MONEY) if "fee" in payload else None
    iso = iso_from_ms(ts_ms)
    return _compact(
        {
            "date": utc_date(ts_ms),
            "sk": f"{iso}#{ticker}#settlement",
            "timestamp": iso,
            "ts_ms": ts_ms,
            "market_id": ticker,
            "status": "settled",
            "result": result,
            "settlement_id": _text(payload, "settlement_id", required=False),
            "size": count_contracts(abs(before)),
            "position_before": count_contracts(before),
            "position_after": count_contracts(0),
            "fee": None if fee is None else money_dollars(fee),
            "pnl_realized": money_dollars(realized),
            "realized_pnl_after": money_dollars(after),
            "stream_id": stream_id,
        }
    )


def position_row(payload: Mapping[str, Any], stream_id: str = "") -> dict[str, Any]:
    """A ``position`` event: dora's position was set to the exchange's (the exchange wins)."""
    ts_ms = _ts(payload)
    ticker = _text(payload, "ticker")
    record = payload.get("record")
    if not isinstance(record, dict):
        raise RowError(f"record must be an object, was {record!r}")
    version = _int(record, "version", 0, 2**62)
    before = _int(payload, "position_before", -MAX_COUNT, MAX_COUNT)
    after = _int(record, "position", -MAX_COUNT, MAX_COUNT)
    iso = iso_from_ms(ts_ms)
    return _compact(
        {
            "date": utc_date(ts_ms),
            "sk": f"{iso}#{ticker}#position_set:{version}",
            "timestamp": iso,
            "ts_ms": ts_ms,
            "market_id": ticker,
            "status": "position_set",
            "position_before": count_contracts(before),
            "position_after": count_contracts(after),
            "reason": _text(payload, "reason", required=False)[:200],
            "stream_id": stream_id,
        }
    )


def _nested(value: Any) -> Any:
    """A nested part of a decision as a DynamoDB value, or its JSON text if it holds a float."""
    try:
        to_attr(value)  # no float, and numbers DynamoDB can hold (38 digits)
    except FloatRefusedError:
        return json.dumps(value, default=str, separators=(",", ":"))
    return value


def _kind(action: Any) -> str:
    return str(action.get("kind") or action.get("action") or "") if isinstance(action, dict) else ""


def decision_row(
    payload: Mapping[str, Any], stream_id: str = "", *, ttl_days: int = 14
) -> dict[str, Any]:
    """A ``decision`` event, expiring ``ttl_days`` after it was made (``expires_at``, epoch s)."""
    ts_ms = _ts(payload)
    ticker = _text(payload, "ticker")
    actions = payload.get("actions") or []
    denials = payload.get("denials") or []
    if not isinstance(actions, list) or not isinstance(denials, list):
        raise RowError("actions and denials must be lists")
    position = payload.get("position")
    iso = iso_from_ms(ts_ms)
    # the stream entry's id makes the key unique (decisions of one millisecond never overwrite
    # each other) and the same for a replay of the entry (never a second row)
    unique = f"#{stream_id}" if stream_id else ""
    return _compact(
        {
            "date": utc_date(ts_ms),
            "timestamp": f"{iso}#{ticker}{unique}",
            "ts_ms": ts_ms,
            "market_id": ticker,
            "order_book_snapshot": _nested(payload.get("book") or {}),
            "inventory": (
                count_contracts(position)
                if isinstance(position, int) and not isinstance(position, bool)
                else None
            ),
            "target_quotes": _nested(payload.get("targets") or {}),
            "orders_placed": _nested([a for a in actions if _kind(a) == "place"]),
            "orders_cancelled": _nested([a for a in actions if _kind(a) == "cancel"]),
            "actions": _nested(actions),
            "denials": _nested(denials),
            TTL_ATTRIBUTE: ts_ms // 1000 + ttl_days * 86_400,
            "stream_id": stream_id,
        }
    )
