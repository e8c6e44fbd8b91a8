import redis.asyncio as aioredis

from common.keys import Keys
from common.messages import decode_event
from common.streams import PERSISTER_GROUP, append, queue_append

K = Keys()


async def test_without_the_group_a_stream_is_capped_by_maxlen(aredis: aioredis.Redis) -> None:
    for i in range(1_000):
        await append(aredis, K, "orders", "order", {"i": i}, maxlen=100)
    assert 100 <= await aredis.xlen(K.stream("orders")) < 300


async def test_unacknowledged_entries_are_never_trimmed(aredis: aioredis.Redis) -> None:
    name = K.stream("fills")
    await aredis.xgroup_create(name, PERSISTER_GROUP, id="0", mkstream=True)
    ids = [await append(aredis, K, "fills", "fill", {"i": i}, maxlen=10) for i in range(500)]
    assert await aredis.xlen(name) == 500  # nothing delivered yet: everything stays
    read = await aredis.xreadgroup(PERSISTER_GROUP, "c", {name: ">"}, count=300)
    delivered = [entry_id for entry_id, _ in read[0][1]]
    await aredis.xack(name, PERSISTER_GROUP, *delivered[:200])  # 100 delivered, still pending
    await append(aredis, K, "fills", "fill", {"i": 500}, maxlen=10)
    first = (await aredis.xrange(name, count=1))[0][0]
    assert first == ids[199]  # acknowledged entries went (but the last one), pending stayed
    await aredis.xack(name, PERSISTER_GROUP, *delivered[200:])
    for i in range(3):
        await append(aredis, K, "fills", "fill", {"i": i}, maxlen=10)
    remaining = [entry_id for entry_id, _ in await aredis.xrange(name)]
    assert ids[300] in remaining and ids[298] not in remaining  # undelivered ones stay
    kind, _ = decode_event((await aredis.xrange(name, count=1))[0][1])
    assert kind == "fill"


async def test_other_streams_use_plain_maxlen(aredis: aioredis.Redis) -> None:
    for i in range(1_000):
        await append(aredis, K, "md", "book", {"i": i}, maxlen=100)
    assert await aredis.xlen(K.stream("md")) < 300


async def test_queue_append_in_a_transaction(aredis: aioredis.Redis) -> None:
    await aredis.script_flush()
    pipe = aredis.pipeline(transaction=True)
    pipe.hset("dora:pos:KXA", "position", "100")
    queue_append(pipe, K, "fills", "fill", {"fill_id": "f"})
    queue_append(pipe, K, "md", "book", {"ticker": "KXA"})
    results = await pipe.execute()
    assert results[0] == 1 and "-" in results[1] and "-" in results[2]
    assert await aredis.xlen(K.stream("fills")) == 1


async def test_queue_append_costs_no_extra_round_trip(aredis: aioredis.Redis) -> None:
    """The executor records an order and its trade-log event in one round trip: the pipeline
    must not stop to ask SCRIPT EXISTS first (it would, holding a registered script)."""
    await aredis.config_resetstat()
    for _ in range(3):
        pipe = aredis.pipeline(transaction=False)
        pipe.hset("dora:orders:KXA", "c", "{}")
        queue_append(pipe, K, "orders", "order", {"client_order_id": "c"})
        await pipe.execute()
    stats = await aredis.info("commandstats")
    assert not any(name.startswith("cmdstat_script") for name in stats), sorted(stats)
    assert stats["cmdstat_eval"]["calls"] == 3
    assert await aredis.xlen(K.stream("orders")) == 3
