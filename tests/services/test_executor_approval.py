"""The executor's pass and the backtester's decision step decide alike.

Both run ``common.risk.approve_actions`` unchanged; this feeds each the same market (grid, config,
global limits), position, resting orders, daily PnL and targets, and checks that the executor
sends exactly the actions the backtester approves and denies as many as it does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import redis.asyncio as aioredis

from common.book import BookState, YesBook
from common.config import GlobalConfig, MarketConfig
from common.domain import MarketMeta, Order, OrderStatus, Position, Quote, Side, Targets
from common.kalshi.wire.orders import OrderRequest
from common.keys import Keys
from common.redis_codec import (
    encode_book,
    encode_global_config,
    encode_market,
    encode_market_config,
    encode_order,
    encode_position,
    encode_targets,
)
from common.risk import AccountRisk, worst_case_exposure
from common.settings import Settings
from sim.backtest.engine import BacktestSpec, _Runner
from sim.scenario import load_scenario
from tests.services.test_executor import NOW, FakeExchange, risk_checked, started
from tests.support.state import mark_restored

Decision = tuple[str, Side, int, int]  # kind, side, price, size

CONFIG = MarketConfig(
    "", enabled=True, max_inventory_yes=2000, max_inventory_no=2000, quote_size=500
)
GLOBAL = GlobalConfig(max_total_exposure=1_000_000_000, max_daily_loss=100_000_000)


@dataclass(frozen=True)
class Case:
    position: int  # signed, centi-contracts
    resting: tuple[tuple[Side, int, int], ...]  # side, price, remaining
    bid: tuple[int, int] | None  # target price, size
    ask: tuple[int, int] | None
    global_config: GlobalConfig = GLOBAL
    daily_pnl: int = 0


CASES = {
    "both_sides_place": Case(0, (), (4000, 500), (4600, 500)),
    "long_near_the_yes_cap": Case(1800, (), (4000, 500), (4600, 500)),
    "short_near_the_no_cap": Case(-1900, (), (4000, 500), (4600, 500)),
    "amends_within_limits": Case(
        -200, ((Side.BID, 3000, 200), (Side.ASK, 6000, 200)), (4500, 500), (5000, 500)
    ),
    "amends_past_the_exposure_cap": Case(
        0,
        ((Side.BID, 3000, 200), (Side.ASK, 6000, 200)),
        (4500, 500),
        (5000, 500),
        GlobalConfig(max_total_exposure=2_000_000, max_daily_loss=100_000_000),
    ),
    "duplicate_decrease_and_cancel": Case(
        300,
        ((Side.BID, 4000, 800), (Side.BID, 3500, 300), (Side.ASK, 4600, 500)),
        (4000, 500),
        None,
    ),
    "daily_loss_reached": Case(
        0, ((Side.ASK, 4700, 500),), (4000, 500), (4600, 500), daily_pnl=-100_000_000
    ),
    "decrease_at_the_yes_cap": Case(0, ((Side.BID, 3900, 1800),), (4000, 500), None),
}


class RecordingExchange(FakeExchange):
    """Every write the executor sends, as the action it carries out."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.sent: list[Decision] = []

    async def place(self, request: OrderRequest) -> Order:
        self.sent.append(("place", request.side, request.price, request.count))
        return await super().place(request)

    async def amend(self, order: Order, price: int, remaining: int) -> Order:
        self.sent.append(("amend", order.side, price, remaining))
        return await super().amend(order, price, remaining)

    async def decrease(self, order: Order, remaining: int) -> Order:
        self.sent.append(("decrease", order.side, order.price, remaining))
        return await FakeExchange.amend(self, order, order.price, remaining)

    async def cancel(self, order: Order) -> int:
        self.sent.append(("cancel", order.side, order.price, 0))
        return await super().cancel(order)


def resting_orders(ticker: str, case: Case) -> list[Order]:
    return [
        Order(
            ticker,
            side,
            price,
            remaining,
            f"c-{i}",
            f"ex-r{i}",
            OrderStatus.RESTING,
            0,
            remaining,
            NOW - 10_000,
            NOW - 10_000,
        )
        for i, (side, price, remaining) in enumerate(case.resting)
    ]


def targets_of(ticker: str, case: Case) -> Targets:
    bid = Quote(Side.BID, *case.bid) if case.bid else None
    ask = Quote(Side.ASK, *case.ask) if case.ask else None
    return Targets(ticker, bid, ask, "test", NOW)


