"""A sharded executor watches the strategy of its own shard (``dora:hb:strategy-N``): there is no
``dora:hb:strategy`` when the strategy runs as shards, and watching it kept every shard from ever
quoting (found by the chaos run on two shards)."""

from __future__ import annotations

from dataclasses import replace

import redis.asyncio as aioredis

from common.keys import Keys
from common.settings import Settings
from common.sharding import shard_of
from tests.services.test_executor import FakeExchange, publish, seed, started, steps


async def test_a_sharded_executor_quotes_while_its_own_shards_strategy_beats(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    sharded = replace(settings, shard_count=2, shard_index=shard_of("KX", 2))
    await seed(aredis, k, "KX")
    await aredis.delete(k.hb("strategy"), k.hb(f"strategy-{1 - sharded.shard_index}"))
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(sharded, aredis, exchange)  # asserts quoting may begin
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert sorted(o.price for o in exchange.orders.values()) == [4100, 4500]
        await aredis.delete(k.hb(f"strategy-{sharded.shard_index}"))  # its strategy stops
        await service.safety.check_feeds()
        assert "strategy" in service.safety.pulled.reason
    finally:
        await service.stop(ctx)
