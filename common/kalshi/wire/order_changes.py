"""Changes to resting orders (API.md §5.4): the V2 amend, decrease and cancel bodies and answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from common.domain import Order, OrderStatus
from common.errors import WireError
from common.kalshi.wire import fields
from common.kalshi.wire.error_body import ErrorBody, parse_error_body
from common.kalshi.wire.fields import Fixed, NonEmpty
from common.kalshi.wire.orders import BatchAnswer, status_from_counts
from common.numbers import ONE_DOLLAR, format_count, format_price


@dataclass(frozen=True, slots=True)
class CancelResult:
    """The answer to one cancel: ``reduced_by`` is the resting size removed (0: already gone)."""

    order_id: str
    client_order_id: str | None
    reduced_by: int
    ts_ms: int


# ---- the shapes dora reads (Kalshi's field names; unknown fields are ignored) -------------


class _AmendAck(msgspec.Struct, frozen=True):
    order_id: NonEmpty
    fill_count: Fixed | None = None
    remaining_count: Fixed | None = None
    client_order_id: str | None = None
    ts_ms: int | None = None


class _DecreaseAck(msgspec.Struct, frozen=True):
    order_id: NonEmpty
    remaining_count: Fixed
    client_order_id: str | None = None
    ts_ms: int | None = None


class _CancelAck(msgspec.Struct, frozen=True):
    order_id: NonEmpty
    client_order_id: str | None = None
    reduced_by: Fixed | None = None
    ts_ms: int | None = None
    error: Any = None


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
    data = fields.convert(ack, _AmendAck, what)
    ack_fills = fields.opt_count(data.fill_count, f"{what}.fill_count") or 0
    remaining = fields.opt_count(data.remaining_count, f"{what}.remaining_count")
    if remaining is None:
        remaining = requested_remaining
    # The spec calls fill_count "filled as a result of the amend"; the simulator (and one
    # reading of the docs) sends the order's total. max() never double-counts; the fill
    # stream is the truth about executions either way.
    filled = max(order.filled, ack_fills)
    count = max(count, filled + remaining)
    return Order(
        ticker=order.ticker,
        side=order.side,
        price=price,
        count=count,
        client_order_id=data.client_order_id or order.client_order_id,
        order_id=order.order_id,
        status=status_from_counts(count, filled, remaining),
        filled=filled,
        remaining=remaining,
        created_ms=order.created_ms,
        updated_ms=data.ts_ms or order.updated_ms,
        exchange_ms=data.ts_ms or 0,
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
    data = fields.convert(ack, _DecreaseAck, what)
    remaining = fields.count(data.remaining_count, f"{what}.remaining_count")
    count = order.filled + remaining
    return Order(
        ticker=order.ticker,
        side=order.side,
        price=order.price,
        count=max(count, order.filled),
        client_order_id=data.client_order_id or order.client_order_id,
        order_id=order.order_id,
        status=OrderStatus.RESTING if remaining > 0 else OrderStatus.CANCELED,
        filled=order.filled,
        remaining=remaining,
        created_ms=order.created_ms,
        updated_ms=data.ts_ms or order.updated_ms,
        exchange_ms=data.ts_ms or 0,
        post_only=order.post_only,
        order_group_id=order.order_group_id,
    )


def _cancel(data: _CancelAck, what: str) -> CancelResult:
    return CancelResult(
        order_id=data.order_id,
        client_order_id=data.client_order_id or None,
        reduced_by=fields.opt_count(data.reduced_by, f"{what}.reduced_by") or 0,
        ts_ms=data.ts_ms or 0,
    )


def parse_cancel(value: object, what: str = "cancel ack") -> CancelResult:
    return _cancel(fields.convert(value, _CancelAck, what), what)


def build_batch_cancel(
    items: Sequence[tuple[str, str | None]], subaccount: int | None = None
) -> dict[str, Any]:
    orders: list[dict[str, Any]] = []
    for order_id, ticker in items:
        entry: dict[str, Any] = {"order_id": order_id}
        if ticker:
            entry["market_ticker"] = ticker
        if subaccount is not None:
            entry["subaccount"] = subaccount
        orders.append(entry)
    return {"orders": orders}


def parse_batch_cancel(body: object, order_ids: Sequence[str]) -> list[CancelResult | ErrorBody]:
    items = fields.convert(body, BatchAnswer, "batch cancel response").orders
    results: dict[str, CancelResult | ErrorBody] = {}
    for index, item in enumerate(items):
        what = f"batch cancel orders[{index}]"
        entry = fields.convert(item, _CancelAck, what)
        if entry.error:
            results[entry.order_id] = parse_error_body({"error": entry.error})
        else:
            results[entry.order_id] = _cancel(entry, what)
    missing = [o for o in order_ids if o not in results]
    if missing:
        raise WireError(f"batch cancel answer lacks orders {missing[:5]}")
    return [results[o] for o in order_ids]
