"""``dora:risk`` deleted by hand (``DEL``) while Redis keeps its data, written again from the record.

The risk process writes the trading day (``day``) at every check. A key without it (deleted, or
holding only the halt fields a ``dora halt`` or ``dora resume`` wrote into the deleted key) made
the next check start the day again: the day's earlier losses stopped counting toward
``max_daily_loss``, and the ``halted 0`` written beside it lifted a halt. So, as for a key of the
wrong type (``common.risk_record``), the day is kept from the risk process's last record on the
pnl stream, and so is the halt as last recorded there (a halt the key holds by now stays); with
no record of the day it is a halt that says why, lifted by ``dora resume`` (the day then counts
from the next check).

Not when Redis lost its data (no ``dora:restored``): the persister's restore from DynamoDB is the
path. Not on a fresh install, told apart by all of: nothing of the risk process ever on the pnl
stream, no risk state restored from DynamoDB (the marker's ``risk_restored``; a marker written
before it was recorded says nothing), and the caller did not see a day since that restore (the
risk process that wrote one).
"""

from __future__ import annotations

from dataclasses import replace

import orjson
import redis.asyncio as aioredis

from common.control import send_control
from common.domain import RiskState
from common.keys import Keys
from common.redis_codec import encode_risk
from common.restore import restore_id
from common.risk_record import Replacement, read_record
from common.streams import append

HALT_FIELDS = ("halted", "reason", "halted_ms", "resumed_ms")

# The fields without the halt; then the halt when it is one and the key does not hold one by now
# (a halt set meanwhile stays, and a halt is never lifted here). Nothing once the key has a day.
_WRITE_IF_NO_DAY = """
if redis.call('HEXISTS', KEYS[1], 'day') == 1 then
  return 0
end
local n = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2, n + 1))
if ARGV[n + 2] == '1' and redis.call('HGET', KEYS[1], 'halted') ~= '1' then
  redis.call('HSET', KEYS[1], 'halted', '1', 'reason', ARGV[n + 3], 'halted_ms', ARGV[n + 4])
  redis.call('HSETNX', KEYS[1], 'resumed_ms', '0')
  return 2
end
redis.call('HSETNX', KEYS[1], 'halted', '0')
return 1
"""


def risk_restored(marker: str | bytes | None) -> bool:
    """Whether the restore that ``dora:restored`` records put a risk state back from DynamoDB."""
    try:
        value = orjson.loads(marker) if marker else None
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) and value.get("risk_restored") is True


def deleted_reason(key: str, stream: str) -> str:
    return (
        f"risk state key {key} was deleted and no risk record of the day was found on {stream}: "
        "the day's earlier losses would not count toward max_daily_loss, and a halt it held "
        "may be lost; check, then 'dora resume' (the day then counts from the next check)"
    )


async def restore_deleted_risk(
    redis: aioredis.Redis,
    keys: Keys,
    now_ms: int,
    source: str,
    *,
    seen_restore: int | None = None,
    announce: bool = True,
) -> Replacement | None:
    """Write ``dora:risk`` again from the last record when it has no trading day (see above);
    ``seen_restore``: the restore under which the caller saw the key hold a day. A halt it writes
    is recorded on the pnl stream and, when ``announce``, published. None when nothing was
    written (a day is there, Redis lost its data, a fresh install)."""
    marker = await redis.get(keys.restored)
    if marker is None or await redis.hexists(keys.risk, "day"):
        return None
    record = await read_record(redis, keys)
    seen = seen_restore is not None and seen_restore == restore_id(marker)
    if record.never and not risk_restored(marker) and not seen:
        return None
    kept = record.snapshot
    if kept is None:
        state = RiskState(True, deleted_reason(keys.risk, keys.stream("pnl")), now_ms)
    else:
        state = replace(
            kept,
            halted=record.halted,
            reason=record.reason if record.halted else "",
            halted_ms=record.halted_ms if record.halted else 0,
            check_failures=0,
            check_error="",
        )
    fields = [x for k, v in encode_risk(state).items() if k not in HALT_FIELDS for x in (k, v)]
    halt = ["1" if state.halted else "0", state.reason, str(state.halted_ms)]
    args = [str(len(fields)), *fields, *halt]
    wrote = await redis.eval(_WRITE_IF_NO_DAY, 1, keys.risk, *args)
    if not wrote:
        return None
    if wrote == 2:
        event = {"ts_ms": state.halted_ms, "halted": True, "reason": state.reason}
        await append(redis, keys, "pnl", "risk", event)
        if announce:
            await send_control(redis, keys, "halt", state.reason, source)
    return Replacement(state.reason, kept)
