"""Book churn: resting orders placed and cancelled inside the engine at a set rate.

For throughput benchmarks: every create and every cancel is one book delta on the WebSocket.
By default far from the touch (bids at 1-5 cents, asks at 95-99 cents), so the load is book
maintenance for whoever follows the book and never trades. With ``touch_pct`` that share of the
orders instead joins the best bid or ask (post-only, one contract): a change of the top level's
size, which a market maker has to look at (and which a taker may trade). Generating it in the
simulator (no HTTP, no signing) keeps the load generator's own cost from setting the ceiling of
what is measured. ``POST /_sim/churn {"deltas_per_s": N, "touch_pct": P}`` sets the rate (0 stops
it) and the share.
"""

from __future__ import annotations

import random
from collections import deque

from common.numbers import COUNT_SCALE
from sim.engine import Exchange, OrderRequest
from sim.errors import EngineError
from sim.model import BookSide, MarketStatus, Order

CHURN_KEY = "agent-churn"
CHURN_CASH = 10**9 * 1_000_000
MAX_RATE = 100_000
RESTING_PER_MARKET = 4  # deep orders kept per market; beyond that the oldest is cancelled
BID_PRICES = (100, 200, 300, 400, 500)
ASK_PRICES = (9500, 9600, 9700, 9800, 9900)


class Churn:
    def __init__(self, exchange: Exchange, seed: int = 0) -> None:
        self.exchange = exchange
        self.rng = random.Random(f"dora-churn:{seed}")
        self.rate = 0
        self.touch_pct = 0
        self.resting: deque[Order] = deque()
        self.carry_ms = 0  # rate x elapsed ms not yet turned into deltas (thousandths)
        self.last_ms: int | None = None
        self.deltas = 0
        exchange.open_account(CHURN_KEY, CHURN_CASH, is_agent=True)

    def set_rate(self, deltas_per_s: int, touch_pct: int = 0) -> None:
        if not 0 <= deltas_per_s <= MAX_RATE:
            raise ValueError(f"deltas_per_s must be 0..{MAX_RATE}, was {deltas_per_s}")
        if not 0 <= touch_pct <= 100:
            raise ValueError(f"touch_pct must be 0..100, was {touch_pct}")
        self.rate = deltas_per_s
        self.touch_pct = touch_pct
        self.last_ms = None
        self.carry_ms = 0

    def tick(self, now_ms: int) -> None:
        if self.rate == 0:
            return
        if self.last_ms is None:
            self.last_ms = now_ms
            return
        self.carry_ms += self.rate * max(0, now_ms - self.last_ms)
        self.last_ms = now_ms
        due, self.carry_ms = divmod(self.carry_ms, 1000)
        open_markets = [
            m.ticker for m in self.exchange.markets.values() if m.status is MarketStatus.ACTIVE
        ]
        if not open_markets:
            return
        limit = RESTING_PER_MARKET * len(open_markets)
        for _ in range(due):
            if self.resting and (len(self.resting) >= limit or self.rng.random() < 0.5):
                self.deltas += self.exchange.cancel_resting(self.resting.popleft(), now_ms) > 0
            else:
                self._place(self.rng.choice(open_markets), now_ms)

    def _place(self, ticker: str, now_ms: int) -> None:
        side = BookSide.BID if self.rng.random() < 0.5 else BookSide.ASK
        price = self.rng.choice(BID_PRICES if side is BookSide.BID else ASK_PRICES)
        if self.touch_pct and self.rng.random() * 100 < self.touch_pct:
            best = self.exchange.books[ticker].half(side).best()
            if best is not None:
                price = best.price  # join the best: the top level's size changes
        request = OrderRequest(ticker, side, price, COUNT_SCALE, post_only=True)
        try:
            result = self.exchange.create_order(CHURN_KEY, request, now_ms)
        except EngineError:
            return  # e.g. post-only would cross in a market trading at the extremes
        if result.order.is_resting:
            self.resting.append(result.order)
            self.deltas += 1
