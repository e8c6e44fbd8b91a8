"""The config cache every process refreshes: one mirrored key of the wrong type (a person's
``SET`` where the mirror keeps a hash or a set) used to fail the whole refresh (WRONGTYPE from
the shared pipeline): the strategy's and executor's start was retried for ever and a running
strategy failed every step. Now that item keeps its last valid config, reported once."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.config import GlobalConfig, MarketConfig
from common.config_cache import ConfigCache
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import encode_global_config, encode_market_config

K = Keys()


async def seeded(r: aioredis.Redis) -> ConfigCache:
    for ticker in ("KX-A", "KX-B"):
        await r.sadd(K.cfg_markets, ticker)
        config = MarketConfig(ticker, enabled=True, quote_size=300)
        await r.hset(K.cfg_market(ticker), mapping=encode_market_config(config, 1))
    global_config = GlobalConfig.from_item({"max_daily_loss": "40"})
    await r.hset(K.cfg_global, mapping=encode_global_config(global_config, 1))
    await r.hset(K.cfg_events, mapping={"KXEV": "12", "version": "1"})
    cache = ConfigCache(K, get_logger("test"))
    await cache.refresh(r, 0)
    return cache


async def wrong_type(r: aioredis.Redis, key: str) -> None:
    await r.delete(key)
    await r.set(key, "x")


async def test_a_market_config_key_of_the_wrong_type_keeps_its_last_config(
    aredis: aioredis.Redis,
) -> None:
    cache = await seeded(aredis)
    await wrong_type(aredis, K.cfg_market("KX-A"))
    await aredis.hset(K.cfg_market("KX-B"), mapping={"quote_size": "5.00", "version": "2"})
    assert await cache.refresh(aredis, 1)  # KX-B's change is read
    assert cache.market("KX-A").quote_size == 300 and cache.market("KX-A").enabled
    assert cache.market("KX-B").quote_size == 500
    assert cache.unread == {"KX-A": cache.unread["KX-A"]} and "WRONGTYPE" in cache.unread["KX-A"]
    assert cache.loaded_ms == 1
    await aredis.delete(K.cfg_market("KX-A"))
    await aredis.hset(K.cfg_market("KX-A"), mapping=encode_market_config(MarketConfig("KX-A"), 3))
    await cache.refresh(aredis, 2)
    assert cache.unread == {} and not cache.market("KX-A").enabled


async def test_global_events_and_market_list_of_the_wrong_type_keep_what_was_read(
    aredis: aioredis.Redis,
) -> None:
    cache = await seeded(aredis)
    for key in (K.cfg_global, K.cfg_events, K.cfg_markets):
        await wrong_type(aredis, key)
    assert not await cache.refresh(aredis, 1)
    assert cache.global_config.max_daily_loss == 40_000_000
    assert cache.event_limit("KXEV") == 12_000_000
    assert cache.enabled() == ["KX-A", "KX-B"]
    assert set(cache.unread) == {"", "(events)", "(markets)"}
