"""The portfolio (API.md §5.3, §5.5): fills, settlements, positions, balance and order groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from common.domain import Fill, Settlement
from common.errors import WireError
from common.kalshi.wire import fields
from common.kalshi.wire.fields import Fixed, NonEmpty
from common.kalshi.wire.listing import Skipped, read_items
from common.numbers import format_count


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
class OrderGroup:
    order_group_id: str
    contracts_limit: int | None
    is_auto_cancel_enabled: bool
    order_ids: tuple[str, ...] = ()


# A settlement's ``market_result``: ``void`` (spec 3.34) returns the position's cost.
SETTLEMENT_RESULTS = ("yes", "no", "scalar", "void")


# ---- the shapes dora reads (Kalshi's field names; unknown fields are ignored) -------------


class _Fill(msgspec.Struct, frozen=True):
    order_id: NonEmpty
    yes_price_dollars: Fixed
    count_fp: Fixed
    is_taker: bool
    fill_id: Any = None
    trade_id: Any = None
    ticker: Any = None
    market_ticker: Any = None
    book_side: Any = None
    outcome_side: Any = None
    fee_cost: Fixed | None = None
    created_time: Any = None
    ts: int | None = None
    client_order_id: str | None = None


class _FillsPage(msgspec.Struct, frozen=True):
    fills: list[Any] | None = None  # read one by one: a bad fill never hides the others
    cursor: str | None = None


class _Settlement(msgspec.Struct, frozen=True):
    ticker: NonEmpty
    market_result: Any = None
    value: Any = None
    settled_time: Any = None
    fee_cost: Fixed | None = None


class _SettlementsPage(msgspec.Struct, frozen=True):
    settlements: list[Any] | None = None
    cursor: str | None = None


class _Position(msgspec.Struct, frozen=True):
    ticker: NonEmpty
    position_fp: Fixed
    total_traded_dollars: Fixed | None = None
    market_exposure_dollars: Fixed | None = None
    realized_pnl_dollars: Fixed | None = None
    fees_paid_dollars: Fixed | None = None
    last_updated_ts: Any = None


class _PositionsPage(msgspec.Struct, frozen=True):
    market_positions: list[Any] | None = None
    cursor: str | None = None


class _Balance(msgspec.Struct, frozen=True):
    balance_dollars: Fixed | None = None
    balance: int | None = None
    portfolio_value: int | None = None
    updated_ts: int | None = None


class _GroupCreated(msgspec.Struct, frozen=True):
    order_group_id: NonEmpty


class _Group(msgspec.Struct, frozen=True):
    contracts_limit_fp: Fixed | None = None
    is_auto_cancel_enabled: bool | None = None
    orders: list[Any] | None = None


class _Groups(msgspec.Struct, frozen=True):
    order_groups: list[dict[str, Any]] | None = None


# ---- fills and settlements -----------------------------------------------------------------


def parse_fill(value: object) -> Fill:
    """A REST ``Fill`` (``GET /portfolio/fills``)."""
    if isinstance(value, dict):  # the id first, so that every later message names the fill
        fill_id = value.get("fill_id") or value.get("trade_id")
        if not isinstance(fill_id, str) or not fill_id:
            raise WireError(f"fill.fill_id must be a non-empty string, was {fields.short(fill_id)}")
    data = fields.convert(value, _Fill, "fill")
    fill_id = data.fill_id or data.trade_id
    what = f"fill {fill_id}"
    ticker = data.ticker or data.market_ticker
    if not isinstance(ticker, str) or not ticker:
        raise WireError(f"{what}.ticker must be a non-empty string, was {fields.short(ticker)}")
    if data.created_time:
        ts_ms = fields.time_ms(data.created_time, f"{what}.created_time")
    elif data.ts is not None:
        ts_ms = data.ts * 1000
    else:
        raise WireError(f"{what}.ts is missing (and created_time too)")
    return Fill(
        fill_id=fill_id,
        order_id=data.order_id,
        ticker=ticker,
        side=fields.book_side(data.book_side, data.outcome_side, what),
        price=fields.price(data.yes_price_dollars, f"{what}.yes_price_dollars"),
        count=fields.count(data.count_fp, f"{what}.count_fp"),
        fee=fields.money(data.fee_cost, f"{what}.fee_cost", default=0),
        is_taker=data.is_taker,
        ts_ms=ts_ms,
        client_order_id=data.client_order_id or None,
    )


def parse_fills_page(
    body: object, skipped: list[Skipped] | None = None
) -> tuple[list[Fill], str | None]:
    """A page of fills; with ``skipped``, a fill that does not parse is set aside there."""
    page = fields.convert(body, _FillsPage, "fills response")
    fills = read_items(page.fills, parse_fill, "fill", ("fill_id", "trade_id"), skipped)
    return fills, fields.cursor(page.cursor)


def _settlement(data: _Settlement) -> Settlement:
    what = f"settlement {data.ticker}"
    result = data.market_result
    if result not in SETTLEMENT_RESULTS:
        raise WireError(
            f"{what}.market_result must be yes, no, scalar or void, was {fields.short(result)}"
        )
    cents = data.value
    if cents is not None and (
        isinstance(cents, bool) or not isinstance(cents, int) or not 0 <= cents <= 100
    ):
        raise WireError(
            f"{what}.value must be whole cents 0..100 or null, was {fields.short(cents)}"
        )
    return Settlement(
        ticker=data.ticker,
        result=str(result),
        settled_ms=fields.time_ms(data.settled_time, f"{what}.settled_time"),
        fee=fields.money(data.fee_cost, f"{what}.fee_cost", default=0),
        value=None if cents is None else cents * 100,
    )


def parse_settlement(value: object) -> Settlement:
    """A ``Settlement`` (``GET /portfolio/settlements``)."""
    return _settlement(fields.convert(value, _Settlement, "settlement"))


def parse_settlements_page(
    body: object, skipped: list[Skipped] | None = None
) -> tuple[list[Settlement], str | None]:
    """A page of settlements; with ``skipped``, one that does not parse is set aside there."""
    page = fields.convert(body, _SettlementsPage, "settlements response")
    items = read_items(page.settlements, parse_settlement, "settlement", ("ticker",), skipped)
    return items, fields.cursor(page.cursor)


# ---- positions and balance -----------------------------------------------------------------


def _position(data: _Position) -> ExchangePosition:
    what = f"position {data.ticker}"
    return ExchangePosition(
        ticker=data.ticker,
        position=fields.count(data.position_fp, f"{what}.position_fp", signed=True),
        total_traded=fields.money(data.total_traded_dollars, f"{what}.total_traded_dollars", 0),
        exposure=fields.money(data.market_exposure_dollars, f"{what}.market_exposure_dollars", 0),
        realized_pnl=fields.money(data.realized_pnl_dollars, f"{what}.realized_pnl_dollars", 0),
        fees=fields.money(data.fees_paid_dollars, f"{what}.fees_paid_dollars", 0),
        updated_ms=fields.time_ms(data.last_updated_ts, f"{what}.last_updated_ts", default=0),
    )


def parse_position(value: object) -> ExchangePosition:
    return _position(fields.convert(value, _Position, "market position"))


def parse_positions_page(
    body: object, skipped: list[Skipped] | None = None
) -> tuple[list[ExchangePosition], str | None]:
    """A page of market positions; with ``skipped``, one that does not parse is set aside there
    (its ticker, when readable, says which market's position is not known)."""
    page = fields.convert(body, _PositionsPage, "positions response")
    items = read_items(page.market_positions, parse_position, "position", ("ticker",), skipped)
    return items, fields.cursor(page.cursor)


def parse_balance(body: object) -> Balance:
    what = "balance response"
    data = fields.convert(body, _Balance, what)
    if data.balance_dollars is not None:
        balance = fields.money(data.balance_dollars, f"{what}.balance_dollars")
    elif data.balance is not None:
        balance = data.balance * 10_000  # cents -> micro-dollars
    else:
        raise WireError(f"{what}.balance is missing (and balance_dollars too)")
    portfolio = (data.portfolio_value or 0) * 10_000
    updated = data.updated_ts or 0
    return Balance(balance, portfolio, updated * 1000 if 0 < updated < 10**11 else updated)


# ---- order groups --------------------------------------------------------------------------


def build_order_group_limit(contracts_limit: int) -> dict[str, Any]:
    if contracts_limit <= 0:
        raise ValueError(f"contracts_limit must be > 0, was {contracts_limit}")
    return {"contracts_limit_fp": format_count(contracts_limit)}


def parse_order_group_created(body: object) -> str:
    return fields.convert(body, _GroupCreated, "order group create").order_group_id


def parse_order_group(body: object, order_group_id: str) -> OrderGroup:
    what = f"order group {order_group_id}"
    data = fields.convert(body, _Group, what)
    return OrderGroup(
        order_group_id=order_group_id,
        contracts_limit=fields.opt_count(data.contracts_limit_fp, f"{what}.contracts_limit_fp"),
        is_auto_cancel_enabled=bool(data.is_auto_cancel_enabled),
        order_ids=tuple(str(i) for i in data.orders or ()),
    )


def parse_order_groups(body: object) -> list[OrderGroup]:
    groups = fields.convert(body, _Groups, "order groups response").order_groups
    out = []
    for index, entry in enumerate(groups or ()):
        group_id = entry.get("id") or entry.get("order_group_id")
        if not isinstance(group_id, str) or not group_id:
            raise WireError(
                f"order_groups[{index}].id must be a string, was {fields.short(group_id)}"
            )
        out.append(parse_order_group(entry, group_id))
    return out
