"""``dora:risk`` of the wrong type (a person's ``SET`` where the risk process keeps a hash), or
without its trading day (a person's ``DEL``).

Every read and write of a key of the wrong type was refused with WRONGTYPE: the executor pulled
its quotes (risk state unreadable) but the risk process never wrote a state again, and nothing
recovered without a person who first had to find out why. The risk process owns the key, so it
replaces it (logged as ``bad_key_replaced``), and as a halt: the halt state it held is lost, so
trading must not resume by itself; every reader then sees an ordinary halt, lifted only by
``dora resume``. The trading day is kept from the risk process's last record on the pnl stream
(``common.risk_record``). A deleted key is written again from the same record, its halt kept
(``common.risk_deleted``, logged as ``deleted_key_restored``). A halt whose flag was set to 0 or
deleted by hand, with no resume recorded after it, is still a halt (``common.halt``): ``halted
1`` is written back, its reason and ``halted_ms`` kept (logged as ``halt_lifted_by_hand``).
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from common.domain import RiskState
from common.restore import restore_id
from common.risk_deleted import restore_deleted_risk
from common.risk_record import Replacement, replace_corrupt_risk
from common.runtime import Context


def is_wrong_type(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE")


def _log(ctx: Context, event: str, replaced: Replacement, **fields: object) -> None:
    kept = replaced.record
    ctx.log.error(
        event,
        key=ctx.keys.risk,
        day=kept.day if kept else "",
        day_start_pnl=kept.day_start_pnl if kept else None,
        kept_from_ms=kept.last_check_ms if kept else None,
        **fields,
    )


async def replace_risk_key(ctx: Context, error: BaseException) -> None:
    """Delete ``dora:risk`` and write it again as a halt (unless it is a hash again by now)."""
    replaced = await replace_corrupt_risk(ctx.redis, ctx.keys, ctx.clock.now_ms(), "risk")
    if replaced is not None:
        _log(ctx, "bad_key_replaced", replaced, reason=str(error), halted=True)


async def _read(ctx: Context) -> tuple[dict[str, Any] | Exception, int | None]:
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hgetall(ctx.keys.risk)
    pipe.get(ctx.keys.restored)
    fields, marker = await pipe.execute(raise_on_error=False)
    if isinstance(marker, Exception):
        raise marker
    return (fields if isinstance(fields, Exception) else dict(fields)), restore_id(marker)


async def read_risk(ctx: Context, seen_restore: int | None) -> tuple[dict[str, Any], int | None]:
    """``HGETALL dora:risk`` and the restore Redis holds the data of. A key of the wrong type is
    replaced (a halt), one without its trading day written again from the record (unless a
    fresh install: ``seen_restore`` is the restore under which this process saw it hold a day),
    and read again."""
    fields, restore = await _read(ctx)
    if isinstance(fields, Exception):
        if not is_wrong_type(fields):
            raise fields
        await replace_risk_key(ctx, fields)
    elif "day" in fields:
        return fields, restore
    else:
        now_ms = ctx.clock.now_ms()
        replaced = await restore_deleted_risk(
            ctx.redis, ctx.keys, now_ms, "risk", seen_restore=seen_restore
        )
        if replaced is None:
            return fields, restore
        _log(ctx, "deleted_key_restored", replaced, halted=bool(replaced.reason))
    fields, restore = await _read(ctx)
    if isinstance(fields, Exception):
        raise fields
    return fields, restore


# Only while the key still holds that halt with no resume after it (a resume meanwhile wins).
_PUT_HALT_BACK = """
local f = redis.call('HMGET', KEYS[1], 'halted', 'halted_ms', 'resumed_ms', 'reason')
local halted_ms = tonumber(f[2] or '0') or 0
if f[1] == '1' or halted_ms ~= tonumber(ARGV[1]) or halted_ms < (tonumber(f[3] or '0') or 0) then
  return 0
end
redis.call('HSET', KEYS[1], 'halted', '1')
if not f[4] or f[4] == '' then
  redis.call('HSET', KEYS[1], 'reason', ARGV[2])
end
return 1
"""


async def put_halt_back(ctx: Context, fields: dict[str, Any], state: RiskState) -> bool:
    """``halted 1`` written back when the key's flag says otherwise (edited by hand) while the
    halt is in force (``state``, as ``decode_risk`` read ``fields``); True when it was."""
    if fields.get("halted") == "1" and fields.get("resumed_ms") is None:
        # a halt recorded before resumes left a mark: given one now (0, unless a resume wrote
        # its own meanwhile), so a hand edit of its flag is seen from here on
        await ctx.redis.hsetnx(ctx.keys.risk, "resumed_ms", "0")
    if not state.halted or fields.get("halted") == "1":
        return False
    reason = state.reason or "halt lifted by hand without 'dora resume'"
    if not await ctx.redis.eval(_PUT_HALT_BACK, 1, ctx.keys.risk, str(state.halted_ms), reason):
        return False
    ctx.log.error(
        "halt_lifted_by_hand",
        key=ctx.keys.risk,
        flag=fields.get("halted"),
        reason=reason,
        halted_ms=state.halted_ms,
        detail="halted 0 without a resume is no resume: put back, lift with 'dora resume'",
    )
    return True
