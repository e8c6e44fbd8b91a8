"""Reading several streams at once, on one Redis or across the slots of a Redis Cluster.

One Redis answers ``XREAD``/``XREADGROUP`` over any set of streams in one call. A cluster refuses
a read whose streams live in different slots (CROSSSLOT): in cluster mode a shard's own streams
(``md``, ``targets``) carry its tag and the account's (``fills``, ``pnl``) the account tag. So the
streams are grouped by slot; every group is read without blocking, concurrently, and when none has
anything new the first group (the caller's hot stream: ``md`` for the strategy, ``targets`` for
the executor) is read blocking. An entry on another group's stream then waits at most ``block``
milliseconds, the loop's own read timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.crc import key_slot

from common.direct_redis import direct_for, run_pipeline

Response = list[Any]


def by_slot(ids: dict[str, str]) -> list[dict[str, str]]:
    """The streams grouped by cluster slot, in the order of their first stream."""
    groups: dict[int, dict[str, str]] = {}
    for name, last in ids.items():
        groups.setdefault(key_slot(name.encode()), {})[name] = last
    return list(groups.values())


async def xread(
    redis: aioredis.Redis,
    ids: dict[str, str],
    *,
    count: int,
    block: int,
    cluster: bool,
) -> Response:
    """``XREAD COUNT count BLOCK block STREAMS ...`` (a cluster: one read per slot)."""
    groups = by_slot(ids) if cluster else [ids]
    if len(groups) == 1:
        return list(await redis.xread(ids, count=count, block=block) or [])  # type: ignore[arg-type]
    found = await asyncio.gather(*(redis.xread(g, count=count) for g in groups))  # type: ignore[arg-type]
    out = [item for response in found for item in response or []]
    if out:
        return out
    return list(await redis.xread(groups[0], count=count, block=block) or [])  # type: ignore[arg-type]


async def xreadgroup(
    redis: aioredis.Redis,
    group: str,
    consumer: str,
    names: list[str],
    *,
    count: int,
    block: int,
    cluster: bool,
) -> Response:
    """``XREADGROUP GROUP group consumer ... STREAMS names... >`` (a cluster: one per slot)."""
    ids = dict.fromkeys(names, ">")
    groups = by_slot(ids) if cluster else [ids]
    if len(groups) == 1:
        response = await redis.xreadgroup(group, consumer, ids, count=count, block=block)  # type: ignore[arg-type]
        return list(response or [])
    found = await asyncio.gather(
        *(redis.xreadgroup(group, consumer, g, count=count) for g in groups)  # type: ignore[arg-type]
    )
    out = [item for response in found for item in response or []]
    if out:
        return out
    response = await redis.xreadgroup(group, consumer, groups[0], count=count, block=block)  # type: ignore[arg-type]
    return list(response or [])


class BurstRead:
    """``XREAD`` of a writer's whole burst on one Redis. Redis answers a blocked ``XREAD`` at
    the first ``XADD`` that feeds it, in the middle of the writer's pipeline (the strategy
    publishes several markets' targets in one): the reader heard the first market alone and the
    rest one read later, after that market's work. A second, non-blocking ``XREAD`` from the
    same ids, pipelined behind the blocking one, runs after the rest of the writer's pipeline
    (Redis runs a blocked client's next command once it has served the others) and answers
    every entry: the blocking read waits for one entry and the second brings them all. (A
    script could do the same; a plain read costs Redis no conversion of the entries to Lua and
    back, which at thousands of entries a second is Redis's time.) On one Redis over TCP the
    reads go out on a connection of their own (``common.direct_redis``)."""

    def __init__(self, redis: aioredis.Redis, *, count: int, block: int) -> None:
        self.redis = redis
        self.count = count
        self.block = block
        self.direct = direct_for(redis)  # None: redis-py's pipeline

    async def read(self, ids: dict[str, str]) -> Response:
        if "$" in ids.values():  # "from now" means another thing to the second read
            return list(await self.redis.xread(ids, count=self.count, block=self.block) or [])  # type: ignore[arg-type]
        pipe = self.redis.pipeline(transaction=False)
        pipe.xread(ids, count=1, block=self.block)  # type: ignore[arg-type]
        pipe.xread(ids, count=self.count)  # type: ignore[arg-type]
        first, every = await run_pipeline(pipe, self.direct, block_s=self.block / 1000)
        return list(every or first or [])

    async def aclose(self) -> None:
        if self.direct is not None:
            await self.direct.aclose()
