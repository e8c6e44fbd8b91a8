"""``common.stream_read.BurstRead``: a writer's whole pipeline heard in one read."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from common import stream_read
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
    the rest one read later, after that market's pass. The script behind the read runs after
    the writer's whole pipeline."""
    reader = BurstRead(aredis, count=100, block=5_000)
    assert await _blocked_read_then_burst(aredis, reader) == [f"KX-{i}" for i in range(5)]
    assert reader.scripted


async def test_without_scripts_the_read_alone_answers(
    aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that refuses the script reads the plain way from then on, and what the blocked
    read brought is not lost."""
    monkeypatch.setattr(stream_read, "_AFTER", "return redis.error_reply('scripts refused')")
    reader = BurstRead(aredis, count=100, block=5_000)
    assert await _blocked_read_then_burst(aredis, reader) == ["KX-0"]  # the read's own answer
    assert not reader.scripted
    ((_, entries),) = await reader.read({"s:targets": "0-0"})  # a plain XREAD now
    assert len(entries) == 5


async def test_a_stream_read_from_now_is_a_plain_read(aredis: aioredis.Redis) -> None:
    reader = BurstRead(aredis, count=100, block=50)
    assert await reader.read({"s:none": "$"}) == []
    assert reader.scripted
