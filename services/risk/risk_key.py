"""``dora:risk`` of the wrong type (a person's ``SET`` where the risk process keeps a hash).

Every read and write of it was refused with WRONGTYPE: the executor pulled its quotes (risk state
unreadable) but the risk process never wrote a state again, and nothing recovered without a person
who first had to find out why. The risk process owns the key, so it replaces it (logged as
``bad_key_replaced``), and as a halt: the halt state it held is lost, so trading must not resume
by itself; every reader then sees an ordinary halt, lifted only by ``dora resume``.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from common.halt import replace_corrupt_risk
from common.runtime import Context


def is_wrong_type(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE")


def corrupt_reason(key: str) -> str:
    return (
        f"risk state key {key} was corrupted (not a hash) and replaced: its halt state and the "
        "day's starting PnL were lost; check, then 'dora resume'"
    )


async def replace_risk_key(ctx: Context, error: BaseException) -> None:
    """Delete ``dora:risk`` and write it again as a halt (unless it is a hash again by now)."""
    key = ctx.keys.risk
    replaced = await replace_corrupt_risk(
        ctx.redis, ctx.keys, corrupt_reason(key), ctx.clock.now_ms(), "risk"
    )
    if replaced:
        ctx.log.error("bad_key_replaced", key=key, reason=str(error), halted=True)


async def read_risk(ctx: Context) -> dict[str, Any]:
    """``HGETALL dora:risk``; a key of the wrong type is replaced (a halt) and read again."""
    try:
        return dict(await ctx.redis.hgetall(ctx.keys.risk))
    except ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        await replace_risk_key(ctx, exc)
    return dict(await ctx.redis.hgetall(ctx.keys.risk))
