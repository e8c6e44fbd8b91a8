"""Seeded flow agents that make the simulated markets look alive (docs/simulator.md).

Per market a hidden fair value (``sim.fair``: a martingale probability; the outcomes of one
mutually exclusive event share one process and sum to 1). Around it trade:
- background makers (``sim.makers``): ladders of post-only quotes around their own, imperfect
  and periodically refreshed estimates of the fair value, leaning against their inventory;
- noise takers: Poisson arrivals, random size, IOC ``noise_sweep_ticks`` through the touch (so a
  large one walks the book); uninformed, but they
  prefer longshots: the cheaper side of a market priced away from 50 c is bought with
  probability ``0.5 + longshot_tilt * |2 mid - 1|`` (they overpay for lottery tickets, the
  favourite-longshot bias of the published record);
- informed takers: Poisson arrivals that know the fair value and buy asks below (or sell bids
  above) it by more than the taker fee plus ``informed_edge_ticks``: they pick off stale and
  mistaken quotes; on a
  news jump ``informed_jump_takers`` of them trade in the jump's own tick, before any maker has
  re-centred (the news is theirs first).

Agents act on the engine directly (no HTTP). Every market has three ``random.Random`` seeded from
(seed, ticker): its fair value's (an event's is seeded from the event ticker), its takers' and its
makers'. The first two never depend on what traded, so every participant of a backtest meets the
same fair-value path and the same taker arrivals; the same seed and scenario give the same flow. Probabilities are floats (a model quantity); every order price is an integer
on the market's grid.
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass

from common.fees import taker_fee
from common.numbers import COUNT_SCALE, MONEY_SCALE, ONE_DOLLAR
from sim import makers
from sim.engine import Exchange, OrderRequest
from sim.errors import EngineError
from sim.fair import OutcomeFair, fair_price, logit
from sim.makers import Maker
from sim.model import BookSide, Market, SelfTradePrevention, TimeInForce
from sim.scenario import MarketParams, Scenario

AGENT_CASH = 10**9 * 1_000_000  # a billion dollars: agents never run out
MAKER_KEY = "agent-maker-{}"
NOISE_KEY = "agent-noise"
INFORMED_KEY = "agent-informed"


@dataclass(slots=True)
class MarketFlow:
    ticker: str
    params: MarketParams
    rng: random.Random  # the makers' draws (they depend on what traded)
    taker_rng: random.Random  # arrivals, sides and sizes: the same whatever else trades
    fair: OutcomeFair
    outcome: int  # this market's outcome in ``fair``
    makers: list[Maker]

    @property
    def probability(self) -> float:
        return self.fair.probabilities[self.outcome]


@dataclass(slots=True)
class EventFlow:
    """One fair-value process and the generator that moves and resolves it."""

    fair: OutcomeFair
    rng: random.Random
    winner: int | None = None
    jumped: bool = False  # a news jump in the last tick


def start_probability(params: MarketParams, stratum: int, strata: int, rng: random.Random) -> float:
    """A starting fair value, uniform in logit space inside stratum ``stratum`` of ``strata``
    between ``fair_min`` and ``fair_max``: the markets of a run cover the whole range, the
    longshots and favourites included, whatever the seed."""
    low, high = logit(params.fair_min), logit(params.fair_max)
    z = low + (high - low) * (stratum + rng.random()) / strata
    return 1.0 / (1.0 + math.exp(-z))


class FlowAgents:
    def __init__(self, exchange: Exchange, scenario: Scenario, seed: int, start_ms: int) -> None:
        self.exchange = exchange
        self.flows: dict[str, MarketFlow] = {}
        self.event_of: dict[str, EventFlow] = {}  # by market ticker; shared inside an event
        # markets whose makers leave one side empty until a time (chaos: ``sim.hits``)
        self.one_sided: dict[str, tuple[BookSide, int]] = {}
        self._events: list[EventFlow] = []
        tickers = list(exchange.markets)
        strata = list(range(len(tickers)))
        random.Random(f"dora-sim:{seed}:strata").shuffle(strata)
        by_event: dict[str, EventFlow] = {}
        max_makers = 0
        for index, ticker in enumerate(tickers):
            params = scenario.market_params(index)
            rng = random.Random(f"dora-sim:{seed}:{ticker}")
            taker_rng = random.Random(f"dora-sim:{seed}:{ticker}:takers")
            event_ticker = exchange.markets[ticker].event_ticker
            if exchange.events_by_ticker[event_ticker].mutually_exclusive:
                members = self._event_members(event_ticker)
                event = by_event.get(event_ticker)
                if event is None:
                    event = by_event[event_ticker] = self._new_event(
                        event_ticker, len(members), params, seed
                    )
                    self._events.append(event)
                outcome = members.index(ticker)
            else:
                fair_rng = random.Random(f"dora-sim:{seed}:{ticker}:fair")
                start = start_probability(params, strata[index], len(tickers), fair_rng)
                event = EventFlow(OutcomeFair.binary(start, params), fair_rng)
                self._events.append(event)
                outcome = 0
            self.event_of[ticker] = event
            quoting = [
                Maker(
                    MAKER_KEY.format(i),
                    next_refresh_ms=start_ms + rng.randrange(params.maker_refresh_ms),
                    refreshed_ms=start_ms,
                    error=rng.gauss(0.0, params.maker_error),
                )
                for i in range(params.maker_count)
            ]
            max_makers = max(max_makers, params.maker_count)
            self.flows[ticker] = MarketFlow(
                ticker, params, rng, taker_rng, event.fair, outcome, quoting
            )
        for i in range(max_makers):
            exchange.open_account(MAKER_KEY.format(i), AGENT_CASH, is_agent=True)
        exchange.open_account(NOISE_KEY, AGENT_CASH, is_agent=True)
        exchange.open_account(INFORMED_KEY, AGENT_CASH, is_agent=True)

    def _event_members(self, event_ticker: str) -> list[str]:
        return [t for t, m in self.exchange.markets.items() if m.event_ticker == event_ticker]

    @staticmethod
    def _new_event(event_ticker: str, outcomes: int, params: MarketParams, seed: int) -> EventFlow:
        """The outcomes of a mutually exclusive event: logits drawn uniformly between
        ``logit(fair_min)`` and ``logit(fair_max)`` of its first market, moved together."""
        rng = random.Random(f"dora-sim:{seed}:{event_ticker}")
        low, high = logit(params.fair_min), logit(params.fair_max)
        return EventFlow(
            OutcomeFair([rng.uniform(low, high) for _ in range(outcomes)], params), rng
        )

    def probability(self, ticker: str) -> float:
        return self.flows[ticker].probability

    def resolve(self, ticker: str) -> str:
        """The result of a closed market: YES with its fair probability at close. The markets
        of a mutually exclusive event share one draw: exactly one of them settles YES."""
        event = self.event_of[ticker]
        if event.winner is None:
            event.winner = event.fair.draw_winner(event.rng)
        return "yes" if event.winner == self.flows[ticker].outcome else "no"

    def tick(self, now_ms: int, dt_ms: int) -> None:
        for event in self._events:
            event.jumped = event.fair.step(event.rng, dt_ms)
        minutes = dt_ms / 60_000
        exchange = self.exchange
        for ticker, flow in self.flows.items():
            market = exchange.markets[ticker]
            if not market.is_trading:
                continue
            if self.event_of[ticker].jumped:  # the news reaches the informed before any maker
                for _ in range(flow.params.informed_jump_takers):
                    self._informed(market, flow, now_ms)
            skip = self._skipped_side(ticker, now_ms)
            for maker in flow.makers:
                if now_ms >= maker.next_refresh_ms:
                    makers.refresh(
                        exchange,
                        market,
                        flow.params,
                        flow.rng,
                        maker,
                        flow.probability,
                        now_ms,
                        skip,
                    )
                    jitter = flow.rng.randrange(flow.params.maker_refresh_ms // 2 + 1)
                    maker.next_refresh_ms = now_ms + flow.params.maker_refresh_ms // 2 + jitter
            arrivals = flow.taker_rng
            if arrivals.random() < 1 - math.exp(-flow.params.noise_rate_per_min * minutes):
                self._noise(market, flow, now_ms)
            if arrivals.random() < 1 - math.exp(-flow.params.informed_rate_per_min * minutes):
                self._informed(market, flow, now_ms)

    def collapse(self, ticker: str, side: BookSide, until_ms: int, now_ms: int) -> None:
        """The makers of ``ticker`` take their ``side`` off the book now and keep it empty until
        ``until_ms``: the book collapses to one side."""
        self.one_sided[ticker] = (side, until_ms)
        for maker in self.flows[ticker].makers:
            makers.withdraw(self.exchange, maker, side, now_ms)

    def _skipped_side(self, ticker: str, now_ms: int) -> BookSide | None:
        if not self.one_sided:
            return None
        entry = self.one_sided.get(ticker)
        if entry is None:
            return None
        if now_ms >= entry[1]:
            del self.one_sided[ticker]
            return None
        return entry[0]

    # ----- takers ------------------------------------------------------------------------

    def _noise_side(self, market: Market, flow: MarketFlow) -> BookSide:
        """Buy YES (bid side) or NO (ask side): a coin, tilted toward the cheaper contract."""
        book = self.exchange.books[market.ticker]
        bid, ask = book.best_bid(), book.best_ask()
        prices = [level.price for level in (bid, ask) if level is not None]
        cheap_yes = 0.5
        if prices and flow.params.longshot_tilt > 0:
            mid = sum(prices) / len(prices) / ONE_DOLLAR
            lean = flow.params.longshot_tilt * abs(2 * mid - 1)
            cheap_yes = 0.5 + lean if mid < 0.5 else 0.5 - lean
        return BookSide.BID if flow.taker_rng.random() < cheap_yes else BookSide.ASK

    def _noise(self, market: Market, flow: MarketFlow, now_ms: int) -> None:
        book = self.exchange.books[market.ticker]
        side = self._noise_side(market, flow)
        size = flow.taker_rng.randint(flow.params.noise_size_min, flow.params.noise_size_max)
        touch = book.opposite(side).best()
        if touch is None:
            return
        through = flow.params.noise_sweep_ticks * market.grid.tick_at(touch.price)
        limit = (
            market.grid.round_down(touch.price + through)
            if side is BookSide.BID
            else market.grid.round_up(touch.price - through)
        )
        if limit is None:
            limit = touch.price
        self._take(NOISE_KEY, market, side, limit, size * COUNT_SCALE, now_ms)

    def _informed(self, market: Market, flow: MarketFlow, now_ms: int) -> None:
        """Take what is priced through the fair value by more than the taker fee plus
        ``informed_edge_ticks``: an informed trader only trades an edge that pays."""
        book = self.exchange.books[market.ticker]
        fair = fair_price(flow.probability)
        fee = taker_fee(fair, COUNT_SCALE, market.fee_multiplier_pct) // (MONEY_SCALE // ONE_DOLLAR)
        edge = fee + 1 + flow.params.informed_edge_ticks * market.grid.tick_at(fair)
        size = flow.taker_rng.randint(1, max(1, flow.params.informed_size_max)) * COUNT_SCALE
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
