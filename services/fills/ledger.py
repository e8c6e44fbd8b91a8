"""Applying a fill to the books of record in Redis: exactly once, atomically.

One MULTI/EXEC per fill, under WATCH of the market's position: mark the fill id seen, write the
new position (exact integer cost basis, realized PnL and fees from ``Position.apply_fill``), move
the last-fill time forward and append the ``fill`` event for the persister, executor and
strategy. Either all of it happens or none; a fill id already seen (from the WebSocket, a REST
backfill, or a replay after a crash) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from common.domain import Fill, Position
from common.events import fill_event
from common.schema import Keys, decode_position, encode_position
from common.streams import queue_append

MAX_WATCH_RETRIES = 20


@dataclass(frozen=True, slots=True)
class Applied:
    fill: Fill
    position: Position


async def apply_fill(redis: aioredis.Redis, keys: Keys, fill: Fill) -> Applied | None:
    """Apply ``fill`` once; returns the new position, or None if the fill was already applied."""
    pos_key = keys.pos(fill.ticker)
    for _ in range(MAX_WATCH_RETRIES):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(pos_key, keys.fill_ids)
                if await pipe.sismember(keys.fill_ids, fill.fill_id):
                    await pipe.unwatch()
                    return None
                position = decode_position(fill.ticker, await pipe.hgetall(pos_key))
                after = position.apply_fill(fill)
                last_ms = int(await pipe.hget(keys.fills_meta, "last_fill_ms") or 0)
                pipe.multi()
                pipe.sadd(keys.fill_ids, fill.fill_id)
                pipe.hset(pos_key, mapping=encode_position(after))
                if fill.ts_ms > last_ms:
                    pipe.hset(keys.fills_meta, "last_fill_ms", str(fill.ts_ms))
                queue_append(pipe, keys, "fills", "fill", fill_event(fill, after))
                await pipe.execute()
                return Applied(fill, after)
            except WatchError:
                continue
    raise RuntimeError(f"position of {fill.ticker} kept changing; fill {fill.fill_id} not applied")
