"""A synthetic dora state in Redis: N markets as the six processes would leave them.

For the dashboard's benchmark (``bench/bench_web.py``) and its tests: every key of DESIGN.md §3
that the dashboard reads, written with the schema's own encoders (so it decodes exactly as the
real thing), and ``churn`` to move books, positions, quotes and PnL the way a busy account does.
"""

from __future__ import annotations

import random
from typing import Any

import redis.asyncio as aioredis

from common.book import BookState, YesBook
from common.config import GlobalConfig, MarketConfig
from common.domain import (
    Fill,
    MarketMeta,
    MarketStatus,
    Order,
    OrderStatus,
    Position,
    Quote,
    RiskState,
    Side,
    Targets,
)
from common.events import fill_event, order_event
from common.grid import PriceGrid
from common.keys import SERVICES, Keys
from common.redis_codec import (
    encode_book,
    encode_global_config,
    encode_heartbeat,
    encode_market,
    encode_market_config,
    encode_order,
    encode_position,
    encode_risk,
    encode_targets,
)
from common.streams import append

DAY = "2026-12-05"


def ticker_of(i: int) -> str:
    return f"SYN-26DEC31-M{i:03d}"


class World:
    """The markets' current values, kept here so each change is a small step from the last."""

    def __init__(self, markets: int, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.tickers = [ticker_of(i) for i in range(markets)]
        self.mid = {t: self.rng.randrange(1_000, 9_000, 100) for t in self.tickers}
        self.positions = {t: Position(t) for t in self.tickers}
        self.fills = 0

    def book(self, ticker: str, now_ms: int) -> dict[str, str]:
        mid = self.mid[ticker]
        bids = tuple((mid - 100 * (i + 1), 500 * (i + 1)) for i in range(5))
        asks = tuple((mid + 100 * (i + 1), 700 * (i + 1)) for i in range(5))
        return encode_book(BookState(ticker, YesBook(bids, asks), now_ms, now_ms, now_ms, False))

    def orders(self, ticker: str, now_ms: int) -> dict[str, str]:
        mid = self.mid[ticker]
        out = {}
        for side, price in ((Side.BID, mid - 100), (Side.ASK, mid + 100)):
            order = Order(
                ticker, side, price, 500, f"{ticker}-{side.value}", "oid-" + ticker,
                OrderStatus.RESTING, 0, 500, now_ms, now_ms,
            )  # fmt: skip
            out[order.client_order_id] = encode_order(order)
        return out

    def targets(self, ticker: str, now_ms: int) -> dict[str, str]:
        mid = self.mid[ticker]
        bid = Quote(Side.BID, mid - 100, 500, "join best bid")
        ask = Quote(Side.ASK, mid + 100, 500, "join best ask")
        return encode_targets(Targets(ticker, bid, ask, "quoting", now_ms, now_ms, mid))

    def trade(self, ticker: str, now_ms: int) -> Fill:
        side = self.rng.choice((Side.BID, Side.ASK))
        price = self.mid[ticker] + (-100 if side is Side.BID else 100)
        self.fills += 1
        fill = Fill(
            f"f{self.fills}", f"o{self.fills}", ticker, side, price, 100, 700, False, now_ms
        )
        self.positions[ticker] = self.positions[ticker].apply_fill(fill)
        return fill


async def seed(redis: aioredis.Redis, keys: Keys, world: World, now_ms: int) -> None:
    """Write every key the dashboard reads, for every market of ``world``."""
    meta_grid = PriceGrid.uniform(100)
    pipe = redis.pipeline(transaction=False)
    pipe.hset(keys.cfg_global, mapping=encode_global_config(GlobalConfig(), 1))
    risk = RiskState(day=DAY, last_check_ms=now_ms, total_exposure=25_000_000)
    pipe.hset(keys.risk, mapping=encode_risk(risk))
    for name in SERVICES:
        beat = encode_heartbeat(1, now_ms, "running", {"md_lag_ms": 3})
        pipe.set(keys.hb(name), beat, px=600_000)
    for ticker in world.tickers:
        config = MarketConfig(ticker, enabled=True, max_inventory_yes=5_000, max_inventory_no=5_000)
        pipe.sadd(keys.cfg_markets, ticker)
        pipe.hset(keys.cfg_market(ticker), mapping=encode_market_config(config, 1))
        pipe.hset(keys.book(ticker), mapping=world.book(ticker, now_ms))
        meta = MarketMeta(
            ticker, MarketStatus.ACTIVE, now_ms + 86_400_000, meta_grid, updated_ms=now_ms
        )
        pipe.hset(keys.market(ticker), mapping=encode_market(meta))
        pipe.hset(keys.pos(ticker), mapping=encode_position(world.positions[ticker]))
        pipe.hset(keys.orders(ticker), mapping=world.orders(ticker, now_ms))
        pipe.hset(keys.targets(ticker), mapping=world.targets(ticker, now_ms))
    await pipe.execute()


async def churn(
    redis: aioredis.Redis, keys: Keys, world: World, now_ms: int, share_pct: int = 100
) -> int:
    """Move ``share_pct`` % of the markets one tick (book, quotes, targets), with a fill in one
    of ten of them; returns how many markets changed."""
    moved = [t for t in world.tickers if world.rng.randrange(100) < share_pct]
    pipe = redis.pipeline(transaction=False)
    for ticker in moved:
        step = world.rng.choice((-100, 100))
        world.mid[ticker] = min(9_000, max(1_000, world.mid[ticker] + step))
        pipe.hset(keys.book(ticker), mapping=world.book(ticker, now_ms))
        pipe.hset(keys.orders(ticker), mapping=world.orders(ticker, now_ms))
        pipe.hset(keys.targets(ticker), mapping=world.targets(ticker, now_ms))
    await pipe.execute()
    for ticker in moved:
        if world.rng.randrange(10) == 0:
            fill = world.trade(ticker, now_ms)
            position = world.positions[ticker]
            await redis.hset(keys.pos(ticker), mapping=encode_position(position))
            await append(redis, keys, "fills", "fill", fill_event(fill, position))
            order = Order(ticker, fill.side, fill.price, 500, fill.client_order_id or "c", "o")
            await append(redis, keys, "orders", "order", order_event(order, "placed", now_ms))
    return len(moved)


async def add_pnl_point(redis: aioredis.Redis, keys: Keys, now_ms: int, daily_pnl: int) -> Any:
    """One risk snapshot on the pnl stream (what the risk process appends every check)."""
    from common.events import pnl_event

    state = RiskState(day=DAY, daily_pnl=daily_pnl, realized_pnl=daily_pnl, last_check_ms=now_ms)
    return await append(redis, keys, "pnl", "pnl", pnl_event(state, now_ms))
