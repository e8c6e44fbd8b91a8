"""The executor and the exchange (issue 20 items 2 and 5, issue 18 item 5's order groups):
order groups on by default, on the market's shard, limited by quote_size; quotes pulled before
a scheduled pause and while trading is inactive, and quoting again by itself after."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.calendar import ExchangeState, Pause, QuotingState
from common.domain import MarketMeta, MarketStatus
from common.grid import PriceGrid
from common.keys import Keys
from common.redis_codec import encode_exchange, encode_market
from common.settings import Settings, load_settings
from services.executor.groups import Group
from tests.services.test_executor import (
    NOW,
    FakeExchange,
    publish,
    risk_checked,
    seed,
    started,
    steps,
)


async def on_shard(r: aioredis.Redis, k: Keys, ticker: str, exchange_index: int) -> None:
    meta = MarketMeta(
        ticker,
        MarketStatus.ACTIVE,
        NOW + 10**8,
        PriceGrid.linear_cent(),
        exchange_index=exchange_index,
    )
    await r.hset(k.market(ticker), mapping=encode_market(meta))


async def test_order_groups_are_on_by_default_on_the_markets_shard_limited_by_quote_size(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    await seed(aredis, k, "KX")  # quote_size 5 contracts
    await on_shard(aredis, k, "KX", 2)
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        # one group, on shard 2: 4 x the largest quote (3 x 5 contracts in a benign market)
        assert exchange.created_groups == [(4 * 1500, 2)]
        group = Group.decode(await aredis.hget(k.order_groups, "KX"))
        assert group == Group("grp-1", 2, 6000)
        assert {o.order_group_id for o in exchange.orders.values()} == {"grp-1"}
    finally:
        await service.stop(ctx)


async def test_a_group_stored_for_another_shard_is_replaced_and_a_new_limit_is_set(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    await seed(aredis, k, "KX")
    await seed(aredis, k, "KY")
    await on_shard(aredis, k, "KX", 3)
    await aredis.hset(k.order_groups, "KX", "old-group")  # before groups knew their shard
    await aredis.hset(k.order_groups, "KY", Group("g-y", 0, 100).encode())
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await publish(aredis, k, "KY", 4100, 4500)
        await steps(service, ctx)
        assert exchange.created_groups == [(6000, 3)]  # KX's shard-0 group cannot hold it
        assert exchange.group_limits == {"g-y": 6000}  # KY's group kept, its limit set
    finally:
        await service.stop(ctx)


async def test_order_groups_can_be_turned_off(redis_url: str, aredis: aioredis.Redis) -> None:
    k = Keys()
    await seed(aredis, k, "KX")
    s = load_settings({"DORA_REDIS_URL": redis_url, "DORA_ORDER_GROUPS": "false"}, read_file=False)
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(s, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert exchange.created_groups == [] and len(exchange.orders) == 2
        assert {o.order_group_id for o in exchange.orders.values()} == {None}
    finally:
        await service.stop(ctx)


async def say_exchange(r: aioredis.Redis, k: Keys, state: ExchangeState) -> None:
    await r.hset(k.exchange, mapping=encode_exchange(state, QuotingState(True, "", None)))


async def test_quotes_are_pulled_before_a_scheduled_pause_and_come_back_after_it(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Pause at NOW + 60 s for 20 s, lead 30 s: quoting until NOW + 30 s, then cancels only,
    quoting again at its end, with nothing sent in between (no create the pause would refuse)."""
    k = Keys()
    await seed(aredis, k, "KX")
    pause = Pause(NOW + 60_000, NOW + 80_000, "maintenance")
    await say_exchange(aredis, k, ExchangeState(next_pause=pause, updated_ms=NOW))
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert len([o for o in exchange.orders.values() if o.remaining]) == 2
        ctx.clock.advance(NOW + 31_000 - ctx.clock.now_ms())  # type: ignore[attr-defined]
        await risk_checked(aredis, k, ctx.clock.now_ms())  # risk alive: only the pause pulls
        await service.safety.refresh_risk()
        await service.safety.check_feeds()
        await service.safety.cancel_all_task  # type: ignore[misc]
        assert exchange.cancel_owns == 1
        assert service.safety.pulled.reason == "exchange: maintenance pause ahead"
        sent = len(exchange.orders)
        while ctx.clock.now_ms() < pause.end_ms:
            await publish(aredis, k, "KX", 4200, 4600)  # the strategy still asks
            await steps(service, ctx, 2)
            await service.safety.check_feeds()
        assert len(exchange.orders) == sent  # nothing created during the pause or just before
        await service.safety.check_feeds()
        assert service.safety.pulled.reason == ""
        await steps(service, ctx)
        resting = [o for o in exchange.orders.values() if o.remaining]
        assert sorted(o.price for o in resting) == [4200, 4600]  # quoting again by itself
    finally:
        await service.stop(ctx)


async def test_an_unscheduled_pause_pulls_quotes_until_trading_is_active_again(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    await seed(aredis, k, "KX")
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        await say_exchange(aredis, k, ExchangeState(trading_active=False, updated_ms=NOW))
        await service.safety.check_feeds()
        assert service.safety.pulled.reason == "exchange: trading inactive"
        await service.safety.cancel_all_task  # type: ignore[misc]
        sent = len(exchange.orders)
        await publish(aredis, k, "KX", 4200, 4600)
        await steps(service, ctx)
        assert len(exchange.orders) == sent
        await say_exchange(aredis, k, ExchangeState(updated_ms=NOW))
        await service.safety.check_feeds()
        await steps(service, ctx)
        assert sorted(o.price for o in exchange.orders.values() if o.remaining) == [4200, 4600]
    finally:
        await service.stop(ctx)
