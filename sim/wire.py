"""Engine objects -> Kalshi's JSON (API.md §5, §6): field names, fixed-point strings, times.

Prices are 4-decimal dollar strings, counts 2-decimal strings, money 4 decimals (6 when a
sub-$0.0001 amount must show); REST times are RFC3339, WebSocket times ``ts_ms`` plus the
deprecated ``ts``/``time`` that the AsyncAPI spec still lists as required.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from common.numbers import ONE_DOLLAR, format_count, format_money, format_price
from sim.book import OrderBook
from sim.model import (
    Account,
    BookSide,
    Event,
    FeeChange,
    Fill,
    Market,
    MarketStatus,
    Order,
    OrderGroup,
    Position,
    Series,
    Settlement,
    Trade,
)

Json = dict[str, Any]


def rfc3339(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ms % 1000:03d}Z" if ms % 1000 else f"{stamp}Z"


def error_body(code: str, message: str, details: str = "") -> Json:
    """Kalshi's observed error body: nested under ``error`` (API.md §1.2)."""
    return {"error": {"code": code, "message": message, "details": details}}


TOO_MANY_REQUESTS: Json = {"error": "too many requests"}


def money(units: int) -> str:
    return format_money(units, 4)


def _price_or_zero(level_price: int | None) -> str:
    return format_price(level_price) if level_price is not None else "0.0000"


# ----- markets ---------------------------------------------------------------------------


def market_json(market: Market, book: OrderBook) -> Json:
    bid, ask = book.best_bid(), book.best_ask()
    yes_bid = bid.price if bid is not None else None
    yes_ask = ask.price if ask is not None else None
    data: Json = {
        "ticker": market.ticker,
        "event_ticker": market.event_ticker,
        "market_type": "binary",
        "title": market.title,
        "subtitle": market.yes_sub_title,
        "yes_sub_title": market.yes_sub_title,
        "no_sub_title": market.yes_sub_title,
        "created_time": rfc3339(market.created_ms),
        "updated_time": rfc3339(market.updated_ms or market.created_ms),
        "open_time": rfc3339(market.open_ms),
        "close_time": rfc3339(market.close_ms),
        "expected_expiration_time": rfc3339(market.close_ms),
        "expiration_time": rfc3339(market.close_ms),
        "latest_expiration_time": rfc3339(market.close_ms + 7 * 86_400_000),
        "settlement_timer_seconds": market.settlement_timer_s,
        "status": market.status.value,
        "yes_bid_dollars": _price_or_zero(yes_bid),
        "yes_bid_size_fp": format_count(bid.size if bid is not None else 0),
        "yes_ask_dollars": format_price(yes_ask) if yes_ask is not None else "1.0000",
        "yes_ask_size_fp": format_count(ask.size if ask is not None else 0),
        "no_bid_dollars": format_price(ONE_DOLLAR - yes_ask) if yes_ask is not None else "0.0000",
        "no_ask_dollars": format_price(ONE_DOLLAR - yes_bid) if yes_bid is not None else "1.0000",
        "last_price_dollars": _price_or_zero(market.last_price),
        "previous_yes_bid_dollars": "0.0000",
        "previous_yes_ask_dollars": "0.0000",
        "previous_price_dollars": "0.0000",
        "notional_value_dollars": "1.0000",
        "volume_fp": format_count(market.volume),
        "volume_24h_fp": format_count(market.volume),
        "open_interest_fp": format_count(market.open_interest),
        "result": market.result,
        "can_close_early": market.can_close_early,
        "expiration_value": "",
        "strike_type": "custom",
        "rules_primary": "Simulated market: resolves YES with its hidden fair probability.",
        "rules_secondary": "",
        "price_level_structure": market.price_level_structure,
        "price_ranges": market.grid.to_price_ranges(),
        "is_provisional": False,
        "exchange_index": 0,
        "settlement_bounds_type": "default",  # required since 3.34 (floors are announced only)
    }
    if market.result and market.result != "void":
        data["settlement_value_dollars"] = _settlement_value(market.result)
    if market.settled_ms is not None:
        data["settlement_ts"] = rfc3339(market.settled_ms)
    return data


def _settlement_value(result: str) -> str | None:
    """What a YES contract paid: $1 on yes, $0 on no; none on void (each holder gets its cost
    back, not a price per contract)."""
    return {"yes": "1.0000", "no": "0.0000"}.get(result)


