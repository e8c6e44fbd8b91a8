from decimal import Decimal

import redis.asyncio as aioredis

from common.config import GlobalConfig, MarketConfig
from common.config_cache import ConfigCache
from common.dynamo.codec import to_attrs
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import decode_market_config, encode_global_config, encode_market_config
from services.persister.mirror import plan_mirror
from tests.persister.conftest import Harness

K = Keys()
NOW = "2026-01-01T00:00:00.000Z"


def item(ticker: str, version: int | None = 1, **fields: object) -> dict:
    out: dict = {"market_id": ticker, **fields}
    if version is not None:
        out["version"] = Decimal(version)
    return out


# ---- the plan (pure) -----------------------------------------------------------------------


def test_plan_writes_new_and_changed_items_and_removes_deleted_ones() -> None:
    current = {
        "KXA": encode_market_config(MarketConfig("KXA"), 1),
        "GONE": encode_market_config(MarketConfig("GONE"), 1),
    }
    raw = [item("KXA", 2, enabled=True), item("KXB", 1)]
    plan = plan_mirror(raw, None, current, None)
    assert plan.writes == {
        "KXA": encode_market_config(MarketConfig("KXA", enabled=True), 2),
        "KXB": encode_market_config(MarketConfig("KXB"), 1),
    }
    assert plan.removes == {"GONE"} and not plan.invalid and not plan.bumps
    assert plan.global_write == encode_global_config(GlobalConfig(), 0)
    same = plan_mirror(raw, None, {**current, **plan.writes, "GONE": {}}, plan.global_write)
    assert not same.writes and same.global_write is None


def test_a_change_without_a_version_bump_gets_one_first() -> None:
    current = {"KXA": encode_market_config(MarketConfig("KXA"), 3)}
    plan = plan_mirror([item("KXA", 3, quote_size=Decimal(5))], None, current, None)
    assert not plan.writes and len(plan.bumps) == 1
    assert plan.bumps[0].new_version == 4 and plan.bumps[0].stored_version == Decimal(3)


def test_an_invalid_item_keeps_the_last_valid_mirror_or_is_mirrored_disabled() -> None:
    current = {"KXA": encode_market_config(MarketConfig("KXA", enabled=True), 1)}
    raw = [
        item("KXA", 2, quote_size="lots"),
        item("KXB", 1, enabled=True, min_spread=Decimal(2)),
        item("bad ticker!"),
    ]
    plan = plan_mirror(raw, {"key": "global_config", "max_daily_loss": "-1"}, current, None)
    assert "KXA" not in plan.writes  # keeps its last valid config
    assert plan.writes["KXB"] == encode_market_config(MarketConfig("KXB", enabled=False), 1)
    assert set(plan.invalid) == {"KXA", "KXB", "'bad ticker!'", "(global)"}
    assert "quote_size" in plan.invalid["KXA"] and "min_spread" in plan.invalid["KXB"]
    assert plan.global_write == encode_global_config(GlobalConfig(trading_enabled=False), 0)
    assert not plan.removes


# ---- against moto and Redis ----------------------------------------------------------------


async def test_the_mirror_reaches_redis_and_the_running_processes(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    store = persister.db.config
    store.update_market("KXA", {"enabled": True, "quote_size": "5"}, NOW)
    store.update_global({"max_daily_loss": "25"}, NOW)
    pubsub = aredis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(K.control)
    await persister.start()
    cache = ConfigCache(K, get_logger("test"))
    await cache.refresh(aredis, 0)
    assert cache.market("KXA").quote_size == 500 and cache.enabled() == ["KXA"]
    assert cache.global_config.max_daily_loss == 25_000_000
    message = None
    for _ in range(5):  # the first read may be the (ignored) subscribe confirmation
        message = message or await pubsub.get_message(timeout=0.2)
    assert message is not None and "reload" in message["data"]

    store.update_market("KXA", {"quote_size": "7"}, NOW)
    store.update_market("KXB", {}, NOW)
    await persister.step()
    assert await cache.refresh(aredis, 0)
    assert cache.market("KXA").quote_size == 700 and set(cache.markets) == {"KXA", "KXB"}
    assert (await aredis.hgetall(K.cfg_market("KXA")))["version"] == "2"

    store.delete_market("KXB")
    await persister.step()
    assert await aredis.smembers(K.cfg_markets) == {"KXA"}
    assert not await aredis.exists(K.cfg_market("KXB"))
    await pubsub.aclose()


async def test_a_console_edit_without_a_version_is_bumped_and_mirrored(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    store = persister.db.config
    store.update_market("KXA", {}, NOW)
    await persister.start()
    raw = store.get_market("KXA")
    raw["quote_size"] = Decimal(3)  # same version 1, different content
    persister.db.client.put_item(TableName="dora_market_config", Item=to_attrs(raw))
    await persister.step()
    assert store.get_market("KXA")["version"] == 2
    mirrored = await aredis.hgetall(K.cfg_market("KXA"))
    assert mirrored["version"] == "2" and decode_market_config("KXA", mirrored).quote_size == 300


async def test_an_invalid_item_is_reported_and_its_market_keeps_its_config(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    store = persister.db.config
    store.update_market("KXA", {"enabled": True}, NOW)
    await persister.start()
    persister.db.client.put_item(
        TableName="dora_market_config",
        Item=to_attrs(item("KXA", 2, enabled="maybe")),
    )
    persister.db.client.put_item(
        TableName="dora_market_config", Item=to_attrs(item("KXNEW", None, toxicity_score=7))
    )
    await persister.step()
    invalid = await aredis.hgetall(K.cfg_invalid)
    assert "enabled" in invalid["KXA"] and "toxicity_score" in invalid["KXNEW"]
    kxa = decode_market_config("KXA", await aredis.hgetall(K.cfg_market("KXA")))
    assert kxa.enabled  # the last valid config
    new = decode_market_config("KXNEW", await aredis.hgetall(K.cfg_market("KXNEW")))
    assert not new.enabled
    # a restarted persister still keeps the last valid config
    persister.service._mirror = None
    await persister.service.start(persister.ctx)
    await persister.step()
    assert decode_market_config("KXA", await aredis.hgetall(K.cfg_market("KXA"))).enabled
    store.update_market("KXA", {"enabled": False}, NOW)  # fixing it (drops the bad value)
    await persister.step()
    assert "KXA" not in await aredis.hgetall(K.cfg_invalid)


async def test_event_overrides_reach_the_running_processes(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    store = persister.db.config
    store.update_global({"max_event_loss": "30"}, NOW)
    store.update_event("KXEV", {"max_event_loss": "12"}, NOW)
    await persister.start()
    cache = ConfigCache(K, get_logger("test"))
    await cache.refresh(aredis, 0)
    assert cache.event_limit("KXEV") == 12_000_000
    assert cache.event_limit("KXNONE") == 30_000_000  # the global default
    store.update_event("KXEV", {"max_event_loss": "8"}, NOW)
    await persister.step()
    assert await cache.refresh(aredis, 0)
    assert cache.event_limit("KXEV") == 8_000_000
    assert (await aredis.hgetall(K.cfg_events))["version"] == "2"
