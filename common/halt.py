"""The halt contract (DESIGN.md §3): set, lift and read the durable halt.

The halt lives in ``dora:risk`` (``halted``, ``reason``, ``halted_ms``) and is persisted to
DynamoDB's ``risk_state`` by the persister (a ``risk`` event on the pnl stream asks it to write
at once). Setting it also publishes ``halt`` on ``dora:control`` so the executor stops sending and
cancels every resting order within a second, and risk cancels directly at the exchange if the
executor is not alive. Only ``resume`` lifts it.

A resume leaves a mark a hand edit does not: ``resumed_ms``, always later than the halt's
``halted_ms`` (and a halt's ``halted_ms`` later than the last ``resumed_ms``, so the two never tie,
even in one millisecond). ``halted 0`` without a resume after the halt (``HSET dora:risk halted
0`` or ``HDEL dora:risk halted`` by hand) is still a halt to every reader
(``common.domain.halt_in_force``), and the risk process writes ``halted 1`` back.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.clock import iso_from_ms
from common.control import send_control
from common.errors import StorageError
from common.keys import Keys
from common.redis_codec import decode_risk
from common.risk_deleted import restore_deleted_risk
from common.risk_record import Replacement, replace_corrupt_risk
from common.streams import append, queue_append


class HaltNotRecorded(StorageError):
    """The halt went out on the control channel but Redis refused to record it in ``dora:risk``."""

    def __init__(self, key: str, heard: int, error: Exception) -> None:
        super().__init__(
            f"halt announced to {heard} process(es), but Redis answered with an error when it "
            f"was recorded in {key} ({error})"
        )
        self.heard = heard


CORRUPT = "was corrupted (not a hash)"
DELETED = "was deleted"


@dataclass(frozen=True, slots=True)
class Announced:
    """A halt or resume recorded and announced: how many processes heard it, and the
    replacement of ``dora:risk`` it made first (None when the key was as it should be)."""

    heard: int
    replaced: Replacement | None = None
    what: str = CORRUPT  # what had happened to the key it replaced

    def told(self) -> str:
        """The replacement (if any) and how many heard it, as a person is told: "...; N
        process(es) notified"."""
        note = self.note()
        return f"{note + '; ' if note else ''}{self.heard} process(es) notified"

    def note(self) -> str:
        """What a person is told of the replacement ("" when there was none)."""
        if self.replaced is None:
            return ""
        if self.replaced.record is None:
            return (
                f"risk state key {self.what} and replaced: no risk record of the day was found, "
                "so the day counts from the next check"
            )
        return (
            f"risk state key {self.what} and replaced, the day's starting PnL kept from the risk "
            f"record of {iso_from_ms(self.replaced.record.last_check_ms)}"
        )


async def set_halt(
    redis: aioredis.Redis, keys: Keys, reason: str, now_ms: int, source: str
) -> Announced:
    """Record the halt durably and announce it. A ``dora:risk`` of the wrong type (a person's
    ``SET``) is replaced as the risk process would (``common.risk_record``), keeping the trading
    day, with this halt's reason. The kill switch goes out even when Redis refuses the record
    otherwise: every process stops on the message; ``HaltNotRecorded`` says so."""
    replaced = None
    try:
        if await redis.type(keys.risk) not in ("hash", "none", b"hash", b"none"):
            replaced = await replace_corrupt_risk(
                redis, keys, now_ms, source, announce=False, reason=reason
            )
        if replaced is None:  # (a hash again by then: recorded as usual)
            await _record(redis, keys, True, reason, now_ms)
    except ResponseError as exc:
        heard = await send_control(redis, keys, "halt", reason, source)
        raise HaltNotRecorded(keys.risk, heard, exc) from exc
    return Announced(await send_control(redis, keys, "halt", reason, source), replaced)