def event_json(event: Event, markets: list[Json] | None = None) -> Json:
    data: Json = {
        "event_ticker": event.event_ticker,
        "series_ticker": event.series_ticker,
        "title": event.title,
        "sub_title": event.sub_title,
        "category": "Simulated",
        "collateral_return_type": "",
        "mutually_exclusive": event.mutually_exclusive,
        # gone from 3.34's models, still required by the 3.28 spec: an extra field to 3.34
        "available_on_brokers": False,
        "strike_date": rfc3339(event.strike_date_ms),
        "strike_period": "",
        "settlement_sources": [],
        "product_metadata": None,
        "fee_type_override": event.fee_type_override,
        "fee_multiplier_override": None
        if event.fee_multiplier_override is None
        else event.fee_multiplier_override / 100,
        "last_updated_ts": rfc3339(event.strike_date_ms),
        "exchange_index": 0,
    }
    if markets is not None:
        data["markets"] = markets
    return data


def series_json(series: Series, volume: int | None = None) -> Json:
    data: Json = {
        "ticker": series.ticker,
        "frequency": series.frequency,
        "title": series.title,
        "category": series.category,
        "categories": [series.category],  # required since 3.34
        "tags": [],
        "settlement_sources": [],
        "contract_url": "",
        "contract_terms_url": "",
        "fee_type": series.fee_type.value,
        "fee_multiplier": series.fee_multiplier_pct / 100,
        "additional_prohibitions": [],
        "exchange_index": 0,
    }
    if volume is not None:
        data["volume_fp"] = format_count(volume)
    return data


def fee_change_json(change: FeeChange) -> Json:
    return {
        "id": change.change_id,
        "series_ticker": change.series_ticker,
        "fee_type": change.fee_type.value,
        "fee_multiplier": change.multiplier_pct / 100,
        "scheduled_ts": rfc3339(change.scheduled_ms),
    }


def levels_json(levels: list[tuple[int, int]]) -> list[list[str]]:
    return [[format_price(p), format_count(c)] for p, c in levels]


def orderbook_fp(book: OrderBook, depth: int = 0) -> Json:
    yes, no = book.yes_levels(), book.no_levels()
    if depth > 0:
        yes, no = yes[-depth:], no[-depth:]
    return {"yes_dollars": levels_json(yes), "no_dollars": levels_json(no)}


def trade_json(trade: Trade) -> Json:
    return {
        "trade_id": trade.trade_id,
        "ticker": trade.ticker,
        "count_fp": format_count(trade.count),
        "yes_price_dollars": format_price(trade.price),
        "no_price_dollars": format_price(ONE_DOLLAR - trade.price),
        "taker_outcome_side": trade.taker_side.outcome,
        "taker_book_side": trade.taker_side.value,
        "taker_side": trade.taker_side.outcome,
        "created_time": rfc3339(trade.created_ms),
        "is_block_trade": False,
    }


# ----- portfolio -------------------------------------------------------------------------


def _legacy_order_pair(side: BookSide) -> tuple[str, str]:
    """(action, side) as V2 reads normalise them: YES-denominated (API.md §4)."""
    return ("buy", "yes") if side is BookSide.BID else ("sell", "yes")


def order_json(order: Order) -> Json:
    action, legacy_side = _legacy_order_pair(order.side)
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "client_order_id": order.client_order_id,
        "ticker": order.ticker,
        "outcome_side": order.side.outcome,
        "book_side": order.side.value,
        "side": legacy_side,
        "action": action,
        "type": "limit",
        "status": order.status.value,
        "yes_price_dollars": format_price(order.price),
        "no_price_dollars": format_price(ONE_DOLLAR - order.price),
        "fill_count_fp": format_count(order.filled),
        "remaining_count_fp": format_count(order.remaining),
        "initial_count_fp": format_count(order.initial_count),
        "taker_fill_cost_dollars": money(order.taker_fill_cost),
        "maker_fill_cost_dollars": money(order.maker_fill_cost),
        "taker_fees_dollars": money(order.taker_fees),
        "maker_fees_dollars": money(order.maker_fees),
        "expiration_time": rfc3339(order.expiration_ms) if order.expiration_ms else None,
        "created_time": rfc3339(order.created_ms),
        "last_update_time": rfc3339(order.updated_ms),
        "self_trade_prevention_type": order.stp.value,
        "order_group_id": order.order_group_id,
        "cancel_order_on_pause": order.cancel_on_pause,
        "subaccount_number": order.subaccount,
        "exchange_index": 0,
        "last_update_reason": order.last_update_reason,
    }


