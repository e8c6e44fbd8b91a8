"""Redis loses its data while trading (issue 19.1): FLUSHALL, or a restart without its AOF.

Measured before: 45 s after ``FLUSHALL`` dora's positions still differed from the exchange's
(-15 against -10: the restore brought positions back without the ids of the fills they counted,
and the backfill applied those fills again), and it never quoted again. Here the persister,
fills and the executor's gate run against the simulator and moto: nothing is applied while Redis
is empty, nothing twice after the restore, positions equal the exchange's, and the executor adds
risk again only after fills checked positions against the exchange.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.clock import Clock
from common.domain import Side, make_client_order_id
from common.dynamo import Dynamo
from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
from common.kalshi.wire.orders import OrderRequest
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import decode_position
from common.restore import current_restore, trading_state_gap
from common.runtime import Context
from common.settings import Settings
from services.fills.service import FillsService
from tests.persister.conftest import Harness, make_harness
from tests.support.simfix import RunningSim

K = Keys()


class NoSocket:
    """The fills WebSocket left out: REST alone (the backfill) finds every fill here."""

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def trade(dora: KalshiClient, other: KalshiClient, ticker: str, n: int) -> None:
    """dora rests an ask of 5 contracts; the other account lifts it."""
    coid = make_client_order_id("loss", ticker, "ask", n)
    await dora.place_order(OrderRequest(ticker, Side.ASK, 5000, 500, coid))
    taker = make_client_order_id("taker", ticker, "bid", n)
    await other.place_order(OrderRequest(ticker, Side.BID, 5000, 500, taker, post_only=False))


async def exchange_positions(client: KalshiClient) -> dict[str, int]:
    return {p.ticker: p.position for p in await client.get_positions() if p.position}


async def redis_positions(redis: aioredis.Redis) -> dict[str, int]:
    out = {}
    async for key in redis.scan_iter(match=K.pattern("pos")):
        ticker = K.ticker_of(key, "pos")
        position = decode_position(ticker, await redis.hgetall(key)).position
        if position:
            out[ticker] = position
    return out


@dataclass
class World:
    persister: Harness
    dora: KalshiClient
    fills: FillsService
    ctx: Context


@pytest.fixture
async def world(
    sim: RunningSim, signer: Signer, settings: Settings, aredis: aioredis.Redis, db: Dynamo
) -> AsyncIterator[World]:
    """The persister (moto), and fills against the simulator, on the session's Redis."""
    persister = make_harness(settings, aredis, db)
    await persister.start()
    dora = KalshiClient.create(sim.rest_url, signer)
    fills = FillsService(settings, client=dora, ws=NoSocket(), check_clock=False)  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, K, Clock(), get_logger("fills"))
    yield World(persister, dora, fills, ctx)
    await dora.aclose()


async def test_after_flushall_positions_equal_the_exchange_and_no_fill_counts_twice(
    world: World, other: KalshiClient, aredis: aioredis.Redis
) -> None:
    persister, dora, fills, ctx = world.persister, world.dora, world.fills, world.ctx
    tickers = [m.ticker for m in await dora.get_markets()][:2]
    for n in range(3):
        await trade(dora, other, tickers[n % 2], n)
    await fills.start(ctx)  # backfill, check against the exchange, say so
    assert await trading_state_gap(aredis, K) == ""
    assert (
        await redis_positions(aredis)
        == await exchange_positions(dora)
        == {
            tickers[0]: -1_000,
            tickers[1]: -500,
        }
    )
    await persister.step(3)  # stored

    await aredis.flushall()  # Redis loses its data
    await trade(dora, other, tickers[0], 9)  # and trading goes on meanwhile
    await fills.step(ctx)
    assert await redis_positions(aredis) == {}  # nothing applied into an empty Redis
    assert "Redis lost its data" in await trading_state_gap(aredis, K)

    await persister.step()  # the persister notices and restores
    assert await current_restore(aredis, K) is not None
    assert await trading_state_gap(aredis, K) != ""  # positions not checked yet: no risk added
    await fills.step(ctx)  # backfill from the restored cursor, check against the exchange
    assert await trading_state_gap(aredis, K) == ""
    expected = await exchange_positions(dora)
    assert expected == {tickers[0]: -1_500, tickers[1]: -500}
    assert await redis_positions(aredis) == expected  # none twice, the new one once
    for _ in range(3):
        await fills.step(ctx)
    assert await redis_positions(aredis) == expected  # and still later
    assert fills.counts["set_from_exchange"] == 0  # the restore alone was right


async def test_a_position_the_restore_could_not_know_is_set_from_the_exchange(
    world: World, other: KalshiClient, aredis: aioredis.Redis
) -> None:
    """The exchange wins: a market whose stored position is wrong (DynamoDB behind, a fill
    applied to it that REST no longer lists) is set to the exchange's before any order."""
    persister, dora, fills, ctx = world.persister, world.dora, world.fills, world.ctx
    ticker = (await dora.get_markets())[0].ticker
    await trade(dora, other, ticker, 1)
    await fills.start(ctx)
    await aredis.hset(K.pos(ticker), "position", "-1500")  # wrong, and REST cannot fix it
    restored = await current_restore(aredis, K)
    assert restored is not None
    await aredis.delete(K.positions_synced)
    fills.restore_seen = None  # as after a restore
    fills.next_recover_ms = 0
    await fills.step(ctx)
    assert await redis_positions(aredis) == {ticker: -500}
    assert fills.counts["set_from_exchange"] == 1
    assert await trading_state_gap(aredis, K) == ""
    await persister.step(3)
    rows: list[dict[str, Any]] = persister.rows("dora_trade_log")
    assert [r["status"] for r in rows if r.get("status") == "position_set"] == ["position_set"]