class ResumeRefused(StorageError):
    """``dora:risk`` was of the wrong type or deleted, and no record of the trading day was
    found: it was written again as a halt that says so, and a second resume accepts that the
    day counts from now."""

    def __init__(self, key: str, stream: str, what: str) -> None:
        super().__init__(
            f"not resumed: risk state key {key} {what} and is replaced by a halt: no risk record "
            f"of the day was found on {stream}, so the day's earlier losses would not count "
            "toward max_daily_loss; check, then 'dora resume' again (the day then counts from "
            "the next check)"
        )


async def lift_halt(
    redis: aioredis.Redis, keys: Keys, reason: str, now_ms: int, source: str
) -> Announced:
    """Record the resume and announce it. A ``dora:risk`` of the wrong type, or deleted (no
    trading day in it), is first written again as the risk process would, keeping the trading
    day (``common.risk_record``, ``common.risk_deleted``); when no record of the day is found it
    stays halted (``ResumeRefused``)."""
    kind = await redis.type(keys.risk)
    replaced, what = None, CORRUPT
    if kind not in ("hash", "none", b"hash", b"none"):
        replaced = await replace_corrupt_risk(redis, keys, now_ms, source, announce=False)
    else:
        what = DELETED
        replaced = await restore_deleted_risk(redis, keys, now_ms, source, announce=False)
    if replaced is not None and replaced.record is None:
        raise ResumeRefused(keys.risk, keys.stream("pnl"), what)
    await _record(redis, keys, False, reason, now_ms)
    return Announced(await send_control(redis, keys, "resume", reason, source), replaced, what)


_RECORD_IF_NOT_HALTED = """
local fields = redis.call('HMGET', KEYS[1], 'halted', 'halted_ms', 'resumed_ms')
local newest = math.max(tonumber(fields[2] or '0') or 0, tonumber(fields[3] or '0') or 0)
if fields[1] == '1' or newest >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'halted', '1', 'reason', ARGV[1], 'halted_ms', ARGV[2])
redis.call('HSETNX', KEYS[1], 'resumed_ms', '0')
return 1
"""


async def record_heard_halt(redis: aioredis.Redis, keys: Keys, reason: str, heard_ms: int) -> bool:
    """Make a halt heard on the control channel durable (a bare ``PUBLISH dora:control halt``
    records nothing by itself). Only when the halt is not recorded yet and nothing newer (a halt
    or resume recorded at or after ``heard_ms``) is there; returns True when this call recorded
    it."""
    recorded = bool(await redis.eval(_RECORD_IF_NOT_HALTED, 1, keys.risk, reason, str(heard_ms)))
    if recorded:
        await append(
            redis, keys, "pnl", "risk", {"ts_ms": heard_ms, "halted": True, "reason": reason}
        )
    return recorded


async def is_halted(redis: aioredis.Redis, keys: Keys) -> tuple[bool, str]:
    state = decode_risk(await redis.hgetall(keys.risk))
    return state.halted, state.reason


# A halt stamps ``halted_ms``, a resume ``resumed_ms`` (``halted_ms`` stays: when it was set);
# each is now, or 1 ms after the other when that is not earlier (the same millisecond).
_STAMP = """
local mine, other = 'resumed_ms', 'halted_ms'
if ARGV[1] == '1' then
  mine, other = 'halted_ms', 'resumed_ms'
end
local before = tonumber(redis.call('HGET', KEYS[1], other) or '0') or 0
local stamp = string.format('%d', math.max(tonumber(ARGV[3]), before + 1))
redis.call('HSET', KEYS[1], 'halted', ARGV[1], 'reason', ARGV[2], mine, stamp)
redis.call('HSETNX', KEYS[1], 'resumed_ms', '0')  -- a halt's record always has the field
return stamp
"""


async def _record(
    redis: aioredis.Redis, keys: Keys, halted: bool, reason: str, now_ms: int
) -> None:
    pipe = redis.pipeline(transaction=True)
    pipe.eval(_STAMP, 1, keys.risk, "1" if halted else "0", reason, str(now_ms))
    queue_append(pipe, keys, "pnl", "risk", {"ts_ms": now_ms, "halted": halted, "reason": reason})
    await pipe.execute()
