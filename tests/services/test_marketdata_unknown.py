"""Unknown values never stop trading (issue 20, item 1), tested at the caller: marketdata's
refresh of many markets when the exchange sends one market, one event or one series it cannot
read (fuzzed), and marketdata's start in the same world. Only that market goes unquotable, with
its reason in ``dora:market`` and an alert; every other market is written as usual."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.clock import Clock
from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
from common.kalshi.ws import KalshiWebSocket
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import decode_market
from common.runtime import Context
from common.settings import Settings
from services.marketdata.service import MarketdataService
from tests.fuzz.strategies import JUNK, UNKNOWN_ENUM, mutate
from tests.services.test_marketdata import enable, offline
from tests.support.simfix import StartSim


class Spoiling:
    """Wraps a client's reads: the chosen market, event or series comes back spoiled."""

    def __init__(self, client: KalshiClient) -> None:
        self.real = client._get
        self.market: tuple[str, Any] | None = None  # ticker, its spoiled JSON
        self.event: tuple[str, Any] | None = None
        self.series: tuple[str, Any] | None = None

    async def get(self, path: str, params: dict[str, Any] | None = None, cost: int = 10) -> Any:
        body = await self.real(path, params, cost)
        if path == "/markets" and self.market is not None:
            ticker, spoiled = self.market
            body = copy.deepcopy(body)
            body["markets"] = [
                spoiled if m.get("ticker") == ticker else m for m in body.get("markets", [])
            ]
        elif self.event is not None and path == f"/events/{self.event[0]}":
            body = self.event[1]
        elif self.series is not None and path == f"/series/{self.series[0]}":
            body = self.series[1]
        return body


SIMS: list[Any] = []


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def alert(self, kind: str, subject: str, message: str) -> bool:
        self.sent.append((kind, message))
        return True


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), what=st.sampled_from(["market", "event", "series"]))
async def test_one_unreadable_market_event_or_series_spoils_no_other_market(
    settings: Settings,
    aredis: aioredis.Redis,
    start_sim: StartSim,
    signer: Signer,
    data: st.DataObject,
    what: str,
) -> None:
    if not SIMS:  # one simulator for every example of this test
        SIMS.append(await start_sim(agents=False))
    running = SIMS[0]
    client = KalshiClient.create(running.rest_url, signer)
    spoil = Spoiling(client)
    client._get = spoil.get  # type: ignore[method-assign]
    markets = await client._paginate("/markets", {"limit": 1000}, lambda b: (b["markets"], None))
    by_ticker = {m["ticker"]: m for m in markets}
    tickers = sorted(by_ticker)[:6]
    victim = tickers[2]
    market = by_ticker[victim]
    event_ticker = market["event_ticker"]
    series_ticker = running.sim.exchange.markets[victim].series_ticker
    if what == "market":
        spoiled = mutate(data, market)
        spoil.market = (
            victim,
            {**spoiled, "ticker": victim} if isinstance(spoiled, dict) else spoiled,
        )
    elif what == "event":
        body = {"event": {"series_ticker": series_ticker, "fee_type_override": None}}
        body["event"]["fee_type_override"] = data.draw(st.one_of(UNKNOWN_ENUM, JUNK))
        body["event"]["fee_multiplier_override"] = data.draw(JUNK)
        spoil.event = (event_ticker, body)
    else:
        spoil.series = (
            series_ticker,
            {"series": {"fee_type": data.draw(UNKNOWN_ENUM), "fee_multiplier": data.draw(JUNK)}},
        )
    k = Keys(f"t{data.draw(st.integers(0, 10**9))}:")
    await enable(aredis, k, tickers)
    dead = KalshiWebSocket("ws://127.0.0.1:9/trade-api/ws/v2", signer, tickers=tickers)
    service = MarketdataService(settings, client=client, ws=dead)
    ctx = Context("marketdata", settings, aredis, k, Clock(), get_logger("marketdata"))
    await service.start(ctx)  # comes up whatever the exchange sent
    try:
        assert service.facts is not None
        alerts = Alerts()
        service.facts.alerter = alerts  # type: ignore[assignment]
        await service.facts.refresh(tickers)  # and refreshes
        same_event = {
            t for t in tickers if running.sim.exchange.markets[t].event_ticker == event_ticker
        }
        same_series = {
            t for t in tickers if running.sim.exchange.markets[t].series_ticker == series_ticker
        }
        touched = {"market": {victim}, "event": same_event, "series": same_series}[what]
        for ticker in tickers:
            fields = await aredis.hgetall(k.market(ticker))
            if ticker in touched and not fields:
                continue  # its ticker itself was spoiled: nothing to attribute
            meta = decode_market(ticker, fields)
            if ticker not in touched:
                assert meta.is_open and not meta.problem, (ticker, meta)
            elif meta.problem:
                assert not meta.is_open and fields["unquotable_reason"] == meta.problem
    finally:
        with contextlib.suppress(Exception):
            await service.stop(ctx)


async def test_a_new_fee_type_and_a_fine_multiplier_start_marketdata_and_are_priced_conservatively(
    settings: Settings, aredis: aioredis.Redis, start_sim: StartSim, signer: Signer
) -> None:
    """The measured failure: ``margin_market_maker_program_fees`` (new in 3.34) on a series and a
    multiplier of 0.125 on an event raised WireError through marketdata's start."""
    running = await start_sim(agents=False)
    client = KalshiClient.create(running.rest_url, signer)
    spoil = Spoiling(client)
    client._get = spoil.get  # type: ignore[method-assign]
    exchange = running.sim.exchange
    tickers = sorted(exchange.markets)[:6]
    victim = exchange.markets[tickers[0]]
    other = next(m for t, m in exchange.markets.items() if m.event_ticker != victim.event_ticker)
    spoil.series = (
        victim.series_ticker,
        {"series": {"fee_type": "margin_market_maker_program_fees", "fee_multiplier": 1}},
    )
    spoil.event = (
        other.event_ticker,
        {"event": {"series_ticker": other.series_ticker, "fee_multiplier_override": "0.125"}},
    )
    tickers = sorted({*tickers, other.ticker})
    k = Keys()
    await enable(aredis, k, tickers)
    service, ctx, _ = offline(settings, aredis, client, signer, tickers)
    await service.start(ctx)
    try:
        metas = {t: decode_market(t, await aredis.hgetall(k.market(t))) for t in tickers}
        assert all(m.is_open for m in metas.values())  # every market written, quotable
        spoiled = [t for t in tickers if exchange.markets[t].series_ticker == victim.series_ticker]
        for ticker in spoiled:
            assert metas[ticker].fee_type.value == "margin_market_maker_program_fees"
            assert "taker rate" in metas[ticker].fee_note
        assert metas[other.ticker].fee_multiplier_pct == 13  # 0.125 rounded up
        assert set(service.facts.problems) == set(spoiled)  # type: ignore[union-attr]
    finally:
        with contextlib.suppress(Exception):
            await service.stop(ctx)
