"""Changing the books of record in Redis: exactly once, atomically, only into a restored Redis.

Each change is one MULTI/EXEC under WATCH of the market's record, the applied ids, the restore
marker and the fills meta: write the market's new ``PositionRecord`` (common/position_record.py),
and append its event (carrying the whole record) to the fills stream for the persister, executor
and strategy. Either all of it happens or none.

- ``apply_fill``/``apply_fills``: a fill id already applied changes nothing; a batch of fills is
  one transaction (a few round trips for the lot);
- ``apply_settlement``: the position closes at the result (``void``: at its cost); the market
  leaves the live set (its hash is removed, its realized PnL and fees move to the ``_closed``
  record) and stays in DynamoDB as a tombstone;
- ``set_from_exchange``: the exchange's position wins (after a restore);
- ``advance_cursor``: how far the REST backfill has covered, with its event, so the persisted
  cursor never runs ahead of the fills persisted before it.

While ``dora:restored`` is missing (Redis lost its data and the persister has not restored yet)
nothing is written: ``NotRestored`` is raised, and the caller keeps the change for later. A
position written into an emptied Redis would otherwise shadow the one the restore brings back.

Given the process's ``FillsMark``, a change also checks and writes its mark (``mark:{token}`` in
the fills meta): Redis losing acknowledged writes is found (``services.fills.mark``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from common.domain import Fill, Position, Settlement, Side
from common.errors import StorageError
from common.events import cursor_event, fill_event, position_event, settlement_event
from common.fees import RoundingFee
from common.keys import Keys
from common.numbers import ONE_DOLLAR
from common.position_record import CLOSED_TICKER, RECENT_MARGIN_MS, PositionRecord
from common.restore import restore_id
from common.streams import queue_append
from services.fills.mark import FillsMark

MAX_WATCH_RETRIES = 20
T = TypeVar("T")


class NotRestored(StorageError):
    """Redis has no ``dora:restored``: its data was lost and is not back yet."""


@dataclass(frozen=True, slots=True)
class Applied:
    fill: Fill
    position: Position


def settlement_id(settlement: Settlement) -> str:
    return f"settle:{settlement.ticker}:{settlement.settled_ms}"


async def _transact(
    redis: aioredis.Redis,
    keys: Keys,
    ticker: str,
    watched: tuple[str, ...],
    body: Callable[[Pipeline], Awaitable[T]],
    mark: FillsMark | None = None,
) -> T:
    """Run ``body`` under WATCH of ``watched`` and the restore marker, retrying on a conflict;
    ``body`` reads, then calls ``pipe.multi()`` and queues the writes (or returns early).

    With ``mark`` (``services.fills.mark``), the process's mark is read first (checked: Redis
    lost acknowledged writes?) and written with the writes; the fills meta is watched then, so
    the marks are applied in the order of their seq."""
    if mark is not None and keys.fills_meta not in watched:
        watched = (*watched, keys.fills_meta)
    for _ in range(MAX_WATCH_RETRIES):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                acked = mark.acked if mark is not None else 0  # before the read is sent
                await pipe.watch(keys.restored, *watched)
                # through execute_command: the cluster pipeline splits ``exists`` by slot and,
                # while watching, never runs it (redis-py 8.1)
                marker, raw = await pipe.execute_command(
                    "EVAL",
                    _RESTORED_AND_MARK,
                    2,
                    keys.restored,
                    keys.fills_meta,
                    mark.name if mark is not None else "",
                )
                if marker is None:
                    await pipe.unwatch()
                    raise NotRestored("Redis lost its data: waiting for the restore")
                restored = restore_id(marker)
                if mark is not None:
                    mark.check(raw, restored, acked)
                result = await body(pipe)
                # a cluster pipeline does not say whether MULTI began: queued writes tell
                if getattr(pipe, "explicit_transaction", len(pipe) > 0):
                    seq = 0
                    if mark is not None:
                        seq, value = mark.next()
                        pipe.hset(keys.fills_meta, mark.name, value)
                    await pipe.execute()
                    if mark is not None:
                        mark.answered(seq, restored)
                return result
            except WatchError:
                continue
    raise StorageError(f"the books of {ticker} kept changing; not applied")


# KEYS: the restore marker, the fills meta; ARGV: the mark's field ("" for none)
_RESTORED_AND_MARK = """
local mark = false
if ARGV[1] ~= '' then mark = redis.call('HGET', KEYS[2], ARGV[1]) end
return {redis.call('GET', KEYS[1]), mark}
"""


async def _keep_from_ms(pipe: Pipeline, keys: Keys) -> int:
    """Recent fills older than this can never be listed again by the backfill."""
    covered = await pipe.hget(keys.fills_meta, "backfilled_to_ms")
    return max(0, int(covered or 0) - RECENT_MARGIN_MS)


# KEYS: the applied fill ids, the fills meta, the records of the batch's T markets, then their
# rounding accumulators. ARGV: T, then (fill id, market index from 0, order id) per fill.
_READ_FILLS = """
local t = tonumber(ARGV[1])
local applied, accumulators, records = {}, {}, {}
for i = 2, #ARGV, 3 do
  applied[#applied + 1] = redis.call('SISMEMBER', KEYS[1], ARGV[i])
  local acc = redis.call('HGET', KEYS[3 + t + tonumber(ARGV[i + 1])], ARGV[i + 2])
  accumulators[#accumulators + 1] = acc or ''
end
for i = 1, t do records[i] = redis.call('HGETALL', KEYS[2 + i]) end
local meta = redis.call('HMGET', KEYS[2], 'backfilled_to_ms', 'last_fill_ms')
return {applied, {meta[1] or '', meta[2] or ''}, records, accumulators}
"""


def _pairs(flat: Sequence[Any]) -> dict[str, Any]:
    """A hash as HGETALL answers it inside a script: field, value, field, value..."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def apply_fill(
    redis: aioredis.Redis,
    keys: Keys,
    fill: Fill,
    rounding: RoundingFee | None = None,
    mark: FillsMark | None = None,
) -> Applied | None:
    """Apply ``fill`` once; returns the new position, or None if the fill was already applied.

    With ``rounding``, the fill's fee becomes what the balance lost: the exchange's trade fee
    plus the rounding fee, less a rebate of the order's rounding accumulator (common/fees.py),
    which is kept per order in ``dora:feeacc:{ticker}`` and moves with the fill, atomically."""
    (applied,) = await apply_fills(redis, keys, [fill], rounding, mark=mark)
    return applied


async def apply_fills(
    redis: aioredis.Redis,
    keys: Keys,
    fills: Sequence[Fill],
    rounding: RoundingFee | None = None,
    updates: Sequence[tuple[int, Mapping[str, Any]]] = (),
    mark: FillsMark | None = None,
) -> list[Applied | None]:
    """Apply ``fills`` in their order, each once, all in one transaction: what ``apply_fill``
    does to each, in four round trips for the lot (WATCH, the restore marker, one pipeline of
    reads, EXEC) rather than eight per fill, so a burst of executions (or a backfill listing
    many already applied) never leaves the fills behind the exchange. One entry per fill: its
    new position, or None when it was applied already (before, or earlier in ``fills``).

    ``updates``: the exchange's order updates that came between the fills, appended to the
    stream (``user_order`` events) in the same transaction, each before the fill of its index
    (after them all at ``len(fills)``): the socket sends a fill and its order's update one
    after the other, and the stream keeps that order."""
    if not fills:
        return []
    tickers = list(dict.fromkeys(f.ticker for f in fills))
    acc_keys = {t: keys.fee_rounding(t) for t in tickers}
    watched = (*(keys.pos(t) for t in tickers), keys.fill_ids, keys.fills_meta, *acc_keys.values())

    async def body(pipe: Pipeline) -> list[Applied | None]:
        # one read on the watched connection: which fills are applied, the cursor, the records
        # and each fill's order's rounding accumulator
        names = [keys.fill_ids, keys.fills_meta, *(keys.pos(t) for t in tickers)]
        names += [acc_keys[t] for t in tickers]
        where = {t: i for i, t in enumerate(tickers)}
        args: list[Any] = [len(tickers)]
        for fill in fills:
            args += [fill.fill_id, where[fill.ticker], fill.order_id]
        reply = await pipe.execute_command("EVAL", _READ_FILLS, len(names), *names, *args)
        applied_before, (covered, last), raw_records, raw_accumulators = reply
        records = {
            t: PositionRecord.from_redis(t, _pairs(fields))
            for t, fields in zip(tickers, raw_records, strict=True)
        }
        accumulators = {
            (f.ticker, f.order_id): int(value or 0)
            for f, value in zip(fills, raw_accumulators, strict=True)
        }
        keep_from_ms = max(0, int(covered or 0) - RECENT_MARGIN_MS)
        last_ms = int(last or 0)
        seen = {f.fill_id for f, before in zip(fills, applied_before, strict=True) if int(before)}
        out: list[Applied | None] = []
        events: list[dict[str, Any] | None] = []  # each fill's event (None: applied before)
        moved: set[tuple[str, str]] = set()  # the accumulators the applied fills changed
        for fill in fills:
            if fill.fill_id in seen:
                out.append(None)
                events.append(None)
                continue
            seen.add(fill.fill_id)
            booked = fill  # each attempt starts from the exchange's fee
            if rounding is not None:
                rounded = rounding.apply(
                    fill.side is Side.BID,
                    fill.price,
                    fill.count,
                    fill.fee,
                    accumulators[(fill.ticker, fill.order_id)],
                )
                accumulators[(fill.ticker, fill.order_id)] = rounded.accumulator
                moved.add((fill.ticker, fill.order_id))
                booked = replace(fill, fee=rounded.net)
            record = records[fill.ticker]
            after = record.position.apply_fill(booked)
            records[fill.ticker] = record.changed(
                after, fill=(fill.fill_id, fill.ts_ms), keep_from_ms=keep_from_ms
            )
            events.append(fill_event(booked, after, records[fill.ticker].payload()))
            out.append(Applied(booked, after))
        applied = [a for a in out if a is not None]
        if not applied and not updates:
            await pipe.unwatch()
            return out
        pipe.multi()
        if applied:
            pipe.sadd(keys.fill_ids, *[a.fill.fill_id for a in applied])
            for ticker in {a.fill.ticker for a in applied}:
                pipe.hset(keys.pos(ticker), mapping=records[ticker].redis_fields())
            for ticker, order_id in moved:
                pipe.hset(acc_keys[ticker], order_id, str(accumulators[(ticker, order_id)]))
            newest = max(a.fill.ts_ms for a in applied)
            if newest > last_ms:
                pipe.hset(keys.fills_meta, "last_fill_ms", str(newest))
        before: dict[int, list[Mapping[str, Any]]] = {}
        for index, update in updates:
            before.setdefault(index, []).append(update)
        for index, event in enumerate([*events, None]):
            for update in before.get(index, ()):
                queue_append(pipe, keys, "fills", "user_order", update)
            if event is not None:
                queue_append(pipe, keys, "fills", "fill", event)
        return out

    return await _transact(redis, keys, tickers[0], watched, body, mark)


def closing_position(position: Position, settlement: Settlement) -> Position:
    """``position`` closed at the market's result: YES pays $1, NO pays $1 on the other side, a
    scalar its value; ``void`` returns the cost (nothing realized)."""
    if settlement.result == "void":
        return replace(
            position,
            position=0,
            cost=0,
            fees=position.fees + settlement.fee,
            last_fill_ms=max(position.last_fill_ms, settlement.settled_ms),
        )
    if settlement.result == "yes":
        payout_price = ONE_DOLLAR
    elif settlement.result == "no":
        payout_price = 0
    else:
        payout_price = settlement.value if settlement.value is not None else 0
    closing = Fill(
        settlement_id(settlement),
        "settlement",
        position.ticker,
        Side.ASK if position.position > 0 else Side.BID,
        payout_price,
        abs(position.position),
        settlement.fee,
        False,
        settlement.settled_ms,
    )
    return position.apply_fill(closing) if position.position else position


async def apply_settlement(
    redis: aioredis.Redis, keys: Keys, settlement: Settlement, mark: FillsMark | None = None
) -> Position | None:
    """Close the market's position at its result, once per settlement, atomically with its
    ``settlement`` event; the market leaves the live set. Returns the closed position, or None
    when this settlement was already applied."""
    ticker = settlement.ticker
    settle_id = settlement_id(settlement)
    pos_key, closed_key = keys.pos(ticker), keys.pos(CLOSED_TICKER)

    async def body(pipe: Pipeline) -> Position | None:
        if await pipe.sismember(keys.fill_ids, settle_id):
            await pipe.unwatch()
            return None
        record = PositionRecord.from_redis(ticker, await pipe.hgetall(pos_key))
        closed = PositionRecord.from_redis(CLOSED_TICKER, await pipe.hgetall(closed_key))
        after = closing_position(record.position, settlement)
        tombstone = replace(
            record.changed(after, keep_from_ms=await _keep_from_ms(pipe, keys)),
            settled_ms=settlement.settled_ms,
            settlement_id=settle_id,
        )
        pooled = closed.changed(
            replace(
                closed.position,
                realized_pnl=closed.position.realized_pnl + after.realized_pnl,
                fees=closed.position.fees + after.fees,
            )
        )
        pipe.multi()
        pipe.sadd(keys.fill_ids, settle_id)
        pipe.delete(pos_key)
        pipe.hset(closed_key, mapping=pooled.redis_fields())
        queue_append(
            pipe,
            keys,
            "fills",
            "settlement",
            settlement_event(settlement, record.position, tombstone.payload(), pooled.payload()),
        )
        return after

    watched = (pos_key, closed_key, keys.fill_ids)
    return await _transact(redis, keys, ticker, watched, body, mark)


async def set_from_exchange(
    redis: aioredis.Redis,
    keys: Keys,
    ticker: str,
    expected: Position,
    position: int,
    cost: int,
    now_ms: int,
    reason: str,
) -> bool:
    """Set the market's position (count and cost) to the exchange's, if it is still
    ``expected`` (a fill applied meanwhile means the comparison is stale: False)."""
    pos_key = keys.pos(ticker)

    async def body(pipe: Pipeline) -> bool:
        record = PositionRecord.from_redis(ticker, await pipe.hgetall(pos_key))
        if record.position != expected:
            await pipe.unwatch()
            return False
        new = record.changed(replace(record.position, position=position, cost=cost))
        pipe.multi()
        pipe.hset(pos_key, mapping=new.redis_fields())
        event = position_event(ticker, now_ms, reason, expected, new.payload())
        queue_append(pipe, keys, "fills", "position", event)
        return True

    return await _transact(redis, keys, ticker, (pos_key,), body)


async def advance_cursor(
    redis: aioredis.Redis, keys: Keys, backfilled_to_ms: int, settled_to_ms: int
) -> None:
    """Record how far the REST backfill has covered (exchange time), with its event."""

    async def body(pipe: Pipeline) -> None:
        pipe.multi()
        fields: dict[str, Any] = {
            "backfilled_to_ms": str(backfilled_to_ms),
            "settled_to_ms": str(settled_to_ms),
        }
        pipe.hset(keys.fills_meta, mapping=fields)
        queue_append(pipe, keys, "fills", "cursor", cursor_event(backfilled_to_ms, settled_to_ms))

    await _transact(redis, keys, "(cursor)", (keys.fills_meta,), body)
