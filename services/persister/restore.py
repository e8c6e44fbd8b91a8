"""Putting the persisted state back into an empty Redis, before anyone trades.

Runs when ``dora:restored`` is missing (a fresh or flushed Redis): the config mirror first, then
positions (only into ``dora:pos:{t}`` hashes that do not exist), the risk state with the halt (a
halt in DynamoDB always wins: it is lifted only by ``dora resume``), and the last fill time (only
forward). ``dora:restored`` is set last, so a crash half-way simply restores again.
"""

from __future__ import annotations

import asyncio

import orjson
import redis.asyncio as aioredis

from common.clock import Clock, iso_from_ms
from common.dynamo.state_store import StateStore
from common.keys import Keys
from common.log import EventLogger
from common.redis_codec import encode_position, encode_risk
from services.persister.mirror import ConfigMirror


async def restore_state(
    redis: aioredis.Redis,
    keys: Keys,
    store: StateStore,
    mirror: ConfigMirror,
    log: EventLogger,
    clock: Clock,
) -> dict[str, object]:
    """Restore and mark; returns what was done. DynamoDB errors propagate (nothing is marked)."""
    mirror.loaded = False  # Redis may have been emptied: start from what it holds now
    await mirror.run_once(redis)
    positions = await asyncio.to_thread(store.get_positions)
    stored_risk = await asyncio.to_thread(store.get_risk)

    tickers = sorted(positions)
    pipe = redis.pipeline(transaction=False)
    for ticker in tickers:
        pipe.exists(keys.pos(ticker))
    pipe.hgetall(keys.risk)
    pipe.hget(keys.fills_meta, "last_fill_ms")
    *exists, risk_fields, last_fill_text = await pipe.execute()

    pipe = redis.pipeline(transaction=True)
    restored_positions = 0
    for ticker, present in zip(tickers, exists, strict=True):
        if not present:
            pipe.hset(keys.pos(ticker), mapping=encode_position(positions[ticker]))  # type: ignore[arg-type]
            restored_positions += 1
    halted = False
    if stored_risk is not None:
        risk = stored_risk.risk
        halted = risk.halted
        if not risk_fields:
            pipe.hset(keys.risk, mapping=encode_risk(risk))  # type: ignore[arg-type]
        elif risk.halted and risk_fields.get("halted") != "1":
            pipe.hset(
                keys.risk,
                mapping={"halted": "1", "reason": risk.reason, "halted_ms": str(risk.halted_ms)},
            )
    last_fill_ms = max(
        [
            stored_risk.last_fill_ms if stored_risk else 0,
            *(p.last_fill_ms for p in positions.values()),
        ]
    )
    try:
        current_last_fill = int(last_fill_text or 0)
    except ValueError:
        current_last_fill = 0
    if last_fill_ms > current_last_fill:
        pipe.hset(keys.fills_meta, "last_fill_ms", str(last_fill_ms))
    now_ms = clock.now_ms()
    summary: dict[str, object] = {
        "ts_ms": now_ms,
        "at": iso_from_ms(now_ms),
        "positions": restored_positions,
        "halted": halted,
        "last_fill_ms": max(last_fill_ms, current_last_fill),
    }
    pipe.set(keys.restored, orjson.dumps(summary).decode())
    await pipe.execute()
    log.info("state_restored", **summary)
    return summary
