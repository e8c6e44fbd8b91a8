"""Market lifecycle and settlement (API.md §9) as functions over the engine.

initialized -> active at ``open_ms`` and active -> closed at ``close_ms`` happen on time with no
WebSocket event; pause (``deactivated``), reactivation (``activated``: every resting order of
the market is cancelled), ``close_date_updated``, ``determined`` and ``settled`` are announced.
A determined market settles ``settlement_timer_s`` later: each holder's net position pays $1
per contract of the winning side, positions move to settlements.
"""

from __future__ import annotations

import copy

from common.fees import FeeType
from common.numbers import ONE_DOLLAR, parse_count
from sim.engine import Exchange
from sim.errors import EngineError
from sim.events import LifecycleEvent, PositionEvent
from sim.model import FeeChange, Market, MarketStatus, Settlement


def _ts_s(ms: int) -> int:
    return ms // 1000


def advance(exchange: Exchange, now_ms: int) -> None:
    """Apply everything that happens on time: expiries, opens, closes, settlements."""
    exchange.expire_orders(now_ms)
    for market in exchange.markets.values():
        status = market.status
        if status is MarketStatus.INITIALIZED and market.open_ms <= now_ms < market.close_ms:
            market.status = MarketStatus.ACTIVE
            market.updated_ms = now_ms
            exchange.mark_ticker(market.ticker)
        elif status in (MarketStatus.ACTIVE, MarketStatus.INACTIVE) and market.close_ms <= now_ms:
            _close(exchange, market, now_ms)
        elif (
            status is MarketStatus.DETERMINED
            and market.determined_ms is not None
            and market.determined_ms + market.settlement_timer_s * 1000 <= now_ms
        ):
            settle(exchange, market.ticker, now_ms)


def _cancel_market_orders(exchange: Exchange, market: Market, now_ms: int, reason: str) -> int:
    cancelled = 0
    for account in exchange.accounts.values():
        for order in [o for o in account.resting.values() if o.ticker == market.ticker]:
            exchange.cancel_resting(order, now_ms, reason=reason)
            cancelled += 1
    return cancelled


def _close(exchange: Exchange, market: Market, now_ms: int) -> None:
    market.status = MarketStatus.CLOSED
    market.updated_ms = now_ms
    _cancel_market_orders(exchange, market, now_ms, "MarketClosed")
    exchange.mark_ticker(market.ticker)


def pause(exchange: Exchange, ticker: str, now_ms: int) -> None:
    market = exchange.market(ticker)
    if market.status is not MarketStatus.ACTIVE:
        raise EngineError(400, "invalid_parameters", "market is not active", ticker)
    market.status = MarketStatus.INACTIVE
    market.updated_ms = now_ms
    for account in exchange.accounts.values():
        for order in [o for o in account.resting.values() if o.ticker == ticker]:
            if order.cancel_on_pause:
                exchange.cancel_resting(order, now_ms, reason="MarketPaused")
    exchange.emit(LifecycleEvent(ticker, "deactivated", now_ms, {"is_deactivated": True}))


def resume(exchange: Exchange, ticker: str, now_ms: int) -> None:
    """Reactivate a paused market; like Kalshi, every resting order of it is cancelled."""
    market = exchange.market(ticker)
    if market.status is not MarketStatus.INACTIVE:
        raise EngineError(400, "invalid_parameters", "market is not paused", ticker)
    _cancel_market_orders(exchange, market, now_ms, "MarketReactivated")
    market.status = MarketStatus.ACTIVE
    market.updated_ms = now_ms
    exchange.emit(LifecycleEvent(ticker, "activated", now_ms, {"is_deactivated": False}))


def set_close_time(exchange: Exchange, ticker: str, close_ms: int, now_ms: int) -> None:
    """Move the close time; a past time closes now, a future one reopens a closed market."""
    market = exchange.market(ticker)
    if market.status in (MarketStatus.DETERMINED, MarketStatus.FINALIZED):
        raise EngineError(400, "invalid_parameters", "market is already determined", ticker)
    market.close_ms = close_ms
    market.updated_ms = now_ms
    exchange.emit(
        LifecycleEvent(ticker, "close_date_updated", now_ms, {"close_ts": _ts_s(close_ms)})
    )
    if close_ms <= now_ms and market.status in (MarketStatus.ACTIVE, MarketStatus.INACTIVE):
        _close(exchange, market, now_ms)
    elif close_ms > now_ms and market.status is MarketStatus.CLOSED:
        market.status = MarketStatus.ACTIVE
        exchange.mark_ticker(ticker)


def close_now(exchange: Exchange, ticker: str, now_ms: int) -> None:
    set_close_time(exchange, ticker, now_ms, now_ms)


def determine(exchange: Exchange, ticker: str, result: str, now_ms: int) -> None:
    market = exchange.market(ticker)
    if result not in ("yes", "no", "void"):
        raise EngineError(400, "invalid_parameters", "result must be yes, no or void", result)
    if market.status in (MarketStatus.ACTIVE, MarketStatus.INACTIVE, MarketStatus.INITIALIZED):
        _close(exchange, market, now_ms)
    if market.status is not MarketStatus.CLOSED:
        raise EngineError(400, "invalid_parameters", "market is already determined", ticker)
    market.status = MarketStatus.DETERMINED
    market.result = result
    market.determined_ms = now_ms
    market.updated_ms = now_ms
    exchange.emit(
        LifecycleEvent(
            ticker,
            "determined",
            now_ms,
            {
                "result": result,
                "determination_ts": _ts_s(now_ms),
                "settlement_value": {"yes": "1.0000", "no": "0.0000"}.get(result),
            },
        )
    )