def backtester_decides(case: Case) -> tuple[list[Decision], int, str, MarketMeta]:
    """The backtester's decision step on ``case``: (approved, denied count, ticker, meta)."""
    spec = BacktestSpec(
        load_scenario("calm"),
        seed=1,
        hours=0.01,
        n_markets=1,
        market_config=CONFIG,
        global_config=case.global_config,
        rate_tier="unlimited",
    )
    runner = _Runner(spec, "fixed", lambda view: targets_of(view.ticker, case))
    [market] = runner.markets.values()
    own = resting_orders(market.ticker, case)
    runner._own_orders = lambda ticker: list(own)  # type: ignore[method-assign]
    market.position = Position(market.ticker, case.position, case.position * 5000)
    exposure = worst_case_exposure([market.position], own)
    runner.account_risk = AccountRisk(False, "", case.daily_pnl, exposure)
    runner._decide(market, runner.world.now_ms)
    approved = [a for _, _, _, actions in runner.inflight for a in actions]
    decisions = [(a.kind.value, a.side, a.price, a.size) for a in approved]
    return decisions, runner.counts["denied"], market.ticker, market.meta


async def executor_decides(
    settings: Settings, r: aioredis.Redis, case: Case, ticker: str, meta: MarketMeta
) -> tuple[list[Decision], int]:
    """One pass per side of the executor on the same inputs: (sent, denied count)."""
    k = Keys()
    await mark_restored(r, k)
    for service in ("marketdata", "strategy", "fills"):
        await r.set(k.hb(service), "{}")
    await r.sadd(k.cfg_markets, ticker)
    await r.hset(
        k.cfg_market(ticker), mapping=encode_market_config(replace(CONFIG, market_id=ticker), 1)
    )
    await r.hset(k.cfg_global, mapping=encode_global_config(case.global_config, 1))
    await r.hset(k.market(ticker), mapping=encode_market(meta))
    book = BookState(ticker, YesBook(((3000, 100),), ((7000, 100),)), 1, 0, 0, False)
    await r.hset(k.book(ticker), mapping=encode_book(book))
    position = Position(ticker, case.position, case.position * 5000)
    await r.hset(k.pos(ticker), mapping=encode_position(position))
    await risk_checked(r, k, NOW, case.daily_pnl)
    exchange = RecordingExchange(r, k)
    for order in resting_orders(ticker, case):
        await r.hset(k.orders(ticker), order.client_order_id, encode_order(order))
        exchange.orders[order.order_id or ""] = order
    await r.hset(k.targets(ticker), mapping=encode_targets(targets_of(ticker, case)))
    service, ctx = await started(settings, r, exchange)
    try:
        await service.step(ctx)  # one pass per side
        while service.schedule.inflight:
            for task in list(service.schedule.inflight.values()):
                await task
        return exchange.sent, service.counts["denied"]
    finally:
        await service.stop(ctx)


@pytest.mark.parametrize("name", CASES)
async def test_the_executor_and_the_backtester_decide_alike(
    settings: Settings, aredis: aioredis.Redis, name: str
) -> None:
    case = CASES[name]
    approved, denied, ticker, meta = backtester_decides(case)
    sent, executor_denied = await executor_decides(settings, aredis, case, ticker, meta)
    assert sorted(sent) == sorted(approved)
    assert executor_denied == denied


def test_the_cases_cover_approvals_and_denials() -> None:
    """Not a case where nothing happens: between them they approve and deny every kind."""
    outcomes = [backtester_decides(case)[:2] for case in CASES.values()]
    kinds = {kind for approved, _ in outcomes for kind, *_ in approved}
    assert kinds == {"place", "amend", "decrease", "cancel"}
    assert sum(denied for _, denied in outcomes) >= 4


@pytest.mark.parametrize("other_shard_holds", [0, 3_000_000])
async def test_a_shard_checks_the_account_wide_cap_in_the_ledger(
    settings: Settings, aredis: aioredis.Redis, other_shard_holds: int
) -> None:
    """One of two shards: a bid ($2.00 worst case) and an ask ($2.70) fit the $5 cap of the
    whole account when the ledger holds nothing else (no 1/N share each, which let only the
    bid through); with $3 reserved by the other shard's market, only the bid fits."""
    from common.ledger import field
    from common.sharding import shard_of

    case = replace(
        CASES["both_sides_place"],
        global_config=GlobalConfig(max_total_exposure=5_000_000, max_daily_loss=100_000_000),
    )
    approved, _, ticker, meta = backtester_decides(case)
    assert len(approved) == 2  # one box: both sides fit
    shard = shard_of(ticker, 2)
    other = next(t for t in (f"KXO-{i}" for i in range(50)) if shard_of(t, 2) != shard)
    sharded = replace(settings, shard_count=2, shard_index=shard)
    await aredis.set(Keys().hb(f"strategy-{shard}"), "{}")  # this shard's own strategy
    if other_shard_holds:
        await aredis.hset(  # the other shard's reservation (its own token and sequence)
            Keys().ledger,
            mapping={field("bid", other): f"{other_shard_holds}:1:1", "total": other_shard_holds},
        )
    sent, denied = await executor_decides(sharded, aredis, case, ticker, meta)
    if other_shard_holds:
        assert [(kind, side) for kind, side, _, _ in sent] == [("place", Side.BID)]
        assert denied == 1
    else:
        assert sorted((kind, side.value) for kind, side, _, _ in sent) == [
            ("place", "ask"),
            ("place", "bid"),
        ]
        assert denied == 0
