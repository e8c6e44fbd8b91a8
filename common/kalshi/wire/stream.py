"""WebSocket messages (API.md §6): book snapshots and deltas, fills and order updates."""

from __future__ import annotations

from common.book import Level
from common.domain import Fill, Order
from common.errors import WireError
from common.kalshi.wire import fields
from common.kalshi.wire.markets import parse_levels
from common.kalshi.wire.orders import order_status
from common.numbers import NumberError, fast_count, fast_price


def parse_ws_snapshot(msg: object) -> tuple[str, list[Level], list[Level]]:
    """``orderbook_snapshot.msg`` -> (ticker, YES bids, NO bids at NO prices)."""
    data = fields.obj(msg, "orderbook_snapshot")
    ticker = fields.string(data, "market_ticker", "orderbook_snapshot")
    what = f"orderbook_snapshot {ticker}"
    yes = parse_levels(data.get("yes_dollars_fp"), f"{what}.yes_dollars_fp")
    no = parse_levels(data.get("no_dollars_fp"), f"{what}.no_dollars_fp")
    return ticker, yes, no


def parse_ws_delta(msg: object) -> tuple[str, bool, int, int, int]:
    """``orderbook_delta.msg`` -> (ticker, is_yes, price, signed delta, ts_ms or 0).

    The NO side is in NO prices: dora subscribes with ``use_yes_price`` pinned to false."""
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


def parse_ws_fill(value: object) -> Fill:
    """A WebSocket ``fill`` message body: the fastest truth about an execution."""
    data = fields.obj(value, "ws fill")
    fill_id = fields.string(data, "trade_id", "ws fill")
    what = f"ws fill {fill_id}"
    post = data.get("post_position_fp")
    return Fill(
        fill_id=fill_id,
        order_id=fields.string(data, "order_id", what),
        ticker=fields.string(data, "market_ticker", what),
        side=fields.book_side(data, what),
        price=fields.price(data, "yes_price_dollars", what),
        count=fields.count(data, "count_fp", what),
        fee=fields.money(data, "fee_cost", what, default=0),
        is_taker=fields.boolean(data, "is_taker", what, default=False),
        ts_ms=fields.integer(data, "ts_ms", what, default=0)
        or fields.integer(data, "ts", what, default=0) * 1000,
        client_order_id=fields.opt_string(data, "client_order_id", what),
        post_position=None
        if post is None
        else fields.count(data, "post_position_fp", what, signed=True),
    )


def parse_user_order(value: object) -> Order:
    """A WebSocket ``user_order`` message body."""
    data = fields.obj(value, "user_order")
    order_id = fields.string(data, "order_id", "user_order")
    what = f"user_order {order_id}"
    try:
        filled = fast_count(fields.required(data, "fill_count_fp", what), f"{what}.fill_count_fp")
        remaining = fast_count(
            fields.required(data, "remaining_count_fp", what), f"{what}.remaining_count_fp"
        )
        yes_price = fast_price(
            fields.required(data, "yes_price_dollars", what), f"{what}.yes_price_dollars"
        )
    except NumberError as exc:
        raise WireError(str(exc)) from None
    initial = fields.opt_count(data, "initial_count_fp", what) or 0
    created_ms = fields.integer(data, "created_ts_ms", what, default=0)
    return Order(
        ticker=fields.string(data, "ticker", what),
        side=fields.book_side(data, what),
        price=yes_price,
        count=max(initial, filled + remaining),
        client_order_id=fields.opt_string(data, "client_order_id", what) or "",
        order_id=order_id,
        status=order_status(data, what),
        filled=filled,
        remaining=remaining,
        created_ms=created_ms,
        updated_ms=fields.integer(data, "last_updated_ts_ms", what, default=created_ms),
        order_group_id=fields.opt_string(data, "order_group_id", what),
    )
