"""``dora:risk`` of the wrong type (a person's ``SET``) written again, keeping the trading day.

The halt state it held is lost, so the replacement is a halt (only ``dora resume`` lifts it). The
day's starting total PnL (``day_start_pnl``: daily PnL = total - it) must not be lost: a day
started again at the next check forgives every loss made earlier that day, and the daily loss
limit could be passed. It is taken from the risk process's own last record, its ``pnl``
snapshot on the pnl stream (at least every 5 s, and at every roll of the day), so no process
writes what another owns: the risk process owns both ``dora:risk`` and that stream, and the
persister's DynamoDB ``risk_state`` is only a copy of ``dora:risk``. A record of an earlier day
rolls as usual at the next check (``common.trading_day``): the new day starts from its total.

Without a record (the stream deleted, or written before the snapshot carried the day's start)
the day's start is not known: the halt's reason says so, and ``dora resume`` refuses once
(``common.halt.lift_halt``); a second resume accepts that the day counts from the next check.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import redis.asyncio as aioredis

from common.clock import iso_from_ms
from common.control import send_control
from common.domain import RiskState
from common.errors import SchemaError
from common.events import risk_from_event
from common.keys import Keys
from common.messages import decode_event
from common.redis_codec import encode_risk
from common.streams import append

RECORD_PAGE = 50  # entries read back at a time: halts (``risk``) sit among the snapshots
RECORD_SCAN = 2_000  # at most this far back (the risk process snapshots at least every 5 s)


@dataclass(frozen=True, slots=True)
class Replacement:
    """What replaced a corrupt ``dora:risk``: the halt's reason, and the record its trading day
    was kept from (None: no record was found, the day's start is not known)."""

    reason: str
    record: RiskState | None


@dataclass(frozen=True, slots=True)
class RiskRecord:
    """What the pnl stream says of the risk state. ``snapshot``: the newest ``pnl`` snapshot,
    None when there is none or it does not say the day's starting PnL (never a start of 0 by
    default). The halt: the newest ``risk`` entry (every halt and resume writes one), or halted
    when a snapshot newer than it says so (a restored halt; a check that read the key just
    before a halt). ``never``: the whole stream was read and no snapshot or day is in it."""

    snapshot: RiskState | None
    halted: bool = False
    reason: str = ""
    halted_ms: int = 0
    never: bool = False


def _halt(payload: dict[str, object]) -> tuple[bool, str, int]:
    ts_ms = payload.get("ts_ms")
    ts = ts_ms if isinstance(ts_ms, int) and not isinstance(ts_ms, bool) else 0
    return payload.get("halted") is True, str(payload.get("reason") or "")[:500], ts


def _snapshot(payload: dict[str, object]) -> RiskState | None:
    if "day_start_pnl" not in payload:
        return None
    try:
        return risk_from_event(payload)
    except SchemaError:
        return None


async def read_record(redis: aioredis.Redis, keys: Keys) -> RiskRecord:
    """The risk process's record on the pnl stream, newest first, page by page."""
    stream, newest, read = keys.stream("pnl"), "+", 0
    snapshot: RiskState | None = None
    looked = seen = False  # the newest snapshot was looked at; any snapshot or day was seen
    halt: tuple[bool, str, int] | None = None  # the newest halt or resume
    halted_after: tuple[bool, str, int] | None = None  # a halted snapshot newer than it
    while read < RECORD_SCAN:
        entries = await redis.xrevrange(stream, max=newest, count=RECORD_PAGE)
        for _, fields in entries:
            try:
                kind, payload = decode_event(fields)
            except SchemaError:
                kind, payload = "", {}  # unreadable: the day is not known from here on
            if kind == "risk":
                halt = halt or _halt(payload)
                continue
            seen = True
            if kind in ("pnl", "") and halt is None and payload.get("halted") is True:
                halted_after = halted_after or _halt(payload)
            if kind in ("pnl", "") and not looked:
                looked, snapshot = True, _snapshot(payload) if kind else None
            if looked and halt is not None:
                return _record(snapshot, halt, halted_after, never=False)
        if len(entries) < RECORD_PAGE:
            return _record(snapshot, halt, halted_after, never=not seen)
        oldest = entries[-1][0]
        newest = f"({oldest.decode() if isinstance(oldest, bytes) else oldest}"
        read += len(entries)
    return _record(snapshot, halt, halted_after, never=False)


def _record(
    snapshot: RiskState | None,
    halt: tuple[bool, str, int] | None,
    halted_after: tuple[bool, str, int] | None,
    *,
    never: bool,
) -> RiskRecord:
    newest = halt if halt is not None and halt[0] else halted_after or halt
    halted, reason, halted_ms = newest or (False, "", 0)
    return RiskRecord(snapshot, halted, reason, halted_ms, never)


async def last_risk_record(redis: aioredis.Redis, keys: Keys) -> RiskState | None:
    """The risk process's newest ``pnl`` snapshot with the day's starting PnL, or None."""
    return (await read_record(redis, keys)).snapshot


def corrupt_reason(key: str, stream: str, record: RiskState | None) -> str:
    if record is not None:
        return (
            f"risk state key {key} was corrupted (not a hash) and replaced: its halt state was "
            f"lost; the day's starting PnL was kept from the risk record of "
            f"{iso_from_ms(record.last_check_ms)}; check, then 'dora resume'"
        )
    return (
        f"risk state key {key} was corrupted (not a hash) and replaced: its halt state was lost "
        f"and no risk record of the day was found on {stream}, so the day's earlier losses would "
        "not count toward max_daily_loss; check, then 'dora resume' (the day then counts from "
        "the next check)"
    )


_REPLACE_IF_NOT_A_HASH = """
if redis.call('TYPE', KEYS[1])['ok'] == 'hash' then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


async def replace_corrupt_risk(
    redis: aioredis.Redis,
    keys: Keys,
    now_ms: int,
    source: str,
    *,
    announce: bool = True,
    reason: str = "",
) -> Replacement | None:
    """Delete ``dora:risk`` and write it again as a halt with the trading day of the last risk
    record, recorded on the pnl stream and, when ``announce``, published like any halt (a
    resume that replaces the key does not: the risk process would record a halt heard after
    the resume; ``dora halt`` announces its own). The halt's reason says what happened, or is
    ``reason`` (an operator's halt). Nothing is done when it is a hash again by then (someone
    rewrote it meanwhile): returns None."""
    record = await last_risk_record(redis, keys)
    reason = reason or corrupt_reason(keys.risk, keys.stream("pnl"), record)
    kept = record or RiskState()
    state = replace(kept, halted=True, reason=reason, halted_ms=now_ms, check_failures=0)
    fields = [item for pair in encode_risk(state).items() for item in pair]
    if not await redis.eval(_REPLACE_IF_NOT_A_HASH, 1, keys.risk, *fields):
        return None
    await append(redis, keys, "pnl", "risk", {"ts_ms": now_ms, "halted": True, "reason": reason})
    if announce:
        await send_control(redis, keys, "halt", reason, source)
    return Replacement(reason, record)
