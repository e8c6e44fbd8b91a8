"""The portfolio (API.md §5.3, §5.5): fills, settlements, positions, balance and order groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.domain import Fill, Settlement
from common.errors import WireError
from common.kalshi.wire import fields
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


def parse_fill(value: object) -> Fill:
    """A REST ``Fill`` (``GET /portfolio/fills``)."""
    data = fields.obj(value, "fill")
    fill_id = data.get("fill_id") or data.get("trade_id")
    if not isinstance(fill_id, str) or not fill_id:
        raise WireError(f"fill.fill_id must be a non-empty string, was {fields.short(fill_id)}")
    what = f"fill {fill_id}"
    ticker = data.get("ticker") or data.get("market_ticker")
    if not isinstance(ticker, str) or not ticker:
        raise WireError(f"{what}.ticker must be a non-empty string, was {fields.short(ticker)}")
    if data.get("created_time"):
        ts_ms = fields.time_ms(data, "created_time", what)
    else:
        ts_ms = fields.integer(data, "ts", what) * 1000
    return Fill(
        fill_id=fill_id,
        order_id=fields.string(data, "order_id", what),
        ticker=ticker,
        side=fields.book_side(data, what),
        price=fields.price(data, "yes_price_dollars", what),
        count=fields.count(data, "count_fp", what),
        fee=fields.money(data, "fee_cost", what, default=0),
        is_taker=fields.boolean(data, "is_taker", what),
        ts_ms=ts_ms,
        client_order_id=fields.opt_string(data, "client_order_id", what),
    )


def parse_fills_page(body: object) -> tuple[list[Fill], str | None]:
    return fields.page(body, "fills response", "fills", parse_fill)


def parse_settlement(value: object) -> Settlement:
    """A ``Settlement`` (``GET /portfolio/settlements``)."""
    data = fields.obj(value, "settlement")
    ticker = fields.string(data, "ticker", "settlement")
    what = f"settlement {ticker}"
    result = data.get("market_result")
    if result not in ("yes", "no", "scalar"):
        raise WireError(
            f"{what}.market_result must be yes, no or scalar, was {fields.short(result)}"
        )
    cents = data.get("value")
    if cents is not None and (
        isinstance(cents, bool) or not isinstance(cents, int) or not 0 <= cents <= 100
    ):
        raise WireError(
            f"{what}.value must be whole cents 0..100 or null, was {fields.short(cents)}"
        )
    return Settlement(
        ticker=ticker,
        result=str(result),
        settled_ms=fields.time_ms(data, "settled_time", what),
        fee=fields.money(data, "fee_cost", what, default=0),
        value=None if cents is None else cents * 100,
    )


def parse_settlements_page(body: object) -> tuple[list[Settlement], str | None]:
    return fields.page(body, "settlements response", "settlements", parse_settlement)


def parse_position(value: object) -> ExchangePosition:
    data = fields.obj(value, "market position")
    ticker = fields.string(data, "ticker", "market position")
    what = f"position {ticker}"
    return ExchangePosition(
        ticker=ticker,
        position=fields.count(data, "position_fp", what, signed=True),
        total_traded=fields.money(data, "total_traded_dollars", what, default=0),
        exposure=fields.money(data, "market_exposure_dollars", what, default=0),
        realized_pnl=fields.money(data, "realized_pnl_dollars", what, default=0),
        fees=fields.money(data, "fees_paid_dollars", what, default=0),
        updated_ms=fields.time_ms(data, "last_updated_ts", what, default=0),
    )


def parse_positions_page(body: object) -> tuple[list[ExchangePosition], str | None]:
    return fields.page(body, "positions response", "market_positions", parse_position)


def parse_balance(body: object) -> Balance:
    data = fields.obj(body, "balance response")
    if data.get("balance_dollars") is not None:
        balance = fields.money(data, "balance_dollars", "balance response")
    else:
        balance = (
            fields.integer(data, "balance", "balance response") * 10_000
        )  # cents -> micro-dollars
    portfolio = fields.integer(data, "portfolio_value", "balance response", default=0) * 10_000
    updated = fields.integer(data, "updated_ts", "balance response", default=0)
    return Balance(balance, portfolio, updated * 1000 if 0 < updated < 10**11 else updated)


def build_order_group_limit(contracts_limit: int) -> dict[str, Any]:
    if contracts_limit <= 0:
        raise ValueError(f"contracts_limit must be > 0, was {contracts_limit}")
    return {"contracts_limit_fp": format_count(contracts_limit)}


def parse_order_group_created(body: object) -> str:
    return fields.string(
        fields.obj(body, "order group create"), "order_group_id", "order group create"
    )


def parse_order_group(body: object, order_group_id: str) -> OrderGroup:
    data = fields.obj(body, "order group")
    what = f"order group {order_group_id}"
    ids = data.get("orders") or []
    return OrderGroup(
        order_group_id=order_group_id,
        contracts_limit=fields.opt_count(data, "contracts_limit_fp", what),
        is_auto_cancel_enabled=fields.boolean(data, "is_auto_cancel_enabled", what, default=False),
        order_ids=tuple(str(i) for i in fields.array(ids, f"{what}.orders")),
    )


def parse_order_groups(body: object) -> list[OrderGroup]:
    data = fields.obj(body, "order groups response")
    out = []
    for index, item in enumerate(fields.array(data.get("order_groups") or [], "order_groups")):
        entry = fields.obj(item, f"order_groups[{index}]")
        group_id = entry.get("id") or entry.get("order_group_id")
        if not isinstance(group_id, str) or not group_id:
            raise WireError(
                f"order_groups[{index}].id must be a string, was {fields.short(group_id)}"
            )
        out.append(parse_order_group(entry, group_id))
    return out