def settle(exchange: Exchange, ticker: str, now_ms: int) -> None:
    """Pay out every net position of a determined market and close it for good (a void market
    returns each holder what its open contracts cost, 3.34)."""
    market = exchange.market(ticker)
    if market.status is not MarketStatus.DETERMINED:
        raise EngineError(400, "invalid_parameters", "market is not determined", ticker)
    yes_wins = market.result == "yes"
    for account in exchange.accounts.values():
        position = account.positions.pop(ticker, None)
        if position is None:
            continue
        held = position.position
        won = held if yes_wins else -held  # contracts of the winning side held
        payout = max(won, 0) * ONE_DOLLAR
        if market.result == "void":
            payout = position.cost
        account.cash += payout
        account.settlements.append(
            Settlement(
                seq=exchange.next_seq(),
                ticker=ticker,
                event_ticker=market.event_ticker,
                result=market.result,
                yes_count=max(held, 0),
                yes_cost=position.cost if held > 0 else 0,
                no_count=max(-held, 0),
                no_cost=position.cost if held < 0 else 0,
                revenue=payout,
                settled_ms=now_ms,
            )
        )
        if held:
            closed = copy.copy(position)
            closed.realized_pnl += payout - position.cost
            closed.position = 0
            closed.cost = 0
            closed.updated_ms = now_ms
            exchange.emit(PositionEvent(account.key_id, account.user_id, closed))
    market.open_interest = 0
    market.status = MarketStatus.FINALIZED
    market.settled_ms = now_ms
    market.updated_ms = now_ms
    exchange.emit(LifecycleEvent(ticker, "settled", now_ms, {"settled_ts": _ts_s(now_ms)}))
    exchange.mark_ticker(ticker)


def announce_created(exchange: Exchange, market: Market, now_ms: int) -> None:
    exchange.emit(
        LifecycleEvent(
            market.ticker,
            "created",
            now_ms,
            {
                "open_ts": _ts_s(market.open_ms),
                "close_ts": _ts_s(market.close_ms),
                "exchange_index": 0,
                "additional_metadata": {
                    "title": market.title,
                    "yes_sub_title": market.yes_sub_title,
                    "no_sub_title": market.yes_sub_title,
                    "event_ticker": market.event_ticker,
                    "rules_primary": "Simulated market: resolves to the hidden fair value.",
                    "can_close_early": market.can_close_early,
                    "expected_expiration_ts": _ts_s(market.close_ms),
                },
            },
        )
    )


def override_event_fees(
    exchange: Exchange, event_ticker: str, fee_type: object, multiplier: object, now_ms: int
) -> int:
    """An event's fee override changes now (``event_fee_update``): its markets charge the new
    type and multiplier from the next fill on. Returns how many markets changed."""
    if event_ticker not in exchange.events_by_ticker:
        raise EngineError(404, "not_found", "event not found", event_ticker)
    kind = FeeType.parse(fee_type) if fee_type is not None else None
    if kind is FeeType.UNKNOWN:
        raise EngineError(400, "invalid_parameters", "unknown fee type", str(fee_type))
    pct = None
    if multiplier is not None:
        pct = parse_count(multiplier, what="fee_multiplier")
    changed = 0
    for market in exchange.markets.values():
        if market.event_ticker != event_ticker:
            continue
        market.fee_type = kind or market.fee_type
        market.fee_multiplier_pct = market.fee_multiplier_pct if pct is None else pct
        changed += 1
    event = exchange.events_by_ticker[event_ticker]
    event.fee_type_override = None if kind is None else kind.value
    event.fee_multiplier_override = None if pct is None else pct
    exchange.emit(
        LifecycleEvent(
            "",
            "event_fee_update",
            now_ms,
            {
                "event_ticker": event_ticker,
                "fee_type_override": event.fee_type_override,
                "fee_multiplier_override": None if pct is None else pct / 100,
            },
        )
    )
    return changed


def schedule_series_fee_change(
    exchange: Exchange, series_ticker: str, fee_type: object, multiplier: object, at_ms: int
) -> FeeChange:
    """A fee change of a series, announced now (``GET /series/fee_changes``) and applied to its
    markets at ``at_ms`` (``apply_fee_changes``)."""
    if series_ticker not in exchange.series:
        raise EngineError(404, "not_found", "series not found", series_ticker)
    kind = FeeType.parse(fee_type)
    if kind is FeeType.UNKNOWN:
        raise EngineError(400, "invalid_parameters", "unknown fee type", str(fee_type))
    change = FeeChange(
        exchange.new_id("group"),
        series_ticker,
        kind,
        parse_count(multiplier, what="multiplier"),
        at_ms,
    )
    exchange.fee_changes.append(change)
    return change


def apply_fee_changes(exchange: Exchange, now_ms: int) -> int:
    """Every announced fee change whose time has come, applied to its series' markets."""
    applied = 0
    for change in exchange.fee_changes:
        if change.applied or change.scheduled_ms > now_ms:
            continue
        change.applied = True
        # a copy: the catalog's Series objects are shared by every exchange of the process
        series = copy.copy(exchange.series[change.series_ticker])
        series.fee_type, series.fee_multiplier_pct = change.fee_type, change.multiplier_pct
        exchange.series[change.series_ticker] = series
        for market in exchange.markets.values():
            if market.series_ticker == change.series_ticker:
                market.fee_type, market.fee_multiplier_pct = change.fee_type, change.multiplier_pct
        applied += 1
    return applied
