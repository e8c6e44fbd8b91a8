"""Kalshi's JSON shapes <-> dora's domain types (API.md §3-§6). Pure functions, no IO.

Every ``parse_*`` takes a decoded JSON value and either returns integer-unit domain values or
raises ``WireError`` naming the field and the value that came; nothing else escapes (no KeyError,
no TypeError). Every ``build_*`` returns the JSON body of a V2 request. Kalshi's own field names
stay in this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from common.book import Level, YesBook
from common.domain import Fill, MarketMeta, MarketStatus, Order, OrderStatus, Side, TimeInForce
from common.errors import WireError
from common.fees import FeeType
from common.grid import GridError, PriceGrid
from common.numbers import (
    MAX_COUNT,
    ONE_DOLLAR,
    NumberError,
    format_count,
    format_price,
    parse_count,
    parse_money,
    parse_price,
)

SELF_TRADE_PREVENTION = ("taker_at_cross", "maker")
_ORDER_STATUS = {
    "resting": OrderStatus.RESTING,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "executed": OrderStatus.EXECUTED,
    "pending": OrderStatus.PENDING,
}
_CLIENT_ORDER_NAMESPACE = uuid.UUID("6f1d0c8e-3b5a-4c1e-9a57-64a2d0a7c0de")
_T = TypeVar("_T")


# ---- values of our own ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One V2 create. ``price`` in price units (YES price), ``count`` in centi-contracts."""

    ticker: str
    side: Side
    price: int
    count: int
    client_order_id: str
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = True
    expiration_ms: int | None = None
    order_group_id: str | None = None
    cancel_order_on_pause: bool = False
    self_trade_prevention_type: str = "taker_at_cross"
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What a market maker needs from Kalshi's Market object."""

    ticker: str
    event_ticker: str
    status: str
    open_ms: int
    close_ms: int
    grid: PriceGrid
    price_level_structure: str = ""
    exchange_index: int = 0
    can_close_early: bool = False
    result: str = ""
    market_type: str = "binary"

    def to_meta(
        self, fee_type: FeeType = FeeType.QUADRATIC, fee_multiplier_pct: int = 100, now_ms: int = 0
    ) -> MarketMeta:
        return MarketMeta(
            ticker=self.ticker,
            status=MarketStatus.parse(self.status),
            close_ms=self.close_ms,
            grid=self.grid,
            fee_type=fee_type,
            fee_multiplier_pct=fee_multiplier_pct,
            updated_ms=now_ms,
        )


@dataclass(frozen=True, slots=True)
class FeeInfo:
    """Fee type and multiplier (integer hundredths) of a series, or an event's override."""

    fee_type: FeeType | None
    fee_multiplier_pct: int | None


@dataclass(frozen=True, slots=True)
class ExchangePosition:
    """One market position as the exchange reports it (money in micro-dollars)."""

    ticker: str
    position: int  # signed centi-contracts: + YES, - NO
    total_traded: int
    exposure: int
    realized_pnl: int
    fees: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class Balance:
    """Available cash and portfolio value in micro-dollars."""

    balance: int
    portfolio_value: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class ExchangeStatus:
    exchange_active: bool
    trading_active: bool
    resume_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CancelResult:
    """The answer to one cancel: ``reduced_by`` is the resting size removed (0: already gone)."""

    order_id: str
    client_order_id: str | None
    reduced_by: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class OrderGroup:
    order_group_id: str
    contracts_limit: int | None
    is_auto_cancel_enabled: bool
    order_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ErrorBody:
    code: str
    message: str
    details: str


def make_client_order_id(namespace: str, ticker: str, side: Side | str, seq: int) -> str:
    """A deterministic client order id (UUID5): the same inputs always give the same id, so a
    process that restarts re-derives the id it recorded before sending."""
    side_text = side.value if isinstance(side, Side) else str(side)
    return str(uuid.uuid5(_CLIENT_ORDER_NAMESPACE, f"{namespace}|{ticker}|{side_text}|{seq}"))


# ---- field helpers -------------------------------------------------------------------------


