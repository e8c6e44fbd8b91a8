"""Waiting for the persisted state to be back in Redis before trading.

When Redis starts empty (or is flushed while running), the persister puts positions with the ids
of the fills they count, risk_state (with the halt), the backfill cursor and the config back from
DynamoDB, then sets ``dora:restored`` (its ``ts_ms`` names the restore). Every process that trades
or changes positions calls ``wait_until_restored`` in its ``start``, and watches the marker while
it runs: its absence means Redis lost its data. The fills process then sets positions from the
exchange where they differ and records ``dora:positions:synced`` for that restore; until then the
executor adds no risk (``trading_state_gap``).
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import redis.asyncio as aioredis

from common.keys import Keys
from common.log import EventLogger

POLL_S = 0.05  # an EXISTS per waiting process: everyone's start waits for this marker
LOG_EVERY_S = 10.0


async def is_restored(redis: aioredis.Redis, keys: Keys) -> bool:
    return bool(await redis.exists(keys.restored))


def restore_id(marker: str | None) -> int | None:
    """Which restore a ``dora:restored`` value records (its ``ts_ms``); None when there is none.
    A marker that does not decode still says Redis holds its data: 0."""
    if marker is None:
        return None
    try:
        value = orjson.loads(marker)
        return int(value.get("ts_ms", 0)) if isinstance(value, dict) else 0
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return 0


async def current_restore(redis: aioredis.Redis, keys: Keys) -> int | None:
    """The restore Redis holds the data of (``restore_id``), or None when its data was lost."""
    return restore_id(await redis.get(keys.restored))


async def mark_positions_synced(
    redis: aioredis.Redis, keys: Keys, restored: int, now_ms: int, corrected: list[str]
) -> None:
    """Positions were checked against the exchange (and set where it differed) after the
    restore ``restored``: what the executor waits for before it adds risk."""
    value = {"ts_ms": now_ms, "restored_ts_ms": restored, "corrected": corrected[:50]}
    await redis.set(keys.positions_synced, orjson.dumps(value).decode())


class RestoreWatch:
    """Tells a running process that Redis came back from losing its data: the restore marker
    names another restore than the one seen last (read at most once per ``every_ms``). What the
    process keeps only in Redis (a book, a market's facts) is then written again."""

    def __init__(self, every_ms: int = 1_000) -> None:
        self.every_ms = every_ms
        self.seen: int | None = None
        self.next_ms = 0.0

    async def prime(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.seen = await current_restore(redis, keys)

    async def restored_again(self, redis: aioredis.Redis, keys: Keys, now_ms: float) -> bool:
        if now_ms < self.next_ms:
            return False
        self.next_ms = now_ms + self.every_ms
        current = await current_restore(redis, keys)
        changed = current is not None and current != self.seen
        self.seen = current
        return changed


async def trading_state_gap(redis: aioredis.Redis, keys: Keys) -> str:
    """Why a process must not add risk for want of state ("" when Redis holds its data and the
    positions were checked against the exchange since its last restore)."""
    marker, synced = await redis.mget(keys.restored, keys.positions_synced)
    return state_gap(marker, synced)


def state_gap(marker: str | None, synced: str | None) -> str:
    """``trading_state_gap`` from the values of ``dora:restored`` and ``dora:positions:synced``."""
    restored = restore_id(marker)
    if restored is None:
        return "Redis lost its data: waiting for the restore"
    try:
        value = orjson.loads(synced) if synced else None
        synced_after = int(value["restored_ts_ms"]) if isinstance(value, dict) else None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        synced_after = None
    if synced_after != restored:
        return "waiting for the positions to be checked against the exchange"
    return ""


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
