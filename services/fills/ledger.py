"""Applying a fill to the books of record in Redis: exactly once, atomically.

One MULTI/EXEC per fill, under WATCH of the market's position: mark the fill id seen, write the
new position (exact integer cost basis, realized PnL and fees from ``Position.apply_fill``), move
the last-fill time forward and append the ``fill`` event for the persister, executor and
strategy. Either all of it happens or none; a fill id already seen (from the WebSocket, a REST
backfill, or a replay after a crash) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from common.domain import Fill, Position, Settlement, Side
from common.events import fill_event
from common.fees import RoundingFee
from common.keys import Keys
from common.numbers import ONE_DOLLAR
from common.redis_codec import decode_position, encode_position
from common.streams import queue_append

MAX_WATCH_RETRIES = 20


@dataclass(frozen=True, slots=True)
class Applied:
    fill: Fill
    position: Position


async def apply_fill(
    redis: aioredis.Redis, keys: Keys, fill: Fill, rounding: RoundingFee | None = None
) -> Applied | None:
    """Apply ``fill`` once; returns the new position, or None if the fill was already applied.

    With ``rounding``, the fill's fee becomes what the balance lost: the exchange's trade fee
    plus the rounding fee, less a rebate of the order's rounding accumulator (common/fees.py),
    which is kept per order in ``dora:feeacc:{ticker}`` and moves with the fill, atomically."""
    pos_key = keys.pos(fill.ticker)
    acc_key = keys.fee_rounding(fill.ticker)
    for _ in range(MAX_WATCH_RETRIES):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(pos_key, keys.fill_ids, acc_key)
                if await pipe.sismember(keys.fill_ids, fill.fill_id):
                    await pipe.unwatch()
                    return None
                position = decode_position(fill.ticker, await pipe.hgetall(pos_key))
                rounded = None
                if rounding is not None:
                    accumulator = int(await pipe.hget(acc_key, fill.order_id) or 0)
                    rounded = rounding.apply(
                        fill.side is Side.BID, fill.price, fill.count, fill.fee, accumulator
                    )
                    fill = replace(fill, fee=rounded.net)
                after = position.apply_fill(fill)
                last_ms = int(await pipe.hget(keys.fills_meta, "last_fill_ms") or 0)
                pipe.multi()
                pipe.sadd(keys.fill_ids, fill.fill_id)
                pipe.hset(pos_key, mapping=encode_position(after))
                if rounded is not None:
                    pipe.hset(acc_key, fill.order_id, str(rounded.accumulator))
                if fill.ts_ms > last_ms:
                    pipe.hset(keys.fills_meta, "last_fill_ms", str(fill.ts_ms))
                queue_append(pipe, keys, "fills", "fill", fill_event(fill, after))
                await pipe.execute()
                return Applied(fill, after)
            except WatchError:
                continue
    raise RuntimeError(f"position of {fill.ticker} kept changing; fill {fill.fill_id} not applied")


async def apply_settlement(
    redis: aioredis.Redis, keys: Keys, settlement: Settlement
) -> Position | None:
    """Close the market's position at its result (YES pays $1, NO pays $1 on the other side):
    once per settlement, atomically with its ``settlement`` event. Returns the closed position,
    or None when this settlement was already applied."""
    ticker = settlement.ticker
    settle_id = f"settle:{ticker}:{settlement.settled_ms}"
    pos_key = keys.pos(ticker)
    if settlement.result == "yes":
        payout_price = ONE_DOLLAR
    elif settlement.result == "no":
        payout_price = 0
    else:
        payout_price = settlement.value if settlement.value is not None else 0
    for _ in range(MAX_WATCH_RETRIES):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(pos_key, keys.fill_ids)
                if await pipe.sismember(keys.fill_ids, settle_id):
                    await pipe.unwatch()
                    return None
                position = decode_position(ticker, await pipe.hgetall(pos_key))
                after = position
                if settlement.result == "void":
                    # each holder gets back what its open contracts cost: nothing realized
                    after = replace(position, position=0, cost=0)
                elif position.position:
                    closing = Fill(
                        settle_id,
                        "settlement",
                        ticker,
                        Side.ASK if position.position > 0 else Side.BID,
                        payout_price,
                        abs(position.position),
                        settlement.fee,
                        False,
                        settlement.settled_ms,
                    )
                    after = position.apply_fill(closing)
                pipe.multi()
                pipe.sadd(keys.fill_ids, settle_id)
                pipe.hset(pos_key, mapping=encode_position(after))
                queue_append(
                    pipe,
                    keys,
                    "fills",
                    "settlement",
                    {
                        "ticker": ticker,
                        "result": settlement.result,
                        "ts_ms": settlement.settled_ms,
                        "position_before": position.position,
                        "realized_pnl_after": after.realized_pnl,
                    },
                )
                await pipe.execute()
                return after
            except WatchError:
                continue
    raise RuntimeError(f"position of {ticker} kept changing; settlement not applied")
