"""marketdata keeps market facts current without a restart (issue 20, items 3 and 4): a
lifecycle gap rereads every market over REST (the missed message's effect is not lost),
``metadata_updated`` rereads its market, ``event_fee_update`` and a due series fee change apply
at once. Against the simulator; the socket's events are handed in as the socket would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from common.domain import MarketStatus
from common.fees import FeeType
from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
from common.kalshi.ws import LIFECYCLE_CHANNEL, FeedGap, FeeUpdate, LifecycleEvent
from common.keys import Keys
from common.redis_codec import decode_market
from common.runtime import Context
from common.settings import Settings
from services.marketdata.service import MarketdataService
from sim.server import RunningSim
from tests.services.test_marketdata import enable, offline
from tests.support.simfix import StartSim, sim_control


@pytest.fixture
async def running(
    settings: Settings, aredis: aioredis.Redis, start_sim: StartSim, signer: Signer
) -> AsyncIterator[tuple[RunningSim, MarketdataService, Context, list[str]]]:
    sim = await start_sim(agents=False)
    client = KalshiClient.create(sim.rest_url, signer)
    tickers = sorted(sim.sim.exchange.markets)
    k = Keys()
    await enable(aredis, k, tickers)
    service, ctx, _ = offline(settings, aredis, client, signer, tickers)
    await service.start(ctx)
    try:
        yield sim, service, ctx, tickers
    finally:
        with contextlib.suppress(Exception):
            await service.stop(ctx)


async def meta(ctx: Context, ticker: str):  # type: ignore[no-untyped-def]
    return decode_market(ticker, await ctx.redis.hgetall(ctx.keys.market(ticker)))


async def test_a_lifecycle_gap_rereads_every_market_over_rest(running) -> None:  # type: ignore[no-untyped-def]
    sim, service, ctx, tickers = running
    await sim_control(sim, "POST", f"/_sim/markets/{tickers[1]}/pause")  # its message was lost
    await service.step(ctx)
    assert (await meta(ctx, tickers[1])).status is MarketStatus.ACTIVE  # nothing said it yet
    service._on_ws_event(FeedGap(LIFECYCLE_CHANNEL, "seq gap on sid 2: 4 -> 6"))
    await service.step(ctx)
    assert (await meta(ctx, tickers[1])).status is MarketStatus.INACTIVE
    assert (await meta(ctx, tickers[0])).status is MarketStatus.ACTIVE


async def test_metadata_updated_rereads_that_market(running) -> None:  # type: ignore[no-untyped-def]
    sim, service, ctx, tickers = running
    before = (await meta(ctx, tickers[0])).close_ms
    await sim_control(sim, "POST", f"/_sim/markets/{tickers[0]}/close_date", {"close_in_s": 7200})
    service._on_ws_event(LifecycleEvent(tickers[0], "metadata_updated", {}))
    await service.step(ctx)
    after = (await meta(ctx, tickers[0])).close_ms
    assert after != before and after == sim.sim.exchange.markets[tickers[0]].close_ms


async def test_an_event_fee_update_applies_without_a_restart(running) -> None:  # type: ignore[no-untyped-def]
    sim, service, ctx, tickers = running
    market = sim.sim.exchange.markets[tickers[0]]
    changed = [
        t for t in tickers if sim.sim.exchange.markets[t].event_ticker == market.event_ticker
    ]
    await sim_control(
        sim,
        "POST",
        f"/_sim/events/{market.event_ticker}/fees",
        {"fee_type": "quadratic_with_combo_maker_fees", "fee_multiplier": 0.5},
    )
    service._on_ws_event(FeeUpdate(market.event_ticker, "quadratic_with_combo_maker_fees", 0.5))
    await service.step(ctx)
    for ticker in changed:
        facts = await meta(ctx, ticker)
        assert facts.fee_type is FeeType.QUADRATIC_WITH_COMBO_MAKER_FEES
        assert facts.fee_multiplier_pct == 50


async def test_a_series_fee_change_applies_when_it_is_due(running) -> None:  # type: ignore[no-untyped-def]
    sim, service, ctx, tickers = running
    market = sim.sim.exchange.markets[tickers[0]]
    await sim_control(
        sim,
        "POST",
        f"/_sim/series/{market.series_ticker}/fee_change",
        {"fee_type": "flat", "fee_multiplier": 2, "in_s": 0.2},
    )
    assert service.facts is not None
    service.facts.last_fee_poll_ms = -1e18  # poll now rather than in a minute
    await service.step(ctx)
    while service.facts.pending_fee_changes:
        await service.step(ctx)
    await service.step(ctx)
    facts = await meta(ctx, tickers[0])
    assert facts.fee_type is FeeType.FLAT and facts.fee_multiplier_pct == 200
    assert "taker rate" in facts.fee_note and facts.is_open  # priced conservatively, quoted