def _obj(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WireError(f"{what} must be a JSON object, was {_short(value)}")
    return value


def _list(value: object, what: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise WireError(f"{what} must be a JSON array, was {_short(value)}")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _get(obj: Mapping[str, Any], name: str, what: str) -> Any:
    value = obj.get(name)
    if value is None:
        raise WireError(f"{what}.{name} is missing")
    return value


def _str(obj: Mapping[str, Any], name: str, what: str) -> str:
    value = _get(obj, name, what)
    if not isinstance(value, str) or not value:
        raise WireError(f"{what}.{name} must be a non-empty string, was {_short(value)}")
    return value


def _opt_str(obj: Mapping[str, Any], name: str, what: str) -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WireError(f"{what}.{name} must be a string, was {_short(value)}")
    return value


def _bool(obj: Mapping[str, Any], name: str, what: str, default: bool | None = None) -> bool:
    value = obj.get(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise WireError(f"{what}.{name} must be true or false, was {_short(value)}")
    return value


def _int(obj: Mapping[str, Any], name: str, what: str, default: int | None = None) -> int:
    value = obj.get(name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{what}.{name} must be an integer, was {_short(value)}")
    return value


def _price(obj: Mapping[str, Any], name: str, what: str) -> int:
    value = _get(obj, name, what)
    try:
        return parse_price(value, what=f"{what}.{name}")
    except NumberError as exc:
        raise WireError(str(exc)) from None


def _count(obj: Mapping[str, Any], name: str, what: str, *, signed: bool = False) -> int:
    value = _get(obj, name, what)
    try:
        return parse_count(value, what=f"{what}.{name}", signed=signed)
    except NumberError as exc:
        raise WireError(str(exc)) from None


def _opt_count(obj: Mapping[str, Any], name: str, what: str) -> int | None:
    return None if obj.get(name) is None else _count(obj, name, what)


def _money(obj: Mapping[str, Any], name: str, what: str, default: int | None = None) -> int:
    value = obj.get(name)
    if value is None and default is not None:
        return default
    if value is None:
        raise WireError(f"{what}.{name} is missing")
    try:
        return parse_money(value, what=f"{what}.{name}")
    except NumberError as exc:
        raise WireError(str(exc)) from None


def parse_time_ms(value: object, what: str) -> int:
    """An RFC3339 time ('2026-01-01T00:00:00Z', fractions and offsets allowed) -> Unix ms."""
    if not isinstance(value, str) or not value:
        raise WireError(f"{what} must be an RFC3339 time string, was {_short(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WireError(f"{what} must be an RFC3339 time string, was {_short(value)}") from None
    if moment.tzinfo is None:
        raise WireError(f"{what} must carry a time zone, was {_short(value)}")
    return int(moment.timestamp() * 1000)


def _time_ms(obj: Mapping[str, Any], name: str, what: str, default: int | None = None) -> int:
    value = obj.get(name)
    if (value is None or value == "") and default is not None:
        return default
    return parse_time_ms(value, f"{what}.{name}")


def _side(obj: Mapping[str, Any], what: str) -> Side:
    """``book_side`` (bid|ask), or ``outcome_side`` (yes = bid, no = ask) when it is absent."""
    book_side = obj.get("book_side")
    if book_side is not None:
        if book_side == "bid":
            return Side.BID
        if book_side == "ask":
            return Side.ASK
        raise WireError(f"{what}.book_side must be 'bid' or 'ask', was {_short(book_side)}")
    outcome = obj.get("outcome_side")
    if outcome == "yes":
        return Side.BID
    if outcome == "no":
        return Side.ASK
    raise WireError(f"{what}.book_side is missing (and outcome_side is {_short(outcome)})")


def _status(obj: Mapping[str, Any], what: str) -> OrderStatus:
    value = _get(obj, "status", what)
    status = _ORDER_STATUS.get(value) if isinstance(value, str) else None
    if status is None:
        raise WireError(
            f"{what}.status must be one of resting, canceled, executed, was {_short(value)}"
        )
    return status


def _status_from_counts(count: int, filled: int, remaining: int) -> OrderStatus:
    if remaining > 0:
        return OrderStatus.RESTING
    if filled >= count and count > 0:
        return OrderStatus.EXECUTED
    return OrderStatus.CANCELED


# ---- errors --------------------------------------------------------------------------------


def parse_error_body(body: object) -> ErrorBody:
    """Kalshi's error shapes: nested ``{"error": {code, message, details}}``, flat
    ``{code, message, details}``, the 429 ``{"error": "too many requests"}`` or anything else."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            source: Mapping[str, Any] = inner
        elif isinstance(inner, str):
            return ErrorBody("", inner, "")
        else:
            source = body
        code, message, details = source.get("code"), source.get("message"), source.get("details")
        return ErrorBody(
            "" if code is None else str(code),
            "" if message is None else str(message),
            "" if details is None else str(details),
        )
    if isinstance(body, str):
        return ErrorBody("", body[:500], "")
    return ErrorBody("", "" if body is None else _short(body), "")


# ---- order book ----------------------------------------------------------------------------


def fast_price(value: object, what: str) -> int:
    """``parse_price`` with a fast path for the 4-decimal strings Kalshi sends on the hot path."""
    if (
        type(value) is str
        and len(value) == 6
        and value[1] == "."
        and value[0] in "01"
        and value[2:].isascii()
        and value[2:].isdigit()
    ):
        units = int(value[0]) * ONE_DOLLAR + int(value[2:])
        if units <= ONE_DOLLAR:
            return units
    try:
        return parse_price(value, what=what)
    except NumberError as exc:
        raise WireError(str(exc)) from None


def fast_count(value: object, what: str, *, signed: bool = False) -> int:
    """``parse_count`` with a fast path for plain 2-decimal strings ('12.00', '-3.50')."""
    if type(value) is str and 4 <= len(value) <= 14 and value[-3] == ".":
        negative = signed and value[0] == "-"
        whole, frac = value[1 if negative else 0 : -3], value[-2:]
        if whole.isascii() and whole.isdigit() and frac.isascii() and frac.isdigit():
            units = int(whole) * 100 + int(frac)
            if units <= MAX_COUNT:
                return -units if negative else units
    try:
        return parse_count(value, what=what, signed=signed)
    except NumberError as exc:
        raise WireError(str(exc)) from None


def parse_levels(value: object, what: str) -> list[Level]:
    """``[["0.4100", "10.00"], ...]`` -> ``[(4100, 1000), ...]``; None or absent is empty."""
    if value is None:
        return []
    levels = _list(value, what)
    out: list[Level] = []
    for index, level in enumerate(levels):
        if not isinstance(level, list | tuple) or len(level) != 2:
            raise WireError(f"{what}[{index}] must be [price, size], was {_short(level)}")
        out.append(
            (
                fast_price(level[0], f"{what}[{index}].price"),
                fast_count(level[1], f"{what}[{index}].size"),
            )
        )
    return out


def parse_orderbook(body: object) -> YesBook:
    """``GET /markets/{t}/orderbook`` -> the YES book (asks = 1 - NO bids)."""
    data = _obj(body, "orderbook response")
    book = _obj(_get(data, "orderbook_fp", "orderbook response"), "orderbook_fp")
    yes = parse_levels(book.get("yes_dollars"), "orderbook_fp.yes_dollars")
    no = parse_levels(book.get("no_dollars"), "orderbook_fp.no_dollars")
    return YesBook.from_bid_ladders(yes, no)


# ---- markets -------------------------------------------------------------------------------


def parse_market(value: object) -> MarketInfo:
    data = _obj(value, "market")
    ticker = _str(data, "ticker", "market")
    what = f"market {ticker}"
    try:
        grid = PriceGrid.from_price_ranges(
            _list(_get(data, "price_ranges", what), f"{what}.price_ranges")
        )
    except GridError as exc:
        raise WireError(f"{what}: {exc}") from None
    result = data.get("result")
    return MarketInfo(
        ticker=ticker,
        event_ticker=_opt_str(data, "event_ticker", what) or "",
        status=_str(data, "status", what),
        open_ms=_time_ms(data, "open_time", what, default=0),
        close_ms=_time_ms(data, "close_time", what),
        grid=grid,
        price_level_structure=_opt_str(data, "price_level_structure", what) or "",
        exchange_index=_int(data, "exchange_index", what, default=0),
        can_close_early=_bool(data, "can_close_early", what, default=False),
        result=result if isinstance(result, str) else "",
        market_type=_opt_str(data, "market_type", what) or "binary",
    )


def parse_market_response(body: object) -> MarketInfo:
    return parse_market(_get(_obj(body, "market response"), "market", "market response"))


def parse_markets_page(body: object) -> tuple[list[MarketInfo], str | None]:
    return _parse_page(body, "markets response", "markets", parse_market)


def parse_cursor(data: Mapping[str, Any]) -> str | None:
    cursor = data.get("cursor")
    if cursor is None or cursor == "":
        return None
    if not isinstance(cursor, str):
        raise WireError(f"cursor must be a string, was {_short(cursor)}")
    return cursor


def _parse_page(
    body: object, what: str, items_field: str, parse_item: Callable[[object], _T]
) -> tuple[list[_T], str | None]:
    """One page of a paginated list: its items (``body[items_field]``, absent = none), each
    through ``parse_item``, and the cursor of the next page."""
    data = _obj(body, what)
    items = [parse_item(i) for i in _list(data.get(items_field) or [], items_field)]
    return items, parse_cursor(data)


def _fee_multiplier_pct(value: object, what: str) -> int | None:
    if value is None:
        return None
    try:
        units = parse_count(value, what=what)  # 2 decimals: 1.0 -> 100, 0.5 -> 50
    except NumberError as exc:
        raise WireError(str(exc)) from None
    return units


def _fee_type(value: object, what: str) -> FeeType | None:
    if value is None or value == "":
        return None
    try:
        return FeeType(str(value))
    except ValueError:
        known = ", ".join(t.value for t in FeeType)
        raise WireError(f"{what} must be one of {known}, was {_short(value)}") from None


def parse_series_fees(body: object) -> FeeInfo:
    """``GET /series/{s}`` -> the series' fee type and multiplier."""
    series = _obj(_get(_obj(body, "series response"), "series", "series response"), "series")
    return FeeInfo(
        _fee_type(series.get("fee_type"), "series.fee_type"),
        _fee_multiplier_pct(series.get("fee_multiplier"), "series.fee_multiplier"),
    )


def parse_event_fees(body: object) -> tuple[str, FeeInfo]:
    """``GET /events/{e}`` -> (series_ticker, the event's fee overrides)."""
    event = _obj(_get(_obj(body, "event response"), "event", "event response"), "event")
    return _str(event, "series_ticker", "event"), FeeInfo(
        _fee_type(event.get("fee_type_override"), "event.fee_type_override"),
        _fee_multiplier_pct(event.get("fee_multiplier_override"), "event.fee_multiplier_override"),
    )


def parse_exchange_status(body: object) -> ExchangeStatus:
    data = _obj(body, "exchange status")
    resume = data.get("exchange_estimated_resume_time")
    return ExchangeStatus(
        exchange_active=_bool(data, "exchange_active", "exchange status"),
        trading_active=_bool(data, "trading_active", "exchange status"),
        resume_ms=None if not resume else parse_time_ms(resume, "exchange_estimated_resume_time"),
    )


# ---- orders --------------------------------------------------------------------------------


def parse_order(value: object) -> Order:
    """A REST ``Order`` (``GET /portfolio/orders``)."""
    data = _obj(value, "order")
    order_id = _str(data, "order_id", "order")
    what = f"order {order_id}"
    filled = _count(data, "fill_count_fp", what)
    remaining = _count(data, "remaining_count_fp", what)
    initial = _opt_count(data, "initial_count_fp", what) or 0
    created_ms = _time_ms(data, "created_time", what, default=0)
    return Order(
        ticker=_str(data, "ticker", what),
        side=_side(data, what),
        price=_price(data, "yes_price_dollars", what),
        count=max(initial, filled + remaining),
        client_order_id=_opt_str(data, "client_order_id", what) or "",
        order_id=order_id,
        status=_status(data, what),
        filled=filled,
        remaining=remaining,
        created_ms=created_ms,
        updated_ms=_time_ms(data, "last_update_time", what, default=created_ms),
        post_only=bool(data.get("post_only", True)),
        order_group_id=_opt_str(data, "order_group_id", what),
    )


def parse_order_response(body: object) -> Order:
    return parse_order(_get(_obj(body, "order response"), "order", "order response"))


def parse_orders_page(body: object) -> tuple[list[Order], str | None]:
    return _parse_page(body, "orders response", "orders", parse_order)


def parse_user_order(value: object) -> Order:
    """A WebSocket ``user_order`` message body."""
    data = _obj(value, "user_order")
    order_id = _str(data, "order_id", "user_order")
    what = f"user_order {order_id}"
    filled = fast_count(_get(data, "fill_count_fp", what), f"{what}.fill_count_fp")
    remaining = fast_count(_get(data, "remaining_count_fp", what), f"{what}.remaining_count_fp")
    initial = _opt_count(data, "initial_count_fp", what) or 0
    created_ms = _int(data, "created_ts_ms", what, default=0)
    return Order(
        ticker=_str(data, "ticker", what),
        side=_side(data, what),
        price=fast_price(_get(data, "yes_price_dollars", what), f"{what}.yes_price_dollars"),
        count=max(initial, filled + remaining),
        client_order_id=_opt_str(data, "client_order_id", what) or "",
        order_id=order_id,
        status=_status(data, what),
        filled=filled,
        remaining=remaining,
        created_ms=created_ms,
        updated_ms=_int(data, "last_updated_ts_ms", what, default=created_ms),
        order_group_id=_opt_str(data, "order_group_id", what),
    )


def build_create_order(request: OrderRequest) -> dict[str, Any]:
    """The body of ``POST /portfolio/events/orders`` (and one item of the batch)."""
    if not request.ticker:
        raise ValueError("order ticker must be non-empty")
    if not 0 < request.price < ONE_DOLLAR:
        raise ValueError(
            f"order price must be strictly between 0 and 1 dollar, was {request.price}"
        )
    if request.count <= 0:
        raise ValueError(f"order count must be > 0, was {request.count}")
    if request.self_trade_prevention_type not in SELF_TRADE_PREVENTION:
        raise ValueError(
            "self_trade_prevention_type must be taker_at_cross or maker, "
            f"was {request.self_trade_prevention_type!r}"
        )
    if request.expiration_ms is not None and request.time_in_force is not TimeInForce.GTC:
        raise ValueError(f"an expiration needs good_till_canceled, was {request.time_in_force}")
    body: dict[str, Any] = {
        "ticker": request.ticker,
        "side": request.side.value,
        "price": format_price(request.price),
        "count": format_count(request.count),
        "time_in_force": request.time_in_force.value,
        "self_trade_prevention_type": request.self_trade_prevention_type,
        "client_order_id": request.client_order_id,
        "post_only": request.post_only,
    }
    if request.expiration_ms is not None:
        body["expiration_time"] = -(-request.expiration_ms // 1000)  # Unix seconds, rounded up
    if request.order_group_id:
        body["order_group_id"] = request.order_group_id
    if request.cancel_order_on_pause:
        body["cancel_order_on_pause"] = True
    if request.reduce_only:
        body["reduce_only"] = True
    return body


def order_from_ack(request: OrderRequest, ack: object, *, what: str = "create ack") -> Order:
    """The Order a V2 create ack describes (the ack has no status: it follows from the counts)."""
    data = _obj(ack, what)
    filled = _count(data, "fill_count", what)
    remaining = _count(data, "remaining_count", what)
    ts_ms = _int(data, "ts_ms", what, default=0)
    return Order(
        ticker=request.ticker,
        side=request.side,
        price=request.price,
        count=request.count,
        client_order_id=_opt_str(data, "client_order_id", what) or request.client_order_id,
        order_id=_str(data, "order_id", what),
        status=_status_from_counts(request.count, filled, remaining),
        filled=filled,
        remaining=remaining,
        created_ms=ts_ms,
        updated_ms=ts_ms,
        post_only=request.post_only,
        order_group_id=request.order_group_id,
    )


def parse_batch_create(body: object, requests: Sequence[OrderRequest]) -> list[Order | ErrorBody]:
    """Per-item results of a batch create, in request order (matched by client_order_id, else
    by position)."""
    data = _obj(body, "batch create response")
    items = _list(_get(data, "orders", "batch create response"), "batch create orders")
    if len(items) != len(requests):
        raise WireError(f"batch create answered {len(items)} items for {len(requests)} orders")
    position_of = {r.client_order_id: i for i, r in enumerate(requests)}
    out: list[Order | ErrorBody | None] = [None] * len(requests)
    for index, item in enumerate(items):
        what = f"batch create orders[{index}]"
        entry = _obj(item, what)
        cid = entry.get("client_order_id")
        slot = position_of.get(cid, index) if isinstance(cid, str) else index
        if out[slot] is not None:
            slot = index
        error = entry.get("error")
        if error:
            out[slot] = parse_error_body({"error": error})
        else:
            out[slot] = order_from_ack(requests[slot], entry, what=what)
    return [
        item if item is not None else ErrorBody("", "no answer for this order", "") for item in out
    ]


def build_amend(
    order: Order, price: int, count: int, updated_client_order_id: str | None = None
) -> dict[str, Any]:
    """``count`` is filled + desired remaining (Kalshi's amend semantics)."""
    if not 0 < price < ONE_DOLLAR:
        raise ValueError(f"amend price must be strictly between 0 and 1 dollar, was {price}")
    if count <= 0:
        raise ValueError(f"amend count must be > 0, was {count}")
    body: dict[str, Any] = {
        "ticker": order.ticker,
        "side": order.side.value,
        "price": format_price(price),
        "count": format_count(count),
    }
    if order.client_order_id:
        body["client_order_id"] = order.client_order_id
    if updated_client_order_id:
        body["updated_client_order_id"] = updated_client_order_id
    return body


def order_from_amend_ack(
    order: Order, price: int, count: int, ack: object, requested_remaining: int
) -> Order:
    what = "amend ack"
    data = _obj(ack, what)
    _str(data, "order_id", what)
    ack_fills = _opt_count(data, "fill_count", what) or 0
    remaining = _opt_count(data, "remaining_count", what)
    if remaining is None:
        remaining = requested_remaining
    # The spec calls fill_count "filled as a result of the amend"; the simulator (and one
    # reading of the docs) sends the order's total. max() never double-counts; the fill
    # stream is the truth about executions either way.
    filled = max(order.filled, ack_fills)
    ts_ms = _int(data, "ts_ms", what, default=0)
    count = max(count, filled + remaining)
    return Order(
        ticker=order.ticker,
        side=order.side,
        price=price,
        count=count,
        client_order_id=_opt_str(data, "client_order_id", what) or order.client_order_id,
        order_id=order.order_id,
        status=_status_from_counts(count, filled, remaining),
        filled=filled,
        remaining=remaining,
        created_ms=order.created_ms,
        updated_ms=ts_ms or order.updated_ms,
        post_only=order.post_only,
        order_group_id=order.order_group_id,
    )


def build_decrease(ticker: str, *, reduce_by: int | None, reduce_to: int | None) -> dict[str, Any]:
    if (reduce_by is None) == (reduce_to is None):
        raise ValueError("decrease needs exactly one of reduce_by or reduce_to")
    body: dict[str, Any] = {"market_ticker": ticker}
    if reduce_by is not None:
        if reduce_by <= 0:
            raise ValueError(f"reduce_by must be > 0, was {reduce_by}")
        body["reduce_by"] = format_count(reduce_by)
    else:
        assert reduce_to is not None
        if reduce_to < 0:
            raise ValueError(f"reduce_to must be >= 0, was {reduce_to}")
        body["reduce_to"] = format_count(reduce_to)
    return body


def order_from_decrease_ack(order: Order, ack: object) -> Order:
    what = "decrease ack"
    data = _obj(ack, what)
    _str(data, "order_id", what)
    remaining = _count(data, "remaining_count", what)
    ts_ms = _int(data, "ts_ms", what, default=0)
    count = order.filled + remaining
    return Order(
        ticker=order.ticker,
        side=order.side,
        price=order.price,
        count=max(count, order.filled),
        client_order_id=_opt_str(data, "client_order_id", what) or order.client_order_id,
        order_id=order.order_id,
        status=OrderStatus.RESTING if remaining > 0 else OrderStatus.CANCELED,
        filled=order.filled,
        remaining=remaining,
        created_ms=order.created_ms,
        updated_ms=ts_ms or order.updated_ms,
        post_only=order.post_only,
        order_group_id=order.order_group_id,
    )


def parse_cancel(value: object, what: str = "cancel ack") -> CancelResult:
    data = _obj(value, what)
    return CancelResult(
        order_id=_str(data, "order_id", what),
        client_order_id=_opt_str(data, "client_order_id", what),
        reduced_by=_opt_count(data, "reduced_by", what) or 0,
        ts_ms=_int(data, "ts_ms", what, default=0),
    )


def build_batch_cancel(items: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
    orders: list[dict[str, Any]] = []
    for order_id, ticker in items:
        entry: dict[str, Any] = {"order_id": order_id}
        if ticker:
            entry["market_ticker"] = ticker
        orders.append(entry)
    return {"orders": orders}


def parse_batch_cancel(body: object, order_ids: Sequence[str]) -> list[CancelResult | ErrorBody]:
    data = _obj(body, "batch cancel response")
    items = _list(_get(data, "orders", "batch cancel response"), "batch cancel orders")
    results: dict[str, CancelResult | ErrorBody] = {}
    for index, item in enumerate(items):
        entry = _obj(item, f"batch cancel orders[{index}]")
        order_id = _str(entry, "order_id", f"batch cancel orders[{index}]")
        error = entry.get("error")
        if error:
            results[order_id] = parse_error_body({"error": error})
        else:
            results[order_id] = parse_cancel(entry, f"batch cancel orders[{index}]")
    missing = [o for o in order_ids if o not in results]
    if missing:
        raise WireError(f"batch cancel answer lacks orders {missing[:5]}")
    return [results[o] for o in order_ids]


# ---- fills, positions, balance --------------------------------------------------------------


def parse_fill(value: object) -> Fill:
    """A REST ``Fill`` (``GET /portfolio/fills``)."""
    data = _obj(value, "fill")
    fill_id = data.get("fill_id") or data.get("trade_id")
    if not isinstance(fill_id, str) or not fill_id:
        raise WireError(f"fill.fill_id must be a non-empty string, was {_short(fill_id)}")
    what = f"fill {fill_id}"
    ticker = data.get("ticker") or data.get("market_ticker")
    if not isinstance(ticker, str) or not ticker:
        raise WireError(f"{what}.ticker must be a non-empty string, was {_short(ticker)}")
    if data.get("created_time"):
        ts_ms = _time_ms(data, "created_time", what)
    else:
        ts_ms = _int(data, "ts", what) * 1000
    return Fill(
        fill_id=fill_id,
        order_id=_str(data, "order_id", what),
        ticker=ticker,
        side=_side(data, what),
        price=_price(data, "yes_price_dollars", what),
        count=_count(data, "count_fp", what),
        fee=_money(data, "fee_cost", what, default=0),
        is_taker=_bool(data, "is_taker", what),
        ts_ms=ts_ms,
        client_order_id=_opt_str(data, "client_order_id", what),
    )


@dataclass(frozen=True, slots=True)
class Settlement:
    """A market paid out: every net position in it is closed at the result."""

    ticker: str
    result: str  # yes | no | scalar
    settled_ms: int
    fee: int  # micro-dollars
    value: int | None = None  # scalar: YES payout in price units


def parse_settlement(value: object) -> Settlement:
    """A ``Settlement`` (``GET /portfolio/settlements``)."""
    data = _obj(value, "settlement")
    ticker = _str(data, "ticker", "settlement")
    what = f"settlement {ticker}"
    result = data.get("market_result")
    if result not in ("yes", "no", "scalar"):
        raise WireError(f"{what}.market_result must be yes, no or scalar, was {_short(result)}")
    cents = data.get("value")
    if cents is not None and (
        isinstance(cents, bool) or not isinstance(cents, int) or not 0 <= cents <= 100
    ):
        raise WireError(f"{what}.value must be whole cents 0..100 or null, was {_short(cents)}")
    return Settlement(
        ticker=ticker,
        result=str(result),
        settled_ms=_time_ms(data, "settled_time", what),
        fee=_money(data, "fee_cost", what, default=0),
        value=None if cents is None else cents * 100,
    )


def parse_settlements_page(body: object) -> tuple[list[Settlement], str | None]:
    return _parse_page(body, "settlements response", "settlements", parse_settlement)


def parse_fills_page(body: object) -> tuple[list[Fill], str | None]:
    return _parse_page(body, "fills response", "fills", parse_fill)


def parse_ws_fill(value: object) -> Fill:
    """A WebSocket ``fill`` message body: the fastest truth about an execution."""
    data = _obj(value, "ws fill")
    fill_id = _str(data, "trade_id", "ws fill")
    what = f"ws fill {fill_id}"
    post = data.get("post_position_fp")
    return Fill(
        fill_id=fill_id,
        order_id=_str(data, "order_id", what),
        ticker=_str(data, "market_ticker", what),
        side=_side(data, what),
        price=_price(data, "yes_price_dollars", what),
        count=_count(data, "count_fp", what),
        fee=_money(data, "fee_cost", what, default=0),
        is_taker=_bool(data, "is_taker", what, default=False),
        ts_ms=_int(data, "ts_ms", what, default=0) or _int(data, "ts", what, default=0) * 1000,
        client_order_id=_opt_str(data, "client_order_id", what),
        post_position=None if post is None else _count(data, "post_position_fp", what, signed=True),
    )


def parse_position(value: object) -> ExchangePosition:
    data = _obj(value, "market position")
    ticker = _str(data, "ticker", "market position")
    what = f"position {ticker}"
    return ExchangePosition(
        ticker=ticker,
        position=_count(data, "position_fp", what, signed=True),
        total_traded=_money(data, "total_traded_dollars", what, default=0),
        exposure=_money(data, "market_exposure_dollars", what, default=0),
        realized_pnl=_money(data, "realized_pnl_dollars", what, default=0),
        fees=_money(data, "fees_paid_dollars", what, default=0),
        updated_ms=_time_ms(data, "last_updated_ts", what, default=0),
    )


def parse_positions_page(body: object) -> tuple[list[ExchangePosition], str | None]:
    return _parse_page(body, "positions response", "market_positions", parse_position)


def parse_balance(body: object) -> Balance:
    data = _obj(body, "balance response")
    if data.get("balance_dollars") is not None:
        balance = _money(data, "balance_dollars", "balance response")
    else:
        balance = _int(data, "balance", "balance response") * 10_000  # cents -> micro-dollars
    portfolio = _int(data, "portfolio_value", "balance response", default=0) * 10_000
    updated = _int(data, "updated_ts", "balance response", default=0)
    return Balance(balance, portfolio, updated * 1000 if 0 < updated < 10**11 else updated)


# ---- order groups --------------------------------------------------------------------------


def build_order_group_limit(contracts_limit: int) -> dict[str, Any]:
    if contracts_limit <= 0:
        raise ValueError(f"contracts_limit must be > 0, was {contracts_limit}")
    return {"contracts_limit_fp": format_count(contracts_limit)}


def parse_order_group_created(body: object) -> str:
    return _str(_obj(body, "order group create"), "order_group_id", "order group create")


def parse_order_group(body: object, order_group_id: str) -> OrderGroup:
    data = _obj(body, "order group")
    what = f"order group {order_group_id}"
    ids = data.get("orders") or []
    return OrderGroup(
        order_group_id=order_group_id,
        contracts_limit=_opt_count(data, "contracts_limit_fp", what),
        is_auto_cancel_enabled=_bool(data, "is_auto_cancel_enabled", what, default=False),
        order_ids=tuple(str(i) for i in _list(ids, f"{what}.orders")),
    )


def parse_order_groups(body: object) -> list[OrderGroup]:
    data = _obj(body, "order groups response")
    out = []
    for index, item in enumerate(_list(data.get("order_groups") or [], "order_groups")):
        entry = _obj(item, f"order_groups[{index}]")
        group_id = entry.get("id") or entry.get("order_group_id")
        if not isinstance(group_id, str) or not group_id:
            raise WireError(f"order_groups[{index}].id must be a string, was {_short(group_id)}")
        out.append(parse_order_group(entry, group_id))
    return out


# ---- WebSocket market data -----------------------------------------------------------------


def parse_ws_snapshot(msg: object) -> tuple[str, list[Level], list[Level]]:
    """``orderbook_snapshot.msg`` -> (ticker, YES bids, NO bids at NO prices)."""
    data = _obj(msg, "orderbook_snapshot")
    ticker = _str(data, "market_ticker", "orderbook_snapshot")
    what = f"orderbook_snapshot {ticker}"
    yes = parse_levels(data.get("yes_dollars_fp"), f"{what}.yes_dollars_fp")
    no = parse_levels(data.get("no_dollars_fp"), f"{what}.no_dollars_fp")
    return ticker, yes, no


def parse_ws_delta(msg: object) -> tuple[str, bool, int, int, int]:
    """``orderbook_delta.msg`` -> (ticker, is_yes, price, signed delta, ts_ms or 0).

    The NO side is in NO prices: dora subscribes with ``use_yes_price`` pinned to false."""
    if type(msg) is not dict:
        raise WireError(f"orderbook_delta must be a JSON object, was {_short(msg)}")
    ticker = msg.get("market_ticker")
    if type(ticker) is not str or not ticker:
        raise WireError(f"orderbook_delta.market_ticker must be a string, was {_short(ticker)}")
    side = msg.get("side")
    if side == "yes":
        is_yes = True
    elif side == "no":
        is_yes = False
    else:
        raise WireError(f"orderbook_delta {ticker}.side must be yes or no, was {_short(side)}")
    price = fast_price(msg.get("price_dollars"), f"orderbook_delta {ticker}.price_dollars")
    delta = fast_count(msg.get("delta_fp"), f"orderbook_delta {ticker}.delta_fp", signed=True)
    ts_ms = msg.get("ts_ms")
    if type(ts_ms) is not int:
        ts_ms = 0
    return ticker, is_yes, price, delta, ts_ms
