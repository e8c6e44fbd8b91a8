"""Orders (API.md §5.4): the V2 create, amend, decrease and cancel bodies, and their answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from common.domain import Order, OrderStatus, Side, TimeInForce
from common.errors import WireError
from common.kalshi.wire import fields
from common.kalshi.wire.error_body import ErrorBody, parse_error_body
from common.kalshi.wire.fields import Fixed, NonEmpty
from common.kalshi.wire.listing import Skipped, read_items
from common.numbers import ONE_DOLLAR, format_count, format_price

SELF_TRADE_PREVENTION = ("taker_at_cross", "maker")


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


class _Order(msgspec.Struct, frozen=True):
    order_id: NonEmpty
    yes_price_dollars: Fixed
    fill_count_fp: Fixed
    remaining_count_fp: Fixed
    ticker: Any = None
    status: Any = None
    book_side: Any = None
    outcome_side: Any = None
    client_order_id: str | None = None
    initial_count_fp: Fixed | None = None
    created_time: Any = None
    last_update_time: Any = None
    post_only: Any = True
    order_group_id: str | None = None


class _OrderResponse(msgspec.Struct, frozen=True):
    order: _Order


class _OrdersPage(msgspec.Struct, frozen=True):
    orders: list[Any] | None = None  # read one by one: a bad order never hides the others
    cursor: str | None = None


class _OrderRef(msgspec.Struct, frozen=True):
    order_id: NonEmpty
    ticker: Any = None
    subaccount_number: Any = None
    client_order_id: Any = None


@dataclass(frozen=True, slots=True)
class OrderRef:
    """What a cancel needs of a listed order, and nothing more: its id and market, and whose
    it is (its client order id, None when absent or unreadable)."""

    order_id: str
    ticker: str | None
    client_order_id: str | None = None


class _CreateAck(msgspec.Struct, frozen=True):
    order_id: NonEmpty
    fill_count: Fixed
    remaining_count: Fixed
    client_order_id: str | None = None
    ts_ms: int | None = None


class BatchAnswer(msgspec.Struct, frozen=True):
    """A batch answer: one entry per order, an ack or an error."""

    orders: list[dict[str, Any]]


def status_from_counts(count: int, filled: int, remaining: int) -> OrderStatus:
    if remaining > 0:
        return OrderStatus.RESTING
    if filled >= count and count > 0:
        return OrderStatus.EXECUTED
    return OrderStatus.CANCELED


def _order(data: _Order) -> Order:
    what = f"order {data.order_id}"
    filled = fields.count(data.fill_count_fp, f"{what}.fill_count_fp")
    remaining = fields.count(data.remaining_count_fp, f"{what}.remaining_count_fp")
    initial = fields.opt_count(data.initial_count_fp, f"{what}.initial_count_fp") or 0
    created_ms = fields.time_ms(data.created_time, f"{what}.created_time", default=0)
    ticker = data.ticker
    if not isinstance(ticker, str) or not ticker:
        raise WireError(f"{what}.ticker must be a non-empty string, was {fields.short(ticker)}")
    return Order(
        ticker=ticker,
        side=fields.book_side(data.book_side, data.outcome_side, what),
        price=fields.price(data.yes_price_dollars, f"{what}.yes_price_dollars"),
        count=max(initial, filled + remaining),
        client_order_id=data.client_order_id or "",
        order_id=data.order_id,
        status=fields.order_status(data.status, what),
        filled=filled,
        remaining=remaining,
        created_ms=created_ms,
        updated_ms=fields.time_ms(
            data.last_update_time, f"{what}.last_update_time", default=created_ms
        ),
        post_only=bool(data.post_only),
        order_group_id=data.order_group_id or None,
        exchange_ms=fields.time_ms(data.last_update_time, f"{what}.last_update_time", default=0),
    )


def parse_order(value: object) -> Order:
    """A REST ``Order`` (``GET /portfolio/orders``)."""
    return _order(fields.convert(value, _Order, "order"))


def parse_order_response(body: object) -> Order:
    return _order(fields.convert(body, _OrderResponse, "order response").order)


def parse_orders_page(
    body: object, skipped: list[Skipped] | None = None
) -> tuple[list[Order], str | None]:
    """A page of orders; with ``skipped``, an order that does not parse is set aside there."""
    page = fields.convert(body, _OrdersPage, "orders response")
    orders = read_items(page.orders, parse_order, "order", ("order_id", "ticker"), skipped)
    return orders, fields.cursor(page.cursor)


def _order_ref(value: object) -> OrderRef:
    data = fields.convert(value, _OrderRef, "order")
    ticker = data.ticker if isinstance(data.ticker, str) and data.ticker else None
    coid = data.client_order_id if isinstance(data.client_order_id, str) else None
    return OrderRef(data.order_id, ticker, coid or None)


def parse_order_refs_page(
    body: object, skipped: list[Skipped] | None = None
) -> tuple[list[OrderRef], str | None]:
    """A page of orders read only as far as a cancel needs (id and market): the kill switch
    never depends on the rest of an order having the promised shape."""
    page = fields.convert(body, _OrdersPage, "orders response")
    refs = read_items(page.orders, _order_ref, "order", ("order_id", "ticker"), skipped)
    return refs, fields.cursor(page.cursor)


def build_create_order(request: OrderRequest, subaccount: int | None = None) -> dict[str, Any]:
    """The body of ``POST /portfolio/events/orders`` (and one item of the batch), in
    ``subaccount`` when given."""
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
    if subaccount is not None:
        body["subaccount"] = subaccount
    return body


def order_from_ack(request: OrderRequest, ack: object, *, what: str = "create ack") -> Order:
    """The Order a V2 create ack describes (the ack has no status: it follows from the counts)."""
    data = fields.convert(ack, _CreateAck, what)
    filled = fields.count(data.fill_count, f"{what}.fill_count")
    remaining = fields.count(data.remaining_count, f"{what}.remaining_count")
    ts_ms = data.ts_ms or 0
    return Order(
        ticker=request.ticker,
        side=request.side,
        price=request.price,
        count=request.count,
        client_order_id=data.client_order_id or request.client_order_id,
        order_id=data.order_id,
        status=status_from_counts(request.count, filled, remaining),
        filled=filled,
        remaining=remaining,
        created_ms=ts_ms,
        updated_ms=ts_ms,
        post_only=request.post_only,
        exchange_ms=ts_ms,
        order_group_id=request.order_group_id,
    )


def parse_batch_create(body: object, requests: Sequence[OrderRequest]) -> list[Order | ErrorBody]:
    """Per-item results of a batch create, in request order (matched by client_order_id, else
    by position)."""
    items = fields.convert(body, BatchAnswer, "batch create response").orders
    if len(items) != len(requests):
        raise WireError(f"batch create answered {len(items)} items for {len(requests)} orders")
    position_of = {r.client_order_id: i for i, r in enumerate(requests)}
    out: list[Order | ErrorBody | None] = [None] * len(requests)
    for index, item in enumerate(items):
        what = f"batch create orders[{index}]"
        entry = item
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
