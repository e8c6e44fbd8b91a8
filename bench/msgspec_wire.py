"""msgspec structs decoded straight from the bytes, for the parser benchmark.

Each ``decode_*`` takes the raw JSON bytes and returns exactly what ``common.kalshi.wire`` returns
for the same payload (the benchmark checks that before timing). dora's wire layer converts the
JSON the transport already decoded (``msgspec.convert``); this measures what decoding the raw
body into the structs in one step would gain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from common.book import YesBook
from common.domain import Order, OrderStatus, Side
from common.kalshi.wire.order_changes import CancelResult
from common.kalshi.wire.orders import OrderRequest, status_from_counts
from common.numbers import fast_count, fast_price

_STATUS = {
    "resting": OrderStatus.RESTING,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "executed": OrderStatus.EXECUTED,
    "pending": OrderStatus.PENDING,
}


class _Ack(msgspec.Struct, frozen=True):
    order_id: str
    fill_count: str
    remaining_count: str
    client_order_id: str | None = None
    ts_ms: int = 0


class _Cancel(msgspec.Struct, frozen=True):
    order_id: str
    client_order_id: str | None = None
    reduced_by: str | None = None
    ts_ms: int = 0


class _Order(msgspec.Struct, frozen=True):
    order_id: str
    ticker: str
    status: str
    yes_price_dollars: str
    fill_count_fp: str
    remaining_count_fp: str
    book_side: Literal["bid", "ask"]
    client_order_id: str | None = None
    initial_count_fp: str | None = None
    created_time: str | None = None
    last_update_time: str | None = None
    post_only: bool = True
    order_group_id: str | None = None


class _OrdersPage(msgspec.Struct, frozen=True):
    orders: list[_Order] = []
    cursor: str | None = None


class _Ladders(msgspec.Struct, frozen=True):
    yes_dollars: list[tuple[str, str]] | None = None
    no_dollars: list[tuple[str, str]] | None = None


class _Book(msgspec.Struct, frozen=True):
    orderbook_fp: _Ladders


class _Delta(msgspec.Struct, frozen=True):
    market_ticker: str
    side: Literal["yes", "no"]
    price_dollars: str
    delta_fp: str
    ts_ms: int = 0


class _DeltaFrame(msgspec.Struct, frozen=True):
    type: str
    msg: _Delta
    sid: int | None = None
    seq: int | None = None


_ack = msgspec.json.Decoder(_Ack)
_cancel = msgspec.json.Decoder(_Cancel)
_page = msgspec.json.Decoder(_OrdersPage)
_book = msgspec.json.Decoder(_Book)
_delta = msgspec.json.Decoder(_DeltaFrame)


def _time_ms(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def decode_create_ack(request: OrderRequest, raw: bytes) -> Order:
    ack = _ack.decode(raw)
    filled, remaining = fast_count(ack.fill_count), fast_count(ack.remaining_count)
    return Order(
        ticker=request.ticker,
        side=request.side,
        price=request.price,
        count=request.count,
        client_order_id=ack.client_order_id or request.client_order_id,
        order_id=ack.order_id,
        status=status_from_counts(request.count, filled, remaining),
        filled=filled,
        remaining=remaining,
        created_ms=ack.ts_ms,
        updated_ms=ack.ts_ms,
        post_only=request.post_only,
        order_group_id=request.order_group_id,
    )


def decode_cancel(raw: bytes) -> CancelResult:
    ack = _cancel.decode(raw)
    reduced = fast_count(ack.reduced_by) if ack.reduced_by is not None else 0
    return CancelResult(ack.order_id, ack.client_order_id or None, reduced, ack.ts_ms)


def decode_orders_page(raw: bytes) -> tuple[list[Order], str | None]:
    page = _page.decode(raw)
    out = []
    for o in page.orders:
        filled, remaining = fast_count(o.fill_count_fp), fast_count(o.remaining_count_fp)
        initial = fast_count(o.initial_count_fp) if o.initial_count_fp else 0
        created = _time_ms(o.created_time) if o.created_time else 0
        out.append(
            Order(
                ticker=o.ticker,
                side=Side.BID if o.book_side == "bid" else Side.ASK,
                price=fast_price(o.yes_price_dollars),
                count=max(initial, filled + remaining),
                client_order_id=o.client_order_id or "",
                order_id=o.order_id,
                status=_STATUS[o.status],
                filled=filled,
                remaining=remaining,
                created_ms=created,
                updated_ms=_time_ms(o.last_update_time) if o.last_update_time else created,
                post_only=o.post_only,
                order_group_id=o.order_group_id or None,
            )
        )
    return out, page.cursor or None


def decode_orderbook(raw: bytes) -> YesBook:
    book = _book.decode(raw).orderbook_fp
    yes = [(fast_price(p), fast_count(q)) for p, q in book.yes_dollars or ()]
    no = [(fast_price(p), fast_count(q)) for p, q in book.no_dollars or ()]
    return YesBook.from_bid_ladders(yes, no)


def decode_ws_delta(raw: bytes) -> tuple[str, bool, int, int, int]:
    msg = _delta.decode(raw).msg
    price = fast_price(msg.price_dollars)
    return (
        msg.market_ticker,
        msg.side == "yes",
        price,
        fast_count(msg.delta_fp, signed=True),
        msg.ts_ms,
    )
