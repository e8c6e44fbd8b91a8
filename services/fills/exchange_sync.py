"""Positions set from the exchange's, where they differ (the exchange wins, docs/operations.md).

Run by the fills process at start and after every restore of an emptied Redis, right after its
REST backfill, before the executor may add risk. A difference right after a backfill can still be
a fill in flight (REST positions and fills lag each other by a moment), so nothing is set on one
look: the backfill runs again after a short wait, and only a market whose difference is the same
at both looks, with no fill of ours applied in between, is set to the exchange's position. A
market whose exchange position does not parse is left as it is (and logged by the listing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from common.domain import Position
from common.kalshi.client import KalshiClient
from common.kalshi.wire.listing import Skipped
from common.kalshi.wire.portfolio import ExchangePosition
from common.keys import Keys
from common.log import EventLogger
from common.numbers import ONE_DOLLAR
from common.position_record import CLOSED_TICKER
from common.redis_codec import decode_position
from services.fills.ledger import set_from_exchange

SECOND_LOOK_S = 1.5


@dataclass(frozen=True, slots=True)
class Difference:
    ticker: str
    ours: Position
    theirs: int  # signed centi-contracts
    cost: int  # their cost as dora keeps it (signed YES cost basis)


def cost_basis(theirs: ExchangePosition) -> int:
    """The exchange's market exposure (money paid for the contracts held) as dora's signed YES
    cost basis: positive for YES held, exposure - $1 per contract for NO held."""
    if theirs.position >= 0:
        return theirs.exposure
    return theirs.exposure - ONE_DOLLAR * -theirs.position


async def read_positions(redis: aioredis.Redis, keys: Keys) -> dict[str, Position]:
    names = [n async for n in redis.scan_iter(match=keys.pattern("pos"), count=500)]
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    out: dict[str, Position] = {}
    for name, fields in zip(names, await pipe.execute(), strict=True):
        ticker = keys.ticker_of(name, "pos")
        if ticker != CLOSED_TICKER and fields:
            out[ticker] = decode_position(ticker, fields)
    return out


async def differences(
    redis: aioredis.Redis, keys: Keys, client: KalshiClient
) -> dict[str, Difference]:
    skipped: list[Skipped] = []
    theirs = {p.ticker: p for p in await client.get_positions(skipped=skipped)}
    unreadable = {s.key for s in skipped}
    ours = await read_positions(redis, keys)
    found: dict[str, Difference] = {}
    for ticker in (ours.keys() | theirs.keys()) - unreadable:
        mine = ours.get(ticker) or Position(ticker)
        exchange = theirs.get(ticker)
        count = exchange.position if exchange is not None else 0
        if mine.position != count:
            cost = cost_basis(exchange) if exchange is not None else 0
            found[ticker] = Difference(ticker, mine, count, cost)
    return found


async def sync_from_exchange(
    redis: aioredis.Redis,
    keys: Keys,
    client: KalshiClient,
    backfill: Callable[[], Awaitable[None]],
    log: EventLogger,
    now_ms: Callable[[], int],
    second_look_s: float = SECOND_LOOK_S,
) -> list[str]:
    """Set every persistently different position to the exchange's; returns the markets set.
    ``ExchangeError`` propagates (nothing is claimed synced then)."""
    first = await differences(redis, keys, client)
    if not first:
        return []
    await asyncio.sleep(second_look_s)
    await backfill()
    second = await differences(redis, keys, client)
    corrected: list[str] = []
    for ticker, diff in sorted(second.items()):
        if first.get(ticker) != diff:
            continue  # changed between the looks: a fill in flight, not a lost one
        reason = (
            f"exchange position {diff.theirs} differs from dora's {diff.ours.position}: "
            "the exchange wins"
        )
        if await set_from_exchange(
            redis, keys, ticker, diff.ours, diff.theirs, diff.cost, now_ms(), reason
        ):
            corrected.append(ticker)
            log.warning(
                "position_set_from_exchange",
                market=ticker,
                ours=diff.ours.position,
                exchange=diff.theirs,
            )
    return corrected
