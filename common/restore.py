"""Waiting for the persisted state to be back in Redis before trading.

When Redis starts empty, the persister puts positions, risk_state (with the halt), the last fill
time and the config back from DynamoDB, then sets ``dora:restored``. Every process that trades or
changes positions calls ``wait_until_restored`` in its ``start`` before it does anything else.
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from common.keys import Keys
from common.log import EventLogger

POLL_S = 0.2
LOG_EVERY_S = 10.0


async def is_restored(redis: aioredis.Redis, keys: Keys) -> bool:
    return bool(await redis.exists(keys.restored))


async def wait_until_restored(
    redis: aioredis.Redis,
    keys: Keys,
    stopping: asyncio.Event,
    *,
    log: EventLogger | None = None,
    poll_s: float = POLL_S,
) -> bool:
    """Return True once ``dora:restored`` exists, False if ``stopping`` is set first.

    A Redis error propagates (the runtime retries ``start``)."""
    waited_s = 0.0
    next_log_s = 0.0
    while not stopping.is_set():
        if await is_restored(redis, keys):
            if log is not None and waited_s:
                log.info("restored_state_ready", waited_s=round(waited_s, 1))
            return True
        if log is not None and waited_s >= next_log_s:
            log.info("waiting_for_restore", waited_s=round(waited_s, 1), key=keys.restored)
            next_log_s += LOG_EVERY_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), poll_s)
        waited_s += poll_s
    return False