def fill_json(fill: Fill) -> Json:
    return {
        "fill_id": fill.fill_id,
        "trade_id": fill.trade_id,
        "order_id": fill.order_id,
        "ticker": fill.ticker,
        "market_ticker": fill.ticker,
        "exchange_index": 0,
        "outcome_side": fill.side.outcome,
        "book_side": fill.side.value,
        "side": fill.side.outcome,
        "action": "buy",
        "count_fp": format_count(fill.count),
        "yes_price_dollars": format_price(fill.price),
        "no_price_dollars": format_price(ONE_DOLLAR - fill.price),
        "is_taker": fill.is_taker,
        "fee_cost": money(fill.fee),
        "created_time": rfc3339(fill.created_ms),
        "ts": fill.created_ms // 1000,
        "subaccount_number": fill.subaccount,
    }


def position_json(position: Position) -> Json:
    return {
        "ticker": position.ticker,
        "exchange_index": 0,
        "position_fp": format_count(position.position),
        "total_traded_dollars": money(position.total_traded),
        "market_exposure_dollars": money(position.cost),
        "realized_pnl_dollars": money(position.realized_pnl),
        "fees_paid_dollars": money(position.fees_paid),
        "last_updated_ts": rfc3339(position.updated_ms),
    }


def settled_positions(settlements: list[Settlement]) -> list[Position]:
    """Settled markets as positions (``settlement_status=settled``): flat, their PnL realized."""
    return [
        Position(
            s.ticker,
            s.event_ticker,
            realized_pnl=s.revenue - s.yes_cost - s.no_cost,
            total_traded=s.yes_cost + s.no_cost,
            updated_ms=s.settled_ms,
        )
        for s in settlements
    ]


def event_positions_json(positions: list[Position]) -> list[Json]:
    by_event: dict[str, list[Position]] = {}
    for position in positions:
        by_event.setdefault(position.event_ticker, []).append(position)
    return [
        {
            "event_ticker": event_ticker,
            "total_cost_dollars": money(sum(p.cost for p in group)),
            "total_cost_shares_fp": format_count(sum(abs(p.position) for p in group)),
            "event_exposure_dollars": money(sum(p.cost for p in group)),
            "realized_pnl_dollars": money(sum(p.realized_pnl for p in group)),
            "fees_paid_dollars": money(sum(p.fees_paid for p in group)),
        }
        for event_ticker, group in sorted(by_event.items())
    ]


def settlement_json(settlement: Settlement) -> Json:
    return {
        "ticker": settlement.ticker,
        "event_ticker": settlement.event_ticker,
        "exchange_index": 0,
        "market_result": settlement.result,
        "yes_count_fp": format_count(settlement.yes_count),
        "yes_total_cost_dollars": money(settlement.yes_cost),
        "no_count_fp": format_count(settlement.no_count),
        "no_total_cost_dollars": money(settlement.no_cost),
        "revenue": settlement.revenue // 10_000,
        "value": {"yes": 100, "no": 0}.get(settlement.result),  # null when void
        "settled_time": rfc3339(settlement.settled_ms),
        "fee_cost": "0.0000",
    }


def portfolio_value_money(account: Account, markets: dict[str, Market]) -> int:
    """Positions marked at the last price (or $0.50 before any trade)."""
    value = 0
    for ticker, position in account.positions.items():
        market = markets.get(ticker)
        price = market.last_price if market and market.last_price is not None else ONE_DOLLAR // 2
        mark = price if position.position > 0 else ONE_DOLLAR - price
        value += abs(position.position) * mark
    return value


def balance_json(account: Account, markets: dict[str, Market], now_ms: int) -> Json:
    available = account.available
    return {
        "balance": available // 10_000,
        "balance_dollars": money(available),
        "portfolio_value": portfolio_value_money(account, markets) // 10_000,
        "updated_ts": now_ms // 1000,
        "balance_breakdown": [{"exchange_index": 0, "balance": money(available)}],
    }


def order_group_json(group: OrderGroup) -> Json:
    return {
        "id": group.group_id,
        "contracts_limit_fp": format_count(group.contracts_limit),
        "is_auto_cancel_enabled": True,
        "exchange_index": 0,
    }


# ----- WebSocket payloads ----------------------------------------------------------------


