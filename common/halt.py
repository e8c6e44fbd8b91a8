"""The halt contract (DESIGN.md §3): set, lift and read the durable halt.

The halt lives in ``dora:risk`` (``halted``, ``reason``, ``halted_ms``) and is persisted to
DynamoDB's ``risk_state`` by the persister (a ``risk`` event on the pnl stream asks it to write
at once). Setting it also publishes ``halt`` on ``dora:control`` so the executor stops sending and
cancels every resting order within a second, and risk cancels directly at the exchange if the
executor is not alive. Only ``resume`` lifts it.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from common.control import send_control
from common.schema import STREAM_MAXLEN, Keys, decode_risk, encode_event


async def set_halt(redis: aioredis.Redis, keys: Keys, reason: str, now_ms: int, source: str) -> int:
    """Record the halt durably and announce it; returns how many processes heard it."""
    await _record(redis, keys, True, reason, now_ms)
    return await send_control(redis, keys, "halt", reason, source)


async def lift_halt(
    redis: aioredis.Redis, keys: Keys, reason: str, now_ms: int, source: str
) -> int:
    await _record(redis, keys, False, reason, now_ms)
    return await send_control(redis, keys, "resume", reason, source)


async def is_halted(redis: aioredis.Redis, keys: Keys) -> tuple[bool, str]:
    state = decode_risk(await redis.hgetall(keys.risk))
    return state.halted, state.reason


async def _record(
    redis: aioredis.Redis, keys: Keys, halted: bool, reason: str, now_ms: int
) -> None:
    pipe = redis.pipeline(transaction=True)
    pipe.hset(
        keys.risk,
        mapping={"halted": "1" if halted else "0", "reason": reason, "halted_ms": str(now_ms)},
    )
    pipe.xadd(
        keys.stream("pnl"),
        encode_event("risk", {"ts_ms": now_ms, "halted": halted, "reason": reason}),
        maxlen=STREAM_MAXLEN["pnl"],
        approximate=True,
    )
    await pipe.execute()
