"""WebSocket messages (API.md §6): book snapshots and deltas, fills and order updates."""

from __future__ import annotations

from typing import Any

import msgspec

from common.book import Level
from common.domain import Fill, Order
from common.errors import WireError
from common.kalshi.wire import fields
from common.kalshi.wire.fields import Fixed, NonEmpty
from common.kalshi.wire.markets import parse_levels
from common.numbers import NumberError, fast_count, fast_price

# ---- the shapes dora reads (Kalshi's field names; unknown fields are ignored) -------------


class _Snapshot(msgspec.Struct, frozen=True):
    market_ticker: NonEmpty
    yes_dollars_fp: Any = None  # [[price, size], ...]: parse_levels
    no_dollars_fp: Any = None


class _WsFill(msgspec.Struct, frozen=True):
    trade_id: NonEmpty
    order_id: NonEmpty
    market_ticker: NonEmpty
    yes_price_dollars: Fixed
    count_fp: Fixed
    book_side: Any = None
    outcome_side: Any = None
    fee_cost: Fixed | None = None
    is_taker: bool | None = None
    ts_ms: int | None = None
    ts: int | None = None
    client_order_id: str | None = None
    post_position_fp: Fixed | None = None
    subaccount: int | None = None


class _UserOrder(msgspec.Struct, frozen=True):
    order_id: NonEmpty
    ticker: NonEmpty
    yes_price_dollars: Fixed
    fill_count_fp: Fixed
    remaining_count_fp: Fixed
    status: Any = None
    book_side: Any = None
    outcome_side: Any = None
    initial_count_fp: Fixed | None = None
    created_ts_ms: int | None = None
    last_updated_ts_ms: int | None = None
    client_order_id: str | None = None
    order_group_id: str | None = None
    subaccount_number: int | None = None


# ---- books ---------------------------------------------------------------------------------


def parse_ws_snapshot(msg: object) -> tuple[str, list[Level], list[Level]]:
    """``orderbook_snapshot.msg`` -> (ticker, YES bids, NO bids at NO prices)."""
    data = fields.convert(msg, _Snapshot, "orderbook_snapshot")
    what = f"orderbook_snapshot {data.market_ticker}"
    yes = parse_levels(data.yes_dollars_fp, f"{what}.yes_dollars_fp")
    no = parse_levels(data.no_dollars_fp, f"{what}.no_dollars_fp")
    return data.market_ticker, yes, no


def parse_ws_delta(msg: object) -> tuple[str, bool, int, int, int]:
    """``orderbook_delta.msg`` -> (ticker, is_yes, price, signed delta, ts_ms or 0).

    The NO side is in NO prices: dora subscribes with ``use_yes_price`` pinned to false.
    Checked by hand rather than through a struct: the hottest message there is, and measured
    faster this way on decoded JSON (docs/performance.md)."""
    if type(msg) is not dict:
        raise WireError(f"orderbook_delta must be a JSON object, was {fields.short(msg)}")
    ticker = msg.get("market_ticker")
    if type(ticker) is not str or not ticker:
        raise WireError(
            f"orderbook_delta.market_ticker must be a string, was {fields.short(ticker)}"
        )
    side = msg.get("side")
    if side == "yes":
        is_yes = True
    elif side == "no":
        is_yes = False
    else:
        raise WireError(
            f"orderbook_delta {ticker}.side must be yes or no, was {fields.short(side)}"
        )
    try:
        price = fast_price(msg.get("price_dollars"), f"orderbook_delta {ticker}.price_dollars")
        delta = fast_count(msg.get("delta_fp"), f"orderbook_delta {ticker}.delta_fp", signed=True)
    except NumberError as exc:
        raise WireError(str(exc)) from None
    ts_ms = msg.get("ts_ms")
    if type(ts_ms) is not int:
        ts_ms = 0
    return ticker, is_yes, price, delta, ts_ms


# ---- our fills and orders ------------------------------------------------------------------


def parse_ws_fill(value: object) -> Fill:
    """A WebSocket ``fill`` message body: the fastest truth about an execution."""
    data = fields.convert(value, _WsFill, "ws fill")
    what = f"ws fill {data.trade_id}"
    post = data.post_position_fp
    return Fill(
        fill_id=data.trade_id,
        order_id=data.order_id,
        ticker=data.market_ticker,
        side=fields.book_side(data.book_side, data.outcome_side, what),
        price=fields.price(data.yes_price_dollars, f"{what}.yes_price_dollars"),
        count=fields.count(data.count_fp, f"{what}.count_fp"),
        fee=fields.money(data.fee_cost, f"{what}.fee_cost", default=0),
        is_taker=bool(data.is_taker),
        ts_ms=data.ts_ms or (data.ts or 0) * 1000,
        client_order_id=data.client_order_id or None,
        post_position=None
        if post is None
        else fields.count(post, f"{what}.post_position_fp", signed=True),
        subaccount=data.subaccount,
    )


def parse_user_order(value: object) -> Order:
    """A WebSocket ``user_order`` message body."""
    data = fields.convert(value, _UserOrder, "user_order")
    what = f"user_order {data.order_id}"
    filled = fields.count(data.fill_count_fp, f"{what}.fill_count_fp")
    remaining = fields.count(data.remaining_count_fp, f"{what}.remaining_count_fp")
    initial = fields.opt_count(data.initial_count_fp, f"{what}.initial_count_fp") or 0
    created_ms = data.created_ts_ms or 0
    return Order(
        ticker=data.ticker,
        side=fields.book_side(data.book_side, data.outcome_side, what),
        price=fields.price(data.yes_price_dollars, f"{what}.yes_price_dollars"),
        count=max(initial, filled + remaining),
        client_order_id=data.client_order_id or "",
        order_id=data.order_id,
        status=fields.order_status(data.status, what),
        filled=filled,
        remaining=remaining,
        created_ms=created_ms,
        updated_ms=created_ms if data.last_updated_ts_ms is None else data.last_updated_ts_ms,
        exchange_ms=data.last_updated_ts_ms or 0,
        order_group_id=data.order_group_id or None,
        subaccount=data.subaccount_number,
    )
