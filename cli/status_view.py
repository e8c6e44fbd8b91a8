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

from common.domain import Side
from common.errors import SchemaError
from common.keys import SERVICES, SHARDED_SERVICES, Keys
from common.messages import decode_event
from common.numbers import format_count, format_price, money_to_dollars_display
from common.redis_codec import (
    decode_book,
    decode_exchange,
    decode_heartbeat,
    decode_order,
    decode_position,
    decode_risk,
)


async def gather(redis: aioredis.Redis, keys: Keys, fills: int = 8) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    tickers = sorted(await redis.smembers(keys.cfg_markets))
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
    results = await pipe.execute()
    processes: dict[str, Any] = {name: {"alive": False} for name in SERVICES}
    for key, value in zip(hb_keys, results[: len(hb_keys)], strict=True):
        name = keys.ticker_of(key, "hb")
        with contextlib.suppress(SchemaError):
            beat = decode_heartbeat(value) if value else {}
            processes[name] = {
                "alive": bool(beat),
                "age_ms": now_ms - int(beat.get("ts_ms", now_ms)),
                **{k: v for k, v in beat.items() if k not in ("ts_ms", "host")},
            }
    for name in SHARDED_SERVICES:  # sharded: one heartbeat per shard, ``executor-0``, ...
        if any(other.startswith(f"{name}-") for other in processes):
            processes.pop(name, None)
    rest = results[len(hb_keys) :]
    risk = decode_risk(rest[0])
    markets = []
    per = 6  # reads per market above
    for i, ticker in enumerate(tickers):
        cfg, book_f, pos_f, orders_f, targets_f, unquotable = rest[1 + per * i : 1 + per * (i + 1)]
        if cfg.get("enabled") != "1" and not pos_f:
            continue
        entry: dict[str, Any] = {"ticker": ticker, "enabled": cfg.get("enabled") == "1"}
        with contextlib.suppress(SchemaError):
            book = decode_book(ticker, book_f) if book_f else None
            if book is not None:
                entry.update(
                    best_bid=book.book.best_bid,
                    best_ask=book.book.best_ask,
                    stale=book.stale,
                    stale_reason=book.stale_reason,
                )
        position = decode_position(ticker, pos_f)
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
        for value in orders_f.values():
            with contextlib.suppress(SchemaError):
                order = decode_order(value)
                if order.status.is_live:
                    quotes[order.side.value] = {
                        "price": order.price,
                        "size": order.remaining,
                        "status": order.status.value,
                    }
        entry["quotes"] = quotes
        entry["why"] = targets_f.get("reason", "")
        entry["unquotable"] = unquotable or ""  # why the exchange's facts forbid quoting it
        markets.append(entry)
    recent = []
    for entry_id, fields in rest[1 + per * len(tickers)]:
        with contextlib.suppress(SchemaError):
            kind, payload = decode_event(fields)
            if kind == "fill":
                recent.append({"id": entry_id, **payload})
        if len(recent) >= fills:
            break
    return {
        "ts_ms": now_ms,
        "processes": processes,
        "risk": asdict(risk),
        "markets": markets,
        "recent_fills": recent,
        "invalid_config": rest[2 + per * len(tickers)],
        "exchange": exchange_view(rest[3 + per * len(tickers)], now_ms),
    }


def exchange_view(fields: dict[str, str], now_ms: int) -> dict[str, Any]:
    """The exchange's state and next pause as ``dora:exchange`` holds them (marketdata)."""
    state = decode_exchange(fields)
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
    halted = "HALTED: " + (risk["reason"] or "?") if risk["halted"] else "trading"
    lines.append(f"{title}  {time.strftime('%H:%M:%S')}   {halted}")
    lines.append(
        f"daily PnL {money_to_dollars_display(risk['daily_pnl'])}   realized "
        f"{money_to_dollars_display(risk['realized_pnl'])}   unrealized "
        f"{money_to_dollars_display(risk['unrealized_pnl'])}   fees {money_to_dollars_display(risk['fees'])}   "
        f"exposure {money_to_dollars_display(risk['total_exposure'])}"
    )
    procs = []
    for name, info in sorted(status["processes"].items()):
        procs.append(f"{name} {'up' if info.get('alive') else 'DOWN'}")
    lines.append("processes: " + ", ".join(procs))
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
        pnl = money_to_dollars_display(m["realized_pnl"] + m["unrealized_pnl"])
        lines.append(
            f"{m['ticker']:<26} {_px(m.get('best_bid')):>6} {_px(m.get('best_ask')):>6}   {ours[0]:>12} "
            f"{ours[1]:>12} {format_count(m['position']).rstrip('0').rstrip('.'):>7} {pnl:>9}  "
            f"{m['why']}{stale}"
        )
    if status["invalid_config"]:
        lines.append("")
        for ticker, reason in sorted(status["invalid_config"].items()):
            lines.append(f"invalid config {ticker}: {reason}")
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
