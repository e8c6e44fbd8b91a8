"""How each Redis hash and string value is encoded (the names are in ``common.keys``).

Values stay readable with ``redis-cli``: hashes hold plain fields (integers in dora's units:
prices in 1/10,000 $, counts in 1/100 contract, money in 1/1,000,000 $), structured values are
JSON (orjson), never pickle. Each ``encode_*``/``decode_*`` pair owns one shape; a value that does
not decode raises ``SchemaError``. Stream entries and control messages are in ``common.messages``.
docs/redis.md shows every key and value to operators.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from common.book import BookState, YesBook
from common.calendar import ExchangeState, Pause, QuotingState
from common.config import GlobalConfig, MarketConfig
from common.domain import (
    MarketMeta,
    MarketStatus,
    Order,
    OrderStatus,
    Position,
    Quote,
    RiskState,
    Side,
    Targets,
    halt_in_force,
    resumed_or_legacy,
)
from common.errors import SchemaError
from common.fair_inputs import ExternalFair
from common.fees import parse_fee_type
from common.grid import PriceGrid
from common.marks import Mark, SeenBook

BOOK_DEPTH_LEVELS = 10


# ---- small field helpers -------------------------------------------------------------------


def _int(fields: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = fields.get(name)
    if value is None or value == "":
        if default is not None:
            return default
        raise SchemaError(f"field {name!r} is missing")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SchemaError(f"field {name!r} must be an integer, was {value!r}") from None


def _opt_int(fields: Mapping[str, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    return _int(fields, name)


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _str_or_empty(value: int | None) -> str:
    return "" if value is None else str(value)


# ---- book ----------------------------------------------------------------------------------


def encode_book(state: BookState) -> dict[str, str]:
    bids, asks = state.book.depth(BOOK_DEPTH_LEVELS)
    return {
        "best_bid": _str_or_empty(state.book.best_bid),
        "best_bid_size": str(state.book.best_bid_size),
        "best_ask": _str_or_empty(state.book.best_ask),
        "best_ask_size": str(state.book.best_ask_size),
        "depth": orjson.dumps({"bids": bids, "asks": asks}).decode(),
        "seq": str(state.seq),
        "exchange_ms": str(state.exchange_ms),
        "received_ms": str(state.received_ms),
        "stale": _flag(state.stale),
        "stale_reason": state.stale_reason,
    }


def decode_book(ticker: str, fields: Mapping[str, Any]) -> BookState:
    if not fields:
        raise SchemaError(f"no book for {ticker}")
    try:
        depth = orjson.loads(fields.get("depth") or "{}")
        book = YesBook(
            tuple((int(p), int(q)) for p, q in depth.get("bids", ())),
            tuple((int(p), int(q)) for p, q in depth.get("asks", ())),
        )
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        raise SchemaError(
            f"book depth of {ticker} does not decode: {fields.get('depth')!r}"
        ) from None
    return BookState(
        ticker=ticker,
        book=book,
        seq=_int(fields, "seq", 0),
        exchange_ms=_int(fields, "exchange_ms", 0),
        received_ms=_int(fields, "received_ms", 0),
        stale=fields.get("stale") == "1",
        stale_reason=str(fields.get("stale_reason") or ""),
    )


# ---- market meta ---------------------------------------------------------------------------


def encode_market(meta: MarketMeta) -> dict[str, str]:
    return {
        "status": meta.status.value,
        "close_ms": str(meta.close_ms),
        "price_ranges": orjson.dumps(meta.grid.to_price_ranges()).decode(),
        "fee_type": meta.fee_type.value,
        "fee_multiplier_pct": str(meta.fee_multiplier_pct),
        "updated_ms": str(meta.updated_ms),
        "exchange_index": str(meta.exchange_index),
        # why it is not quoted ("" when it is): a closed or paused market, an unknown value
        "unquotable_reason": meta.unquotable_reason,
        "problem": meta.problem,
        "fee_note": meta.fee_note,
        "event_ticker": meta.event_ticker,
        "mutually_exclusive": "1" if meta.mutually_exclusive else "0",
    }


def decode_market(ticker: str, fields: Mapping[str, Any]) -> MarketMeta:
    if not fields:
        raise SchemaError(f"no market meta for {ticker}")
    try:
        grid = PriceGrid.from_price_ranges(orjson.loads(fields.get("price_ranges") or "[]"))
        fee_type = parse_fee_type(fields.get("fee_type") or "quadratic")
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise SchemaError(f"market meta of {ticker} does not decode: {exc}") from None
    return MarketMeta(
        ticker=ticker,
        status=MarketStatus.parse(fields.get("status")),
        close_ms=_int(fields, "close_ms", 0),
        grid=grid,
        fee_type=fee_type,
        fee_multiplier_pct=_int(fields, "fee_multiplier_pct", 100),
        updated_ms=_int(fields, "updated_ms", 0),
        exchange_index=_int(fields, "exchange_index", 0),
        problem=str(fields.get("problem") or ""),
        fee_note=str(fields.get("fee_note") or ""),
        event_ticker=str(fields.get("event_ticker") or ""),
        mutually_exclusive=fields.get("mutually_exclusive") == "1",
    )


# ---- positions -----------------------------------------------------------------------------


def encode_position(position: Position) -> dict[str, str]:
    return {
        "position": str(position.position),
        "cost": str(position.cost),
        "realized_pnl": str(position.realized_pnl),
        "fees": str(position.fees),
        "last_fill_ms": str(position.last_fill_ms),
    }


def decode_position(ticker: str, fields: Mapping[str, Any]) -> Position:
    return Position(
        ticker=ticker,
        position=_int(fields, "position", 0),
        cost=_int(fields, "cost", 0),
        realized_pnl=_int(fields, "realized_pnl", 0),
        fees=_int(fields, "fees", 0),
        last_fill_ms=_int(fields, "last_fill_ms", 0),
    )


# ---- working orders ------------------------------------------------------------------------


def encode_order(order: Order) -> str:
    return orjson.dumps(
        {
            "ticker": order.ticker,
            "side": order.side.value,
            "price": order.price,
            "count": order.count,
            "client_order_id": order.client_order_id,
            "order_id": order.order_id,
            "status": order.status.value,
            "filled": order.filled,
            "remaining": order.remaining,
            "created_ms": order.created_ms,
            "updated_ms": order.updated_ms,
            "post_only": order.post_only,
            "order_group_id": order.order_group_id,
            "exchange_ms": order.exchange_ms,
        }
    ).decode()


def decode_order(value: str | bytes) -> Order:
    try:
        data = orjson.loads(value)
        return Order(
            ticker=str(data["ticker"]),
            side=Side(data["side"]),
            price=int(data["price"]),
            count=int(data["count"]),
            client_order_id=str(data["client_order_id"]),
            order_id=data.get("order_id"),
            status=OrderStatus(data["status"]),
            filled=int(data.get("filled", 0)),
            remaining=int(data.get("remaining", 0)),
            created_ms=int(data.get("created_ms", 0)),
            updated_ms=int(data.get("updated_ms", 0)),
            post_only=bool(data.get("post_only", True)),
            order_group_id=data.get("order_group_id"),
            exchange_ms=int(data.get("exchange_ms") or 0),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"working order does not decode ({exc}): {value!r}") from None


# ---- targets -------------------------------------------------------------------------------


def encode_targets(targets: Targets) -> dict[str, str]:
    fields = {
        "reason": targets.reason,
        "computed_ms": str(targets.computed_ms),
        "book_ms": str(targets.book_ms),
        "fair_price": _str_or_empty(targets.fair_price),
    }
    for name, quote in (("bid", targets.bid), ("ask", targets.ask)):
        fields[f"{name}_price"] = "" if quote is None else str(quote.price)
        fields[f"{name}_size"] = "" if quote is None else str(quote.size)
        fields[f"{name}_reason"] = "" if quote is None else quote.reason
    return fields


# ---- external fair value --------------------------------------------------------------------


def encode_fv(value: ExternalFair) -> dict[str, str]:
    return {
        "price": str(value.price),
        "ts_ms": str(value.ts_ms),
        "confidence": str(Decimal(value.confidence_pct) / 100),
    }


def decode_fv(fields: Mapping[str, Any]) -> ExternalFair | None:
    """``dora:fv:{ticker}``: ``price`` (1/10,000 $), ``ts_ms``, optional ``confidence`` (0 to 1,
    default 1). None when absent; SchemaError when it does not read."""
    if not fields:
        return None
    confidence = fields.get("confidence")
    pct = 100
    if confidence not in (None, ""):
        try:
            share = Decimal(str(confidence))
        except InvalidOperation:
            raise SchemaError(f"confidence must be a number, was {confidence!r}") from None
        if not share.is_finite() or not 0 <= share <= 1:
            raise SchemaError(f"confidence must be between 0 and 1, was {confidence!r}")
        pct = int(share * 100)
    return ExternalFair(_int(fields, "price"), _int(fields, "ts_ms"), pct)


def decode_targets(ticker: str, fields: Mapping[str, Any]) -> Targets:
    quotes: dict[str, Quote | None] = {}
    for name, side in (("bid", Side.BID), ("ask", Side.ASK)):
        price = _opt_int(fields, f"{name}_price")
        size = _opt_int(fields, f"{name}_size")
        quotes[name] = (
            None
            if price is None or not size
            else Quote(side, price, size, str(fields.get(f"{name}_reason") or ""))
        )
    return Targets(
        ticker=ticker,
        bid=quotes["bid"],
        ask=quotes["ask"],
        reason=str(fields.get("reason") or ""),
        computed_ms=_int(fields, "computed_ms", 0),
        book_ms=_int(fields, "book_ms", 0),
        fair_price=_opt_int(fields, "fair_price"),
    )


# ---- config mirror -------------------------------------------------------------------------


def encode_market_config(config: MarketConfig, version: int) -> dict[str, str]:
    item = config.to_item()
    item.pop("market_id")
    fields = {k: (_flag(v) if isinstance(v, bool) else str(v)) for k, v in item.items()}
    fields["version"] = str(version)
    return fields


def decode_market_config(ticker: str, fields: Mapping[str, Any]) -> MarketConfig:
    item = {k: v for k, v in fields.items() if k != "version"}
    return MarketConfig.from_item(item, ticker)


def encode_global_config(config: GlobalConfig, version: int) -> dict[str, str]:
    fields = {k: (_flag(v) if isinstance(v, bool) else str(v)) for k, v in config.to_item().items()}
    fields["version"] = str(version)
    return fields


def decode_global_config(fields: Mapping[str, Any]) -> GlobalConfig:
    return GlobalConfig.from_item({k: v for k, v in fields.items() if k != "version"})


# ---- risk ----------------------------------------------------------------------------------


def encode_risk(state: RiskState) -> dict[str, str]:
    return {
        "halted": _flag(state.halted),
        "reason": state.reason,
        "halted_ms": str(state.halted_ms),
        "daily_pnl": str(state.daily_pnl),
        "realized_pnl": str(state.realized_pnl),
        "unrealized_pnl": str(state.unrealized_pnl),
        "fees": str(state.fees),
        "total_exposure": str(state.total_exposure),
        "day": state.day,
        "last_check_ms": str(state.last_check_ms),
        "day_start_pnl": str(state.day_start_pnl),
        "check_failures": str(state.check_failures),
        "check_error": state.check_error,
        "resumed_ms": str(state.resumed_ms),
    }


def decode_risk(fields: Mapping[str, Any]) -> RiskState:
    """``halted``: the halt as in force (``halt_in_force``), whatever the flag was edited to; a
    hash without ``resumed_ms`` (written before it existed) is read by its flag
    (``resumed_or_legacy``)."""
    flag, halted_ms = fields.get("halted") == "1", _int(fields, "halted_ms", 0)
    resumed_ms = resumed_or_legacy(_opt_int(fields, "resumed_ms"), flag, halted_ms)
    return RiskState(
        halted=halt_in_force(flag, halted_ms, resumed_ms),
        reason=str(fields.get("reason") or ""),
        halted_ms=halted_ms,
        daily_pnl=_int(fields, "daily_pnl", 0),
        realized_pnl=_int(fields, "realized_pnl", 0),
        unrealized_pnl=_int(fields, "unrealized_pnl", 0),
        fees=_int(fields, "fees", 0),
        total_exposure=_int(fields, "total_exposure", 0),
        day=str(fields.get("day") or ""),
        last_check_ms=_int(fields, "last_check_ms", 0),
        day_start_pnl=_int(fields, "day_start_pnl", 0),
        check_failures=_int(fields, "check_failures", 0),
        check_error=str(fields.get("check_error") or ""),
        resumed_ms=resumed_ms,
    )


# ---- marks ---------------------------------------------------------------------------------


def encode_mark(mark: Mark) -> str:
    seen = mark.seen
    return orjson.dumps(
        {
            "price": mark.price,
            "source": mark.source,
            "ms": seen.ms,
            "best_bid": seen.best_bid,
            "best_ask": seen.best_ask,
        }
    ).decode()


def decode_mark(value: str | bytes) -> Mark:
    try:
        data = orjson.loads(value)
        seen = SeenBook(
            None if data.get("best_bid") is None else int(data["best_bid"]),
            None if data.get("best_ask") is None else int(data["best_ask"]),
            int(data["ms"]),
        )
        return Mark(int(data["price"]), str(data["source"]), seen)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SchemaError(f"mark does not decode ({exc}): {value!r}") from None


# ---- the exchange's calendar ---------------------------------------------------------------


def encode_exchange(state: ExchangeState, quoting: QuotingState) -> dict[str, str]:
    pause = state.next_pause
    return {
        "exchange_active": _flag(state.exchange_active),
        "trading_active": _flag(state.trading_active),
        "resume_ms": "" if state.resume_ms is None else str(state.resume_ms),
        "next_pause_start_ms": "" if pause is None else str(pause.start_ms),
        "next_pause_end_ms": "" if pause is None else str(pause.end_ms),
        "next_pause_kind": "" if pause is None else pause.why,
        "quoting": _flag(quoting.may_quote),  # as marketdata saw it when it wrote this
        "reason": quoting.reason,
        "updated_ms": str(state.updated_ms),
    }


def decode_exchange(fields: Mapping[str, Any]) -> ExchangeState | None:
    """None when marketdata has not written it yet (nothing known: nothing assumed)."""
    if not fields:
        return None
    start, end = fields.get("next_pause_start_ms"), fields.get("next_pause_end_ms")
    pause = None
    if start and end:
        pause = Pause(
            _int(fields, "next_pause_start_ms"),
            _int(fields, "next_pause_end_ms"),
            str(fields.get("next_pause_kind") or "schedule"),
        )
    return ExchangeState(
        exchange_active=fields.get("exchange_active") != "0",
        trading_active=fields.get("trading_active") != "0",
        resume_ms=_int(fields, "resume_ms") if fields.get("resume_ms") else None,
        next_pause=pause,
        updated_ms=_int(fields, "updated_ms", 0),
    )


# ---- heartbeats ----------------------------------------------------------------------------


def encode_heartbeat(pid: int, now_ms: int, status: str, detail: Mapping[str, Any]) -> str:
    return orjson.dumps({"pid": pid, "ts_ms": now_ms, "status": status, **detail}).decode()


def decode_heartbeat(value: str | bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise SchemaError(f"heartbeat does not decode: {value!r}") from None
    if not isinstance(data, dict) or "ts_ms" not in data:
        raise SchemaError(f"heartbeat has no ts_ms: {value!r}")
    return data
