"""What the dashboard shows, read from Redis: one ``SMEMBERS`` and one pipeline per tick.

``read_raw`` (``services.web.raw``) fetches the keys of DESIGN.md §3 as they are; ``build_view``
(pure) turns them into the JSON-ready view the page renders. Every number stays an integer in dora's units (prices in
1/10,000 $, counts in 1/100 contract, money in 1/1,000,000 $); the page formats them. PnL is
computed as ``dora status`` computes it (net realized plus the position marked to the mid), so
the two always agree.

Anything that does not decode affects only its own row or panel, never the whole view: a
dashboard that goes blank on one bad hash is no use in the moment it is needed. A key of the wrong
type (a person's ``SET`` where dora keeps a hash) reads as ``None`` with the reason in ``errors``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from common.config import GlobalConfig
from common.errors import ConfigError, SchemaError
from common.messages import decode_event
from common.numbers import NumberError, parse_money
from common.redis_codec import (
    decode_global_config,
    decode_heartbeat,
    decode_market_config,
    decode_order,
    decode_position,
    decode_risk,
    decode_targets,
)
from services.web.raw import BOOK_FIELDS, MARKET_FIELDS, RECENT_FILLS, RawState, read_raw

__all__ = ["RawState", "ViewBuilder", "build_view", "market_row", "read_raw"]


class ViewBuilder:
    """``build_view`` with a memory: a market whose values did not change since the last tick
    keeps its row (most of 500 markets, most ticks), and the slow keys are handed back to
    ``read_raw`` between full reads."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[Sequence[Any], dict[str, Any]]] = {}

    @property
    def slow(self) -> dict[str, tuple[Mapping[str, str], Sequence[str | None]]]:
        return {  # a market whose config or facts did not read is read again
            ticker: (values[0], values[2])
            for ticker, (values, _) in self.last.items()
            if values[0] is not None and values[2] is not None
        }

    def build(self, raw: RawState) -> dict[str, Any]:
        last, rows = {}, []
        for ticker, values in zip(raw.tickers, raw.markets, strict=True):
            seen = self.last.get(ticker)
            row = seen[1] if seen is not None and seen[0] == values else market_row(ticker, *values)
            last[ticker] = (values, row)
            rows.append(row)
        self.last = last
        return build_view(raw, rows)


# ---- the view (pure) -------------------------------------------------------------------------