def ws_ticker_msg(market: Market, book: OrderBook, now_ms: int) -> Json:
    bid, ask = book.best_bid(), book.best_ask()
    return {
        "market_ticker": market.ticker,
        "market_id": market.market_id,
        "price_dollars": _price_or_zero(market.last_price),
        "yes_bid_dollars": _price_or_zero(bid.price if bid else None),
        "yes_ask_dollars": format_price(ask.price) if ask else "1.0000",
        "yes_bid_size_fp": format_count(bid.size if bid else 0),
        "yes_ask_size_fp": format_count(ask.size if ask else 0),
        "last_trade_size_fp": format_count(market.last_trade_count),
        "volume_fp": format_count(market.volume),
        "open_interest_fp": format_count(market.open_interest),
        "dollar_volume": market.dollar_volume_money // 1_000_000,
        "dollar_open_interest": market.open_interest // 100,
        "ts_ms": now_ms,
        "ts": now_ms // 1000,
        "time": rfc3339(now_ms),
    }


def ws_trade_msg(trade: Trade) -> Json:
    return {
        "trade_id": trade.trade_id,
        "market_ticker": trade.ticker,
        "yes_price_dollars": format_price(trade.price),
        "no_price_dollars": format_price(ONE_DOLLAR - trade.price),
        "count_fp": format_count(trade.count),
        "taker_outcome_side": trade.taker_side.outcome,
        "taker_book_side": trade.taker_side.value,
        "taker_side": trade.taker_side.outcome,
        "is_block_trade": False,
        "ts_ms": trade.created_ms,
        "ts": trade.created_ms // 1000,
    }


def ws_fill_msg(fill: Fill) -> Json:
    data: Json = {
        "trade_id": fill.trade_id,
        "order_id": fill.order_id,
        "market_ticker": fill.ticker,
        "exchange_index": 0,
        "is_taker": fill.is_taker,
        "yes_price_dollars": format_price(fill.price),
        "count_fp": format_count(fill.count),
        "fee_cost": money(fill.fee),
        "post_position_fp": format_count(fill.post_position),
        "outcome_side": fill.side.outcome,
        "book_side": fill.side.value,
        "side": fill.side.outcome,
        "purchased_side": fill.side.outcome,
        "action": "buy",
        "subaccount": fill.subaccount,
        "ts_ms": fill.created_ms,
        "ts": fill.created_ms // 1000,
    }
    if fill.client_order_id:
        data["client_order_id"] = fill.client_order_id
    return data


def ws_user_order_msg(order: Order) -> Json:
    data: Json = {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "ticker": order.ticker,
        "status": order.status.value,
        "outcome_side": order.side.outcome,
        "book_side": order.side.value,
        "side": order.side.outcome,
        "is_yes": order.side is BookSide.BID,
        "yes_price_dollars": format_price(order.price),
        "fill_count_fp": format_count(order.filled),
        "remaining_count_fp": format_count(order.remaining),
        "initial_count_fp": format_count(order.initial_count),
        "taker_fill_cost_dollars": money(order.taker_fill_cost),
        "maker_fill_cost_dollars": money(order.maker_fill_cost),
        "taker_fees_dollars": money(order.taker_fees),
        "maker_fees_dollars": money(order.maker_fees),
        "client_order_id": order.client_order_id,
        "self_trade_prevention_type": order.stp.value,
        "created_ts_ms": order.created_ms,
        "created_time": rfc3339(order.created_ms),
        "last_updated_ts_ms": order.updated_ms,
        "last_update_time": rfc3339(order.updated_ms),
        "subaccount_number": order.subaccount,
        "exchange_index": 0,  # required since 3.34
        "last_update_reason": order.last_update_reason or None,
    }
    if order.order_group_id is not None:
        data["order_group_id"] = order.order_group_id
    if order.expiration_ms is not None:
        data["expiration_ts_ms"] = order.expiration_ms
        data["expiration_time"] = rfc3339(order.expiration_ms)
    return data


def ws_position_msg(user_id: str, position: Position) -> Json:
    return {
        "user_id": user_id,
        "market_ticker": position.ticker,
        "position_fp": format_count(position.position),
        "position_cost_dollars": money(position.cost),
        "realized_pnl_dollars": money(position.realized_pnl),
        "fees_paid_dollars": money(position.fees_paid),
        "position_fee_cost_dollars": money(position.fees_paid),
        "volume_fp": format_count(position.volume),
        "subaccount": 0,
    }


def status_filter_matches(status: MarketStatus, wanted: str) -> bool:
    if wanted == "open":
        return status in (MarketStatus.ACTIVE, MarketStatus.INACTIVE)
    return status.filter_name == wanted
