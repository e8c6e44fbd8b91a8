"""The background makers of the simulated markets (part of the flow agents, ``sim.agents``).

Each maker keeps a ladder of post-only quotes on both sides of a market around *its own estimate*
of the fair value as of its last refresh (every ``maker_refresh_ms``, jittered):
- the estimate is the truth moved by the maker's error (``maker_error``, logit units), an
  Ornstein-Uhlenbeck process with half-life ``maker_error_halflife_s``: makers disagree, and the
  one whose quote is the touch is often the one that is wrong;
- the first level sits ``maker_half_spread_ticks`` from the estimate (0: the grid prices on
  either side of it, a one-tick market), moved one tick against the
  maker's position per ``maker_skew_contracts`` it holds (a maker short a longshot quotes it
  dearer); the next levels follow every ``maker_level_gap_ticks``. Nothing is quoted closer to
  its estimate than that margin: a longshot priced near the grid's floor has no bid;
- no side that would take its position past ``maker_max_position`` contracts.
Between refreshes its quotes go stale: after a jump they are wrong until it re-centres.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from common.numbers import COUNT_SCALE, ONE_DOLLAR
from sim.engine import Exchange, OrderRequest
from sim.errors import EngineError
from sim.fair import fair_price, logit
from sim.model import BookSide, Market, SelfTradePrevention
from sim.scenario import MarketParams

# (bid, ask, tick) of the first level; None for a side not quoted
Anchor = tuple[int | None, int | None, int]


@dataclass(slots=True)
class Maker:
    key_id: str
    next_refresh_ms: int
    refreshed_ms: int
    error: float = 0.0  # logit error of its fair-value estimate
    quotes: dict[tuple[BookSide, int], str] = field(default_factory=dict)  # -> order id
    anchor: Anchor | None = None
    ladder: list[tuple[BookSide, int]] = field(default_factory=list)


def estimate(
    params: MarketParams, rng: random.Random, maker: Maker, probability: float, now_ms: int
) -> float:
    """The maker's fair value now: the truth moved by its error, which decays toward 0 with
    ``maker_error_halflife_s`` and is renewed by fresh noise of the same size."""
    if params.maker_error <= 0:
        return probability
    elapsed_s = (now_ms - maker.refreshed_ms) / 1000
    keep = 0.5 ** (elapsed_s / max(params.maker_error_halflife_s, 1e-9))
    fresh = params.maker_error * math.sqrt(max(0.0, 1.0 - keep * keep))
    maker.error = maker.error * keep + fresh * rng.gauss(0.0, 1.0)
    clipped = min(max(probability, 1e-9), 1 - 1e-9)
    return 1.0 / (1.0 + math.exp(-(logit(clipped) + maker.error)))


def anchor(market: Market, params: MarketParams, centre: float, held: int) -> Anchor:
    """The first level of the maker's ladder around its estimate ``centre``, skewed against
    ``held`` contracts; a side is None when the position cap or the grid leaves it out."""
    grid = market.grid
    fair = fair_price(centre)
    tick = grid.tick_at(fair)
    if params.maker_skew_contracts:
        fair = max(1, min(ONE_DOLLAR - 1, fair - held * tick // params.maker_skew_contracts))
    offset = params.maker_half_spread_ticks * tick
    cap = params.maker_max_position
    bid = grid.round_down(fair - offset) if not cap or held < cap else None
    ask = grid.round_up(fair + offset) if not cap or -held < cap else None
    if bid is not None and ask is not None and ask <= bid:  # zero margin, estimate on the grid
        ask = grid.next_above(bid)
    return bid, ask, tick


def ladder(market: Market, params: MarketParams, first: Anchor) -> list[tuple[BookSide, int]]:
    """Every level of the ladder: the first one and ``maker_levels - 1`` more behind it."""
    bid, ask, tick = first
    gap = params.maker_level_gap_ticks * tick
    levels: list[tuple[BookSide, int]] = []
    for level in range(params.maker_levels):
        if bid is not None:
            price = bid if level == 0 else market.grid.round_down(bid - level * gap)
            if price is not None:
                levels.append((BookSide.BID, price))
        if ask is not None:
            price = ask if level == 0 else market.grid.round_up(ask + level * gap)
            if price is not None:
                levels.append((BookSide.ASK, price))
    return levels


def position_of(exchange: Exchange, maker: Maker, ticker: str) -> int:
    """The maker's signed position in ``ticker``, contracts (+ YES)."""
    position = exchange.accounts[maker.key_id].positions.get(ticker)
    return 0 if position is None else position.position // COUNT_SCALE


def refresh(
    exchange: Exchange,
    market: Market,
    params: MarketParams,
    rng: random.Random,
    maker: Maker,
    probability: float,
    now_ms: int,
    skip: BookSide | None = None,
) -> None:
    """Re-centre the maker's ladder and put back the levels that traded away; ``skip``: a side
    the maker leaves empty for now (a one-sided book, ``sim.hits``)."""
    centre = estimate(params, rng, maker, probability, now_ms)
    maker.refreshed_ms = now_ms
    first = anchor(market, params, centre, position_of(exchange, maker, market.ticker))
    orders = exchange.accounts[maker.key_id].orders
    if skip is not None:
        withdraw(exchange, maker, skip, now_ms)
    if first != maker.anchor:
        maker.anchor, maker.ladder = first, ladder(market, params, first)
        wanted = set(maker.ladder)
        for key, order_id in list(maker.quotes.items()):
            order = orders.get(order_id)
            if order is None or not order.is_resting:
                del maker.quotes[key]
            elif key not in wanted:
                exchange.cancel_resting(order, now_ms)
                del maker.quotes[key]
    for depth, key in enumerate(maker.ladder):
        if key[0] is skip:
            continue
        quoted = maker.quotes.get(key)
        if quoted is not None:
            resting = orders.get(quoted)
            if resting is not None and resting.is_resting:
                continue
            del maker.quotes[key]
        side, price = key
        size = rng.randint(params.maker_size_min, params.maker_size_max) * COUNT_SCALE
        size += size * params.maker_size_growth_pct * (depth // 2) // 100
        request = OrderRequest(
            market.ticker, side, price, size, stp=SelfTradePrevention.MAKER, post_only=True
        )
        try:
            result = exchange.create_order(maker.key_id, request, now_ms)
        except EngineError:
            continue
        if result.order.is_resting:
            maker.quotes[key] = result.order.order_id


def withdraw(exchange: Exchange, maker: Maker, side: BookSide, now_ms: int) -> None:
    """Cancel every quote of the maker on ``side``."""
    orders = exchange.accounts[maker.key_id].orders
    for key, order_id in list(maker.quotes.items()):
        if key[0] is side:
            order = orders.get(order_id)
            if order is not None and order.is_resting:
                exchange.cancel_resting(order, now_ms)
            del maker.quotes[key]
