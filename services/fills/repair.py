"""A position record corrupted by hand (``SET`` where fills keeps a hash, a field that is not a
number): the fills process owns ``dora:pos:{ticker}``, and one such key failed every transaction
that read it, so no fill of any market in the same batch (or the backfill) was booked.

``unreadable_positions`` finds them; the service then stops the executor adding risk (clears
``dora:positions:synced``), deletes them and syncs every position with the exchange at once, as
after Redis lost acknowledged writes (``services.fills.mark``): what was in such a key is not
known, and the exchange's position is the truth.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from common.errors import SchemaError
from common.keys import Keys
from common.log import EventLogger
from common.position_record import PositionRecord

CHUNK = 200  # keys read per round trip


async def unreadable_positions(redis: aioredis.Redis, keys: Keys) -> dict[str, str]:
    """Every ``dora:pos:*`` that does not read as a position record: its key -> why."""
    names = [key async for key in redis.scan_iter(match=keys.pattern("pos"), count=500)]
    bad: dict[str, str] = {}
    for start in range(0, len(names), CHUNK):
        chunk = names[start : start + CHUNK]
        pipe = redis.pipeline(transaction=False)
        for key in chunk:
            pipe.type(key)
        kinds = await pipe.execute()
        hashes = [key for key, kind in zip(chunk, kinds, strict=True) if kind == "hash"]
        for key, kind in zip(chunk, kinds, strict=True):
            if kind not in ("hash", "none"):
                bad[key] = f"a {kind}, not a hash"
        pipe = redis.pipeline(transaction=False)
        for key in hashes:
            pipe.hgetall(key)
        for key, fields in zip(hashes, await pipe.execute(), strict=True):
            try:
                PositionRecord.from_redis(keys.ticker_of(key, "pos"), fields)
            except SchemaError as exc:
                bad[key] = str(exc)
    return bad


async def drop_unreadable_positions(redis: aioredis.Redis, keys: Keys, log: EventLogger) -> bool:
    """Delete the records that do not read, the synced marker first (the executor adds no risk
    until the sync puts the exchange's positions back); False when there were none, or when
    Redis did not answer (the error that led here stands)."""
    try:
        bad = await unreadable_positions(redis, keys)
    except Exception as exc:  # Redis away (say)
        log.warning("position_check_failed", error=f"{type(exc).__name__}: {exc}")
        return False
    if not bad:
        return False
    await redis.delete(keys.positions_synced)
    for key, why in bad.items():
        log.error("bad_position_key_rebuilt", key=key, reason=why)
    await redis.delete(*bad)
    return True
