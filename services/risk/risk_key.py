"""``dora:risk`` of the wrong type (a person's ``SET`` where the risk process keeps a hash).

Every read and write of it was refused with WRONGTYPE: the executor pulled its quotes (risk state
unreadable) but the risk process never wrote a state again, and nothing recovered without a person
who first had to find out why. The risk process owns the key, so it replaces it (logged as
``bad_key_replaced``), and as a halt: the halt state it held is lost, so trading must not resume
by itself; every reader then sees an ordinary halt, lifted only by ``dora resume``. The trading
day is kept from the risk process's last record on the pnl stream (``common.risk_record``).
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from common.risk_record import replace_corrupt_risk
from common.runtime import Context


def is_wrong_type(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE")


async def replace_risk_key(ctx: Context, error: BaseException) -> None:
    """Delete ``dora:risk`` and write it again as a halt (unless it is a hash again by now)."""
    replaced = await replace_corrupt_risk(ctx.redis, ctx.keys, ctx.clock.now_ms(), "risk")
    if replaced is not None:
        kept = replaced.record
        ctx.log.error(
            "bad_key_replaced",
            key=ctx.keys.risk,
            reason=str(error),
            halted=True,
            day=kept.day if kept else "",
            day_start_pnl=kept.day_start_pnl if kept else None,
            kept_from_ms=kept.last_check_ms if kept else None,
        )


async def read_risk(ctx: Context) -> dict[str, Any]:
    """``HGETALL dora:risk``; a key of the wrong type is replaced (a halt) and read again."""
    try:
        return dict(await ctx.redis.hgetall(ctx.keys.risk))
    except ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        await replace_risk_key(ctx, exc)
    return dict(await ctx.redis.hgetall(ctx.keys.risk))
