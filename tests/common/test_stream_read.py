"""``common.stream_read.BurstRead``: a writer's whole pipeline heard in one read."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from common.stream_read import BurstRead


async def _blocked_read_then_burst(aredis: aioredis.Redis, reader: BurstRead) -> list[str]:
    ids = {"s:targets": "0-0", "s:fills": "0-0"}
    read = asyncio.create_task(reader.read(ids))
    await asyncio.sleep(0.2)  # the read is waiting in Redis
    pipe = aredis.pipeline(transaction=False)
    for i in range(5):  # as the strategy publishes: several markets in one pipeline
        pipe.hset(f"s:t:{i}", mapping={"bid": str(i)})
        pipe.xadd("s:targets", {"ticker": f"KX-{i}"})
    await pipe.execute()
    response = await asyncio.wait_for(read, 5)
    return [fields["ticker"] for name, entries in response for _, fields in entries]


async def test_a_writers_whole_pipeline_is_heard_in_one_read(aredis: aioredis.Redis) -> None:
    """Redis answers a blocked XREAD at the first XADD that feeds it: of the strategy's publish
    (several markets' targets in one pipeline) the executor heard the first market alone and
    the rest one read later, after that market's pass. A second read pipelined behind the
    blocking one runs after the writer's whole pipeline."""
    reader = BurstRead(aredis, count=100, block=5_000)
    assert await _blocked_read_then_burst(aredis, reader) == [f"KX-{i}" for i in range(5)]


async def test_a_plain_blocked_read_hears_the_first_alone(aredis: aioredis.Redis) -> None:
    """Why: the same burst read by one blocking XREAD (the executor's read before)."""

    class Plain(BurstRead):
        async def read(self, ids: dict[str, str]) -> list:
            return list(await self.redis.xread(ids, count=self.count, block=self.block) or [])

    assert await _blocked_read_then_burst(aredis, Plain(aredis, count=100, block=5_000)) == ["KX-0"]


async def test_a_stream_read_from_now_is_a_plain_read(aredis: aioredis.Redis) -> None:
    reader = BurstRead(aredis, count=100, block=50)
    assert await reader.read({"s:none": "$"}) == []
