"""What dora is doing, read from Redis: processes, markets, risk, recent fills.

``gather`` takes one consistent-enough snapshot (a few pipelined reads); ``render`` turns it into
the terminal view that ``dora status`` and ``dora demo`` show. Everything displayed comes from the
keys of DESIGN.md §3, so what you see here is what ``redis-cli`` would show.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.domain import Side
from common.errors import ConfigError, SchemaError
from common.keys import SERVICES, SHARDED_SERVICES, Keys
from common.messages import decode_event
from common.numbers import format_count, format_price, money_to_dollars_display
from common.redis_codec import (
    decode_book,
    decode_exchange,
    decode_global_config,
    decode_heartbeat,
    decode_order,
    decode_position,
    decode_risk,
)
from common.redis_reads import readable


def trading_enabled(fields: dict[str, str]) -> bool:
    """The global switch as the processes read it (``decode_global_config``); a global config
    that does not read is not taken for "off" here (the processes keep their last good one)."""
    if not fields:
        return True
    try:
        return decode_global_config(fields).trading_enabled
    except ConfigError:
        return True


async def gather(redis: aioredis.Redis, keys: Keys, fills: int = 8) -> dict[str, Any]:
    """The status snapshot. A value that cannot be read (wrong type, fields that do not decode)
    spoils only its own market or panel: it is named in ``errors`` (and the market's ``corrupt``)
    and everything else is shown as usual."""
    now_ms = int(time.time() * 1000)
    errors: list[str] = []
    try:
        tickers = sorted(await redis.smembers(keys.cfg_markets))
    except ResponseError as exc:  # a wrong type: no market list, the rest is still worth seeing
        errors.append(f"{keys.cfg_markets}: {exc}")
        tickers = []
    hb_keys = [k async for k in redis.scan_iter(match=keys.pattern("hb"), count=100)]
    pipe = redis.pipeline(transaction=False)
    for key in hb_keys:
        pipe.get(key)
    pipe.hgetall(keys.risk)
    for t in tickers:
        pipe.hgetall(keys.cfg_market(t))
        pipe.hgetall(keys.book(t))
        pipe.hgetall(keys.pos(t))
        pipe.hgetall(keys.orders(t))
        pipe.hgetall(keys.targets(t))
        pipe.hget(keys.market(t), "unquotable_reason")
    pipe.xrevrange(keys.stream("fills"), count=fills * 3)
    pipe.hgetall(keys.cfg_invalid)
    pipe.hgetall(keys.exchange)
    pipe.hgetall(keys.cfg_global)
    # a WRONGTYPE answer comes back in its place instead of failing every other read
    results = await pipe.execute(raise_on_error=False)
    processes: dict[str, Any] = {name: {"alive": False} for name in SERVICES}
    for key, value in zip(hb_keys, results[: len(hb_keys)], strict=True):
        name = keys.ticker_of(key, "hb")
        problem: list[str] = []
        value = readable(key, value, None, problem)
        try:
            beat = decode_heartbeat(value) if value else {}
            age_ms = now_ms - int(beat.get("ts_ms", now_ms))
        except (SchemaError, TypeError, ValueError) as exc:
            problem.append(f"{key}: {exc}")
        if problem:
            errors.extend(problem)
            processes[name] = {"alive": False, "error": problem[0]}
            continue
        processes[name] = {
            "alive": bool(beat),
            "age_ms": age_ms,
            **{k: v for k, v in beat.items() if k not in ("ts_ms", "host")},
        }
    for name in SHARDED_SERVICES:  # sharded: one heartbeat per shard, ``executor-0``, ...
        if any(other.startswith(f"{name}-") for other in processes):
            processes.pop(name, None)
    rest = results[len(hb_keys) :]
    per = 6  # reads per market above
    markets = []
    for i, ticker in enumerate(tickers):
        entry = _market(keys, ticker, rest[1 + per * i : 1 + per * (i + 1)])
        if entry is not None:
            errors.extend(entry["corrupt"])
            markets.append(entry)
    tail = rest[1 + per * len(tickers) :]
    recent = []
    for entry_id, fields in readable(keys.stream("fills"), tail[0], [], errors):
        with contextlib.suppress(SchemaError, TypeError, ValueError):
            kind, payload = decode_event(fields)
            if kind == "fill":
                for name in ("ts_ms", "count", "price", "position_after"):
                    int(payload.get(name, 0))  # what the view prints: a fill it cannot is left out
                recent.append({"id": entry_id, **payload})
        if len(recent) >= fills:
            break
    exchange = exchange_view(readable(keys.exchange, tail[2], {}, errors), now_ms)
    if exchange.get("error"):
        exchange["error"] = f"{keys.exchange}: {exchange['error']}"
        errors.append(exchange["error"])
    return {
        "ts_ms": now_ms,
        "processes": processes,
        "risk": _risk(keys.risk, rest[0], errors),
        "markets": markets,
        "recent_fills": recent,
        "invalid_config": readable(keys.cfg_invalid, tail[1], {}, errors),
        "exchange": exchange,
        # the global switch (dora config set trading_enabled=false pulls every quote)
        "trading_enabled": trading_enabled(readable(keys.cfg_global, tail[3], {}, errors)),
        "errors": errors,  # every key that could not be read, and why
    }


def _risk(key: str, value: Any, errors: list[str]) -> dict[str, Any]:
    """``dora:risk`` decoded, or ``{"error": why}`` (with ``halted`` when that field reads)."""
    problem: list[str] = []
    fields = readable(key, value, None, problem)
    if fields is not None:
        try:
            return asdict(decode_risk(fields))
        except SchemaError as exc:
            problem.append(f"{key}: {exc}")
    errors.extend(problem)
    out: dict[str, Any] = {"error": problem[0]}
    if fields is not None:
        out.update(halted=fields.get("halted") == "1", reason=str(fields.get("reason") or ""))
    return out


def _market(keys: Keys, ticker: str, values: list[Any]) -> dict[str, Any] | None:
    """One market's row; None for a disabled market without a position. What does not read is
    listed in the row's ``corrupt`` (``"<key>: <why>"``) and the rest of the row still shown."""
    corrupt: list[str] = []
    cfg = readable(keys.cfg_market(ticker), values[0], {}, corrupt)
    book_f = readable(keys.book(ticker), values[1], {}, corrupt)
    pos_f = readable(keys.pos(ticker), values[2], {}, corrupt)
    orders_f = readable(keys.orders(ticker), values[3], {}, corrupt)
    targets_f = readable(keys.targets(ticker), values[4], {}, corrupt)
    unquotable = readable(keys.market(ticker), values[5], "", corrupt)
    if cfg.get("enabled") != "1" and not pos_f and not corrupt:
        return None
    entry: dict[str, Any] = {"ticker": ticker, "enabled": cfg.get("enabled") == "1"}
    if book_f:
        try:
            book = decode_book(ticker, book_f)
        except SchemaError as exc:
            corrupt.append(f"{keys.book(ticker)}: {exc}")
        else:
            entry.update(
                best_bid=book.book.best_bid,
                best_ask=book.book.best_ask,
                stale=book.stale,
                stale_reason=book.stale_reason,
            )
    try:
        position = decode_position(ticker, pos_f)
    except SchemaError as exc:
        corrupt.append(f"{keys.pos(ticker)}: {exc}")
        entry.update(position=None, realized_pnl=None, unrealized_pnl=None)
    else:
        mark = None
        if entry.get("best_bid") is not None and entry.get("best_ask") is not None:
            mark = (entry["best_bid"] + entry["best_ask"]) // 2
        entry.update(
            position=position.position,
            realized_pnl=position.net_realized_pnl,
            unrealized_pnl=position.unrealized_pnl(mark)
            if mark is not None and position.position
            else 0,
        )
    quotes: dict[str, Any] = {}
    for field_name, value in orders_f.items():
        try:
            order = decode_order(value)
        except SchemaError:
            corrupt.append(f"{keys.orders(ticker)}: order {field_name!r} does not decode")
            continue
        if order.status.is_live:
            quotes[order.side.value] = {
                "price": order.price,
                "size": order.remaining,
                "status": order.status.value,
            }
    entry["quotes"] = quotes
    entry["why"] = str(targets_f.get("reason", ""))
    entry["unquotable"] = unquotable or ""  # why the exchange's facts forbid quoting it
    entry["corrupt"] = corrupt
    return entry


def exchange_view(fields: dict[str, str], now_ms: int) -> dict[str, Any]:
    """The exchange's state and next pause as ``dora:exchange`` holds them (marketdata)."""
    try:
        state = decode_exchange(fields)
    except SchemaError as exc:
        return {"known": False, "error": f"exchange state does not decode: {exc}"}
    if state is None:
        return {"known": False}
    pause = state.next_pause
    return {
        "known": True,
        "exchange_active": state.exchange_active,
        "trading_active": state.trading_active,
        "quoting": fields.get("quoting") == "1",
        "reason": fields.get("reason", ""),
        "resume_ms": state.resume_ms,
        "next_pause_start_ms": None if pause is None else pause.start_ms,
        "next_pause_end_ms": None if pause is None else pause.end_ms,
        "next_pause_kind": None if pause is None else pause.why,
        "age_ms": now_ms - state.updated_ms,
    }


def _exchange_line(exchange: dict[str, Any]) -> str:
    if exchange.get("error"):
        return f"exchange: UNREADABLE ({exchange['error']})"
    if not exchange.get("known"):
        return "exchange: not known yet (marketdata writes dora:exchange)"
    state = "trading" if exchange["trading_active"] else "TRADING PAUSED"
    if not exchange["exchange_active"]:
        state = "EXCHANGE PAUSED"
    line = f"exchange: {state}"
    if exchange.get("resume_ms"):
        line += f", resumes ~{_utc(exchange['resume_ms'])}"
    if exchange.get("next_pause_start_ms"):
        line += (
            f"   next pause {_utc(exchange['next_pause_start_ms'])} - "
            f"{_utc(exchange['next_pause_end_ms'])} ({exchange['next_pause_kind']})"
        )
    if not exchange.get("quoting"):
        line += f"   quotes pulled: {exchange.get('reason') or '?'}"
    return line


def _utc(ms: int) -> str:
    return time.strftime("%a %H:%M:%S UTC", time.gmtime(ms / 1000))


def _px(units: int | None) -> str:
    return "  -   " if units is None else format_price(units)


def render(status: dict[str, Any], title: str = "dora") -> str:
    lines = []
    risk = status["risk"]
    if risk.get("halted"):
        state = "HALTED: " + (risk.get("reason") or "?")
    else:
        state = "risk state UNREADABLE" if risk.get("error") else "trading"
        if not status.get("trading_enabled", True):
            state = "TRADING DISABLED (trading_enabled=false)"
    lines.append(f"{title}  {time.strftime('%H:%M:%S')}   {state}")
    if risk.get("error"):
        lines.append(f"daily PnL, exposure: unreadable ({risk['error']})")
    else:
        lines.append(
            f"daily PnL {money_to_dollars_display(risk['daily_pnl'])}   realized "
            f"{money_to_dollars_display(risk['realized_pnl'])}   unrealized "
            f"{money_to_dollars_display(risk['unrealized_pnl'])}   "
            f"fees {money_to_dollars_display(risk['fees'])}   "
            f"exposure {money_to_dollars_display(risk['total_exposure'])}"
        )
    procs = []
    for name, info in sorted(status["processes"].items()):
        procs.append(f"{name} {'up' if info.get('alive') else 'DOWN'}")
    lines.append("processes: " + ", ".join(procs))
    for name, info in sorted(status["processes"].items()):
        if info.get("error"):
            lines.append(f"heartbeat of {name} unreadable: {info['error']}")
    lines.append(_exchange_line(status.get("exchange", {})))
    lines.append("")
    lines.append(
        f"{'market':<26} {'bid':>6} {'ask':>6}   {'our bid':>12} {'our ask':>12} {'pos':>7} "
        f"{'PnL':>9}  why"
    )
    for m in status["markets"]:
        quotes = m["quotes"]
        ours = []
        for side in (Side.BID.value, Side.ASK.value):
            q = quotes.get(side)
            ours.append(
                f"{format_count(q['size']).rstrip('0').rstrip('.')}@{format_price(q['price'])[1:]}"
                if q
                else "-"
            )
        stale = " STALE" if m.get("stale") else ""
        if m.get("unquotable"):
            stale += f" NOT QUOTED: {m['unquotable']}"
        if m.get("corrupt"):
            stale += " CORRUPT: " + "; ".join(m["corrupt"])
        if m["position"] is None:  # the position does not read: nothing to show but a mark
            position, pnl = "?", "?"
        else:
            position = format_count(m["position"]).rstrip("0").rstrip(".")
            pnl = money_to_dollars_display(m["realized_pnl"] + m["unrealized_pnl"])
        lines.append(
            f"{m['ticker']:<26} {_px(m.get('best_bid')):>6} {_px(m.get('best_ask')):>6}   {ours[0]:>12} "
            f"{ours[1]:>12} {position:>7} {pnl:>9}  {m['why']}{stale}"
        )
    if status["invalid_config"]:
        lines.append("")
        for ticker, reason in sorted(status["invalid_config"].items()):
            lines.append(f"invalid config {ticker}: {reason}")
    shown = {e for m in status["markets"] for e in m["corrupt"]}
    shown |= {p["error"] for p in status["processes"].values() if p.get("error")}
    shown |= {status["risk"].get("error"), status.get("exchange", {}).get("error")}
    others = [e for e in status.get("errors", []) if e not in shown]
    if others:  # the ones not already on a market's row or above
        lines.append("")
        lines.extend(f"unreadable {e}" for e in others)
    lines.append("")
    lines.append("recent fills:")
    for f in status["recent_fills"]:
        when = time.strftime("%H:%M:%S", time.gmtime(int(f.get("ts_ms", 0)) / 1000))
        lines.append(
            f"  {when} {f.get('ticker', ''):<26} {f.get('side', ''):>3} "
            f"{format_count(int(f.get('count', 0)))} @ {format_price(int(f.get('price', 0)))}"
            f"  position {format_count(int(f.get('position_after', 0)))}"
        )
    if not status["recent_fills"]:
        lines.append("  (none yet)")
    return "\n".join(lines)