def build_view(raw: RawState, rows: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The view of ``raw``; ``rows``: its market rows when already built (``ViewBuilder``)."""
    limits = _limits(raw.cfg_global)
    markets = (
        list(rows)
        if rows is not None
        else [
            market_row(ticker, *values)
            for ticker, values in zip(raw.tickers, raw.markets, strict=True)
        ]
    )
    return {
        "ts_ms": raw.now_ms,
        "risk": _risk(raw.risk, raw.risk_error),
        "limits": limits,
        "events": _events(raw.risk or {}, limits),
        "exchange": dict(raw.exchange) or None,
        "processes": _processes(raw.heartbeats, raw.now_ms, raw.heartbeat_errors),
        "persister_lag": _json_or_none(raw.persister_lag),
        "invalid_config": dict(raw.cfg_invalid),
        "markets": markets,
        "fills": _events_of(raw.fills, "fill")[:RECENT_FILLS],
        "orders": _events_of(raw.orders, "order"),
        # every key that could not be read or decoded, and why (the rows' own among them)
        "errors": [*raw.errors, *(e for row in markets for e in row["corrupt"])],
    }


def _int_or_none(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def _json_or_none(value: str | None) -> Any:
    if not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def _risk(fields: Mapping[str, str] | None, unreadable: str) -> dict[str, Any]:
    if fields is None:  # halted or not is not known: the page says the risk state is unreadable
        return {"error": unreadable, "halted": None}
    try:
        state = decode_risk(fields)
    except SchemaError as exc:
        return {"error": str(exc), "halted": fields.get("halted") == "1"}
    return {
        "halted": state.halted,
        "reason": state.reason,
        "halted_ms": state.halted_ms,
        "daily_pnl": state.daily_pnl,
        "realized_pnl": state.realized_pnl,
        "unrealized_pnl": state.unrealized_pnl,
        "fees": state.fees,
        "total_exposure": state.total_exposure,
        "day": state.day,
        "last_check_ms": state.last_check_ms,
    }


def _limits(fields: Mapping[str, str]) -> dict[str, Any]:
    """The global limits as the mirror holds them (defaults until the first mirror)."""
    known = {k: v for k, v in fields.items() if k in GlobalConfig.FIELDS}
    out: dict[str, Any] = {"version": _int_or_none(fields.get("version")), "error": ""}
    try:
        config = decode_global_config(known)
    except ConfigError as exc:
        config, out["error"] = GlobalConfig(), str(exc)
    out.update(
        max_daily_loss=config.max_daily_loss,
        max_total_exposure=config.max_total_exposure,
        trading_enabled=config.trading_enabled,
        loop_interval_ms=config.loop_interval_ms,
        max_event_loss=_money_or_none(fields.get("max_event_loss")),
    )
    return out


def _money_or_none(value: str | None) -> int | None:
    if not value:
        return None
    with contextlib.suppress(NumberError):
        return parse_money(value)
    return None


def _events(risk: Mapping[str, str], limits: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Per-event worst loss against ``max_event_loss``, when the risk process records it: a JSON
    ``events`` field of ``dora:risk`` mapping each event to ``worst_loss`` (and its own
    ``limit`` when it has an override), money units. None until then."""
    data = _json_or_none(risk.get("events"))
    if not isinstance(data, dict):
        return None
    rows = []
    for event, entry in sorted(data.items()):
        if not isinstance(entry, dict):
            continue
        rows.append(
            {
                "event": str(event),
                "worst_loss": _int_or_none(entry.get("worst_loss")),
                "limit": _int_or_none(entry.get("limit")) or limits.get("max_event_loss"),
            }
        )
    return rows


def _processes(
    beats: Mapping[str, str | None], now_ms: int, unreadable: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, value in beats.items():
        if name in unreadable:
            out[name] = {"alive": False, "error": unreadable[name]}
            continue
        if not value:
            out[name] = {"alive": False}
            continue
        try:
            beat = decode_heartbeat(value)
        except SchemaError:
            out[name] = {"alive": True, "error": "heartbeat does not decode"}
            continue
        out[name] = {
            "alive": True,
            "age_ms": now_ms - (_int_or_none(beat.get("ts_ms")) or now_ms),
            "pid": beat.get("pid"),
            "status": beat.get("status", ""),
            "lags": {k: v for k, v in beat.items() if k.endswith("_lag_ms") and isinstance(v, int)},
            "api_errors": beat.get("api_errors", 0),
        }
    return out


def _live_quotes(orders: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per side, the live order updated last (as ``dora status`` shows it) and how many live."""
    quotes: dict[str, dict[str, Any]] = {}
    for value in orders.values():
        with contextlib.suppress(SchemaError):
            order = decode_order(value)
            if not order.status.is_live:
                continue
            side = order.side.value
            seen = quotes.get(side)
            live = 1 + (seen["live"] if seen else 0)
            if seen is None or order.updated_ms >= seen["updated_ms"]:
                seen = {
                    "price": order.price,
                    "size": order.remaining,
                    "status": order.status.value,
                    "updated_ms": order.updated_ms,
                }
            quotes[side] = {**seen, "live": live}
    return quotes


def market_row(
    ticker: str,
    cfg: Mapping[str, str] | None,
    book: Sequence[str | None] | None,
    market: Sequence[str | None] | None,
    pos: Mapping[str, str] | None,
    orders: Mapping[str, str] | None,
    targets: Mapping[str, str] | None,
    unreadable: Sequence[str] = (),
) -> dict[str, Any]:
    """One market's row. A value that could not be read (None, the reason in ``unreadable``)
    leaves its cells empty and is named in ``corrupt`` and ``error``; the rest is shown."""
    corrupt = list(unreadable)
    cfg, orders, targets = cfg or {}, orders or {}, targets or {}
    market = market or (None,) * len(MARKET_FIELDS)
    best_bid, bid_size, best_ask, ask_size, stale, stale_reason = book or (None,) * len(BOOK_FIELDS)
    row: dict[str, Any] = {
        "ticker": ticker,
        "enabled": cfg.get("enabled") == "1",
        "status": market[0] or "",
        "close_ms": _int_or_none(market[1]),
        "bid": _int_or_none(best_bid),
        "bid_size": _int_or_none(bid_size),
        "ask": _int_or_none(best_ask),
        "ask_size": _int_or_none(ask_size),
        "stale": stale == "1",
        "stale_reason": stale_reason or "",
        "quotes": _live_quotes(orders),
        "error": "",
        "corrupt": corrupt,
    }
    try:
        config = decode_market_config(ticker, cfg)
        row.update(
            cap_yes=config.max_inventory_yes,
            cap_no=config.max_inventory_no,
            quote_size=config.quote_size,
        )
    except ConfigError as exc:
        row.update(cap_yes=None, cap_no=None, quote_size=None, error=str(exc))
    try:
        if pos is None:
            raise SchemaError("position could not be read")
        position = decode_position(ticker, pos)
    except SchemaError as exc:
        row.update(position=None, realized_pnl=None, unrealized_pnl=None, pnl=None, fees=None)
        row["error"] = str(exc)
    else:
        mark = None
        if row["bid"] is not None and row["ask"] is not None:
            mark = (row["bid"] + row["ask"]) // 2
        unrealized = position.unrealized_pnl(mark) if mark is not None and position.position else 0
        row.update(
            position=position.position,
            realized_pnl=position.net_realized_pnl,
            unrealized_pnl=unrealized,
            pnl=position.net_realized_pnl + unrealized,
            fees=position.fees,
            gross_realized_pnl=position.realized_pnl,
        )
    row.update(_targets(ticker, targets))
    if corrupt:  # the tag's tooltip: what could not be read comes first
        row["error"] = "; ".join(corrupt) + (f"; {row['error']}" if row["error"] else "")
    return row


def _targets(ticker: str, fields: Mapping[str, str]) -> dict[str, Any]:
    if not fields:
        return {"reason": "", "target_bid": None, "target_ask": None, "fair": None}
    try:
        targets = decode_targets(ticker, fields)
    except SchemaError as exc:
        why = f"targets do not decode: {exc}"
        return {"reason": why, "target_bid": None, "target_ask": None, "fair": None}
    return {
        "reason": targets.reason,
        "fair": targets.fair_price,
        "target_bid": None
        if targets.bid is None
        else {"price": targets.bid.price, "size": targets.bid.size, "why": targets.bid.reason},
        "target_ask": None
        if targets.ask is None
        else {"price": targets.ask.price, "size": targets.ask.size, "why": targets.ask.reason},
    }


def _events_of(entries: Sequence[tuple[str, Mapping[str, Any]]], kind: str) -> list[Any]:
    """Stream entries of ``kind`` as their payloads, newest first, each with its entry id."""
    out = []
    for entry_id, fields in entries:
        with contextlib.suppress(SchemaError):
            found, payload = decode_event(fields)
            if found == kind:
                out.append({"id": entry_id, **payload})
    return out
