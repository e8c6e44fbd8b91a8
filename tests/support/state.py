"""Redis as the persister and fills leave it once state is restored and positions are synced."""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from common.keys import Keys
from common.restore import mark_positions_synced


async def mark_restored(redis: aioredis.Redis, keys: Keys, ts_ms: int = 1) -> None:
    """``dora:restored`` (restore ``ts_ms``) and the positions synced after it: trading may
    add risk."""
    await redis.set(keys.restored, orjson.dumps({"ts_ms": ts_ms}).decode())
    await mark_positions_synced(redis, keys, ts_ms, 0, [])
