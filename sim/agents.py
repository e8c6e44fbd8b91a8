"""Seeded flow agents that make the simulated markets look alive.

Per market there is a hidden fair value: a probability whose logit follows a random walk with
drift and Poisson jumps (``FairValue``); at expiry the market resolves YES with that probability.
Around it trade:
- background makers: each keeps a ladder of quotes on both sides around the fair value *as it
  was at its last refresh* (every ``maker_refresh_ms``, jittered), so after a jump their quotes
  are stale until they re-centre;
- noise takers: Poisson arrivals, random side and size, IOC a tick through the touch;
- informed takers: Poisson arrivals that buy asks below (or sell bids above) the true fair value
  by at least ``informed_edge_ticks``: they pick off stale and mispriced quotes.

Agents act on the engine directly (no HTTP). Every market has its own ``random.Random`` seeded
from (seed, ticker), so the same seed and scenario give the same flow. Probabilities are floats
(a model quantity); every order price is an integer on the market's grid.
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass, field

from common.numbers import COUNT_SCALE, ONE_DOLLAR
from sim.engine import Exchange, OrderRequest
from sim.errors import EngineError
from sim.model import BookSide, Market, SelfTradePrevention, TimeInForce
from sim.scenario import MarketParams, Scenario

AGENT_CASH = 10**9 * 1_000_000  # a billion dollars: agents never run out
MAKER_KEY = "agent-maker-{}"
NOISE_KEY = "agent-noise"
INFORMED_KEY = "agent-informed"
_MS_PER_HOUR = 3_600_000
_LOGIT_CAP = 6.0


@dataclass(slots=True)
class FairValue:
    logit: float
    params: MarketParams

    @property
    def probability(self) -> float:
        return 1.0 / (1.0 + math.exp(-self.logit))

    def step(self, rng: random.Random, dt_ms: int) -> bool:
        """Advance by ``dt_ms``; True when a news jump happened."""
        hours = dt_ms / _MS_PER_HOUR
        p = self.params
        self.logit += p.drift_per_hour * hours
        self.logit += p.volatility_per_sqrt_hour * math.sqrt(hours) * rng.gauss(0.0, 1.0)
        jumped = p.jump_rate_per_hour > 0 and rng.random() < p.jump_rate_per_hour * hours
        if jumped:
            self.logit += rng.gauss(0.0, p.jump_size)
        self.logit = max(-_LOGIT_CAP, min(_LOGIT_CAP, self.logit))
        return jumped


@dataclass(slots=True)
class Maker:
    key_id: str
    next_refresh_ms: int
    quotes: dict[tuple[BookSide, int], str] = field(default_factory=dict)  # -> order id


@dataclass(slots=True)
class MarketFlow:
    ticker: str
    params: MarketParams
    rng: random.Random
    fair: FairValue
    makers: list[Maker]


def fair_price(market: Market, probability: float) -> int:
    """The fair probability as an integer price (nearest 1/10,000 $), inside (0, 1)."""
    return max(1, min(ONE_DOLLAR - 1, round(probability * ONE_DOLLAR)))


class FlowAgents:
    def __init__(self, exchange: Exchange, scenario: Scenario, seed: int, start_ms: int) -> None:
        self.exchange = exchange
        self.flows: dict[str, MarketFlow] = {}
        max_makers = 0
        for index, ticker in enumerate(exchange.markets):
            params = scenario.market_params(index)
            rng = random.Random(f"dora-sim:{seed}:{ticker}")
            start = rng.uniform(params.fair_min, params.fair_max)
            makers = [
                Maker(MAKER_KEY.format(i), start_ms + rng.randrange(params.maker_refresh_ms))
                for i in range(params.maker_count)
            ]
            max_makers = max(max_makers, params.maker_count)
            self.flows[ticker] = MarketFlow(
                ticker, params, rng, FairValue(math.log(start / (1 - start)), params), makers
            )
        for i in range(max_makers):
            exchange.open_account(MAKER_KEY.format(i), AGENT_CASH, is_agent=True)
        exchange.open_account(NOISE_KEY, AGENT_CASH, is_agent=True)
        exchange.open_account(INFORMED_KEY, AGENT_CASH, is_agent=True)

    def probability(self, ticker: str) -> float:
        return self.flows[ticker].fair.probability

    def tick(self, now_ms: int, dt_ms: int) -> None:
        for ticker, flow in self.flows.items():
            market = self.exchange.markets[ticker]
            flow.fair.step(flow.rng, dt_ms)
            if not market.is_trading:
                continue
            for maker in flow.makers:
                if now_ms >= maker.next_refresh_ms:
                    self._refresh(market, flow, maker, now_ms)
                    jitter = flow.rng.randrange(flow.params.maker_refresh_ms // 2 + 1)
                    maker.next_refresh_ms = now_ms + flow.params.maker_refresh_ms // 2 + jitter
            minutes = dt_ms / 60_000
            if flow.rng.random() < 1 - math.exp(-flow.params.noise_rate_per_min * minutes):
                self._noise(market, flow, now_ms)
            if flow.rng.random() < 1 - math.exp(-flow.params.informed_rate_per_min * minutes):
                self._informed(market, flow, now_ms)

    # ----- makers ------------------------------------------------------------------------

    def _targets(self, market: Market, flow: MarketFlow) -> dict[tuple[BookSide, int], int]:
        params, grid = flow.params, market.grid
        fair = fair_price(market, flow.fair.probability)
        tick = grid.tick_at(fair)
        targets: dict[tuple[BookSide, int], int] = {}
        for level in range(params.maker_levels):
            offset = (params.maker_half_spread_ticks + level * params.maker_level_gap_ticks) * tick
            bid = grid.round_down(fair - max(offset, tick))
            ask = grid.round_up(fair + max(offset, tick))
            size = flow.rng.randint(params.maker_size_min, params.maker_size_max) * COUNT_SCALE
            if bid is not None:
                targets[(BookSide.BID, bid)] = size
            if ask is not None:
                targets[(BookSide.ASK, ask)] = size
        return targets

    def _refresh(self, market: Market, flow: MarketFlow, maker: Maker, now_ms: int) -> None:
        targets = self._targets(market, flow)
        exchange = self.exchange
        account = exchange.accounts[maker.key_id]
        for key, order_id in list(maker.quotes.items()):
            order = account.orders.get(order_id)
            if order is None or not order.is_resting:
                del maker.quotes[key]
            elif key not in targets:
                exchange.cancel_resting(order, now_ms)
                del maker.quotes[key]
        for key, size in targets.items():
            if key in maker.quotes:
                continue
            side, price = key
            request = OrderRequest(market.ticker, side, price, size, stp=SelfTradePrevention.MAKER)
            try:
                result = exchange.create_order(maker.key_id, request, now_ms)
            except EngineError:
                continue
            if result.order.is_resting:
                maker.quotes[key] = result.order.order_id

    # ----- takers ------------------------------------------------------------------------

    def _noise(self, market: Market, flow: MarketFlow, now_ms: int) -> None:
        book = self.exchange.books[market.ticker]
        side = BookSide.BID if flow.rng.random() < 0.5 else BookSide.ASK
        touch = book.opposite(side).best()
        if touch is None:
            return
        tick = market.grid.tick_at(touch.price)
        limit = (
            market.grid.round_down(touch.price + tick)
            if side is BookSide.BID
            else market.grid.round_up(touch.price - tick)
        )
        if limit is None:
            limit = touch.price
        size = flow.rng.randint(flow.params.noise_size_min, flow.params.noise_size_max)
        self._take(NOISE_KEY, market, side, limit, size * COUNT_SCALE, now_ms)

    def _informed(self, market: Market, flow: MarketFlow, now_ms: int) -> None:
        book = self.exchange.books[market.ticker]
        fair = fair_price(market, flow.fair.probability)
        edge = flow.params.informed_edge_ticks * market.grid.tick_at(fair)
        size = flow.rng.randint(1, max(1, flow.params.informed_size_max)) * COUNT_SCALE
        ask, bid = book.best_ask(), book.best_bid()
        if ask is not None and ask.price <= fair - edge:
            limit = market.grid.round_down(fair - edge)
            if limit is not None:
                self._take(INFORMED_KEY, market, BookSide.BID, limit, size, now_ms)
        elif bid is not None and bid.price >= fair + edge:
            limit = market.grid.round_up(fair + edge)
            if limit is not None:
                self._take(INFORMED_KEY, market, BookSide.ASK, limit, size, now_ms)

    def _take(
        self, key_id: str, market: Market, side: BookSide, price: int, count: int, now_ms: int
    ) -> None:
        request = OrderRequest(
            market.ticker,
            side,
            price,
            count,
            tif=TimeInForce.IOC,
            stp=SelfTradePrevention.TAKER_AT_CROSS,
        )
        with contextlib.suppress(EngineError):
            self.exchange.create_order(key_id, request, now_ms)
