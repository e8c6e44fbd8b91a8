"""Orders (API.md §5.4): the V2 create, amend, decrease and cancel bodies, and their answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.domain import Order, OrderStatus, Side, TimeInForce
from common.errors import WireError
from common.kalshi.wire import fields
from common.kalshi.wire.error_body import ErrorBody, parse_error_body
from common.numbers import ONE_DOLLAR, format_count, format_price

SELF_TRADE_PREVENTION = ("taker_at_cross", "maker")
_ORDER_STATUS = {
    "resting": OrderStatus.RESTING,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "executed": OrderStatus.EXECUTED,
    "pending": OrderStatus.PENDING,
}


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
class CancelResult:
    """The answer to one cancel: ``reduced_by`` is the resting size removed (0: already gone)."""

    order_id: str
    client_order_id: str | None
    reduced_by: int
    ts_ms: int


def order_status(data: Mapping[str, Any], what: str) -> OrderStatus:
    value = fields.required(data, "status", what)
    status = _ORDER_STATUS.get(value) if isinstance(value, str) else None
    if status is None:
        raise WireError(
            f"{what}.status must be one of resting, canceled, executed, was {fields.short(value)}"
        )
    return status


def status_from_counts(count: int, filled: int, remaining: int) -> OrderStatus:
    if remaining > 0:
        return OrderStatus.RESTING
    if filled >= count and count > 0:
        return OrderStatus.EXECUTED
    return OrderStatus.CANCELED


def parse_order(value: object) -> Order:
    """A REST ``Order`` (``GET /portfolio/orders``)."""
    data = fields.obj(value, "order")
    order_id = fields.string(data, "order_id", "order")
    what = f"order {order_id}"
    filled = fields.count(data, "fill_count_fp", what)
    remaining = fields.count(data, "remaining_count_fp", what)
    initial = fields.opt_count(data, "initial_count_fp", what) or 0
    created_ms = fields.time_ms(data, "created_time", what, default=0)
    return Order(
        ticker=fields.string(data, "ticker", what),
        side=fields.book_side(data, what),
        price=fields.price(data, "yes_price_dollars", what),
        count=max(initial, filled + remaining),
        client_order_id=fields.opt_string(data, "client_order_id", what) or "",
        order_id=order_id,
        status=order_status(data, what),
        filled=filled,
        remaining=remaining,
        created_ms=created_ms,
        updated_ms=fields.time_ms(data, "last_update_time", what, default=created_ms),
        post_only=bool(data.get("post_only", True)),
        order_group_id=fields.opt_string(data, "order_group_id", what),
    )


def parse_order_response(body: object) -> Order:
    return parse_order(
        fields.required(fields.obj(body, "order response"), "order", "order response")
    )


def parse_orders_page(body: object) -> tuple[list[Order], str | None]:
    return fields.page(body, "orders response", "orders", parse_order)


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
    data = fields.obj(ack, what)
    filled = fields.count(data, "fill_count", what)
    remaining = fields.count(data, "remaining_count", what)
    ts_ms = fields.integer(data, "ts_ms", what, default=0)
    return Order(
        ticker=request.ticker,
        side=request.side,
        price=request.price,
        count=request.count,
        client_order_id=fields.opt_string(data, "client_order_id", what) or request.client_order_id,
        order_id=fields.string(data, "order_id", what),
        status=status_from_counts(request.count, filled, remaining),
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
    data = fields.obj(body, "batch create response")
    items = fields.array(
        fields.required(data, "orders", "batch create response"), "batch create orders"
    )
    if len(items) != len(requests):
        raise WireError(f"batch create answered {len(items)} items for {len(requests)} orders")
    position_of = {r.client_order_id: i for i, r in enumerate(requests)}
    out: list[Order | ErrorBody | None] = [None] * len(requests)
    for index, item in enumerate(items):
        what = f"batch create orders[{index}]"
        entry = fields.obj(item, what)
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
    data = fields.obj(ack, what)
    fields.string(data, "order_id", what)
    ack_fills = fields.opt_count(data, "fill_count", what) or 0
    remaining = fields.opt_count(data, "remaining_count", what)
    if remaining is None:
        remaining = requested_remaining
    # The spec calls fill_count "filled as a result of the amend"; the simulator (and one
    # reading of the docs) sends the order's total. max() never double-counts; the fill
    # stream is the truth about executions either way.
    filled = max(order.filled, ack_fills)
    ts_ms = fields.integer(data, "ts_ms", what, default=0)
    count = max(count, filled + remaining)
    return Order(
        ticker=order.ticker,
        side=order.side,
        price=price,
        count=count,
        client_order_id=fields.opt_string(data, "client_order_id", what) or order.client_order_id,
        order_id=order.order_id,
        status=status_from_counts(count, filled, remaining),
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
    data = fields.obj(ack, what)
    fields.string(data, "order_id", what)
    remaining = fields.count(data, "remaining_count", what)
    ts_ms = fields.integer(data, "ts_ms", what, default=0)
    count = order.filled + remaining
    return Order(
        ticker=order.ticker,
        side=order.side,
        price=order.price,
        count=max(count, order.filled),
        client_order_id=fields.opt_string(data, "client_order_id", what) or order.client_order_id,
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
    data = fields.obj(value, what)
    return CancelResult(
        order_id=fields.string(data, "order_id", what),
        client_order_id=fields.opt_string(data, "client_order_id", what),
        reduced_by=fields.opt_count(data, "reduced_by", what) or 0,
        ts_ms=fields.integer(data, "ts_ms", what, default=0),
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
    data = fields.obj(body, "batch cancel response")
    items = fields.array(
        fields.required(data, "orders", "batch cancel response"), "batch cancel orders"
    )
    results: dict[str, CancelResult | ErrorBody] = {}
    for index, item in enumerate(items):
        entry = fields.obj(item, f"batch cancel orders[{index}]")
        order_id = fields.string(entry, "order_id", f"batch cancel orders[{index}]")
        error = entry.get("error")
        if error:
            results[order_id] = parse_error_body({"error": error})
        else:
            results[order_id] = parse_cancel(entry, f"batch cancel orders[{index}]")
    missing = [o for o in order_ids if o not in results]
    if missing:
        raise WireError(f"batch cancel answer lacks orders {missing[:5]}")
    return [results[o] for o in order_ids]
