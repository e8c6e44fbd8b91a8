"""The quoting rules a backtest compares: dora's own and two baselines.

Each strategy maps one market's view (the exchange book as marketdata publishes it, our resting
orders, position, config, market facts, time, recent mids) to ``Targets``. Everything after that
(diff, risk, latency, rate budget) is the same for all of them, so only the quoting rule differs.

- ``dora``: ``common.quoting.compute_targets``, the function the live strategy process runs.
- ``naive``: the original plan's rule: one tick inside the best bid and ask (of the others'
  orders) when the spread is at least ``min_spread``, joining the best when improving both would
  leave less than ``min_spread`` between them; fixed ``quote_size``; no skew; a side stops at
  its inventory cap.
- ``avellaneda_stoikov``: reservation price ``r = s - q*gamma*sigma^2*(T-t)`` and total spread
  ``delta = gamma*sigma^2*(T-t) + (2/gamma)*ln(1 + gamma/kappa)``, quotes ``r -/+ delta/2``
  rounded outward onto the grid and kept off the other side of the book. ``s`` is the mid of
  the others' book, ``q`` the position in contracts, ``sigma^2`` the realised variance of the
  mid ($^2/s) over the last minute (floored), ``T-t`` the time to close capped at one hour.
  ``gamma`` and ``kappa`` are fixed (see ``ASParams``). Fixed ``quote_size``, caps as naive.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from common.book import YesBook
from common.book_memory import NO_MEMORY, BookMemory
from common.config import MarketConfig
from common.domain import MarketMeta, Order, Position, Quote, Side, Targets
from common.fair_inputs import event_fair_x2
from common.grid import PriceGrid
from common.markouts import NO_MARKOUTS, Markouts
from common.numbers import COUNT_SCALE, ONE_DOLLAR, PRICE_SCALE
from common.quoting import QuotingParams, compute_targets, without_own_orders
from common.recent_mids import Recent


@dataclass(frozen=True, slots=True)
class MarketView:
    """What a strategy sees of one market at one decision."""

    ticker: str
    book: YesBook  # the exchange's book, our own orders included (as marketdata publishes it)
    own_orders: tuple[Order, ...]  # our resting orders in this market
    position: Position
    config: MarketConfig
    meta: MarketMeta
    now_ms: int
    recent: Recent
    memory: BookMemory = NO_MEMORY  # fresh levels of the others' book (dora only uses it)
    # the others' mid (x2) of each other outcome of a mutually exclusive event (None: not
    # two-sided); empty for a market not in such an event
    sibling_mids_x2: tuple[int | None, ...] = ()
    markouts: Markouts = NO_MARKOUTS  # our fills scored against the others' mid 10 s later


Strategy = Callable[[MarketView], Targets]


def dora(view: MarketView, params: QuotingParams | None = None) -> Targets:
    params = params or QuotingParams()
    event_x2 = None
    if view.sibling_mids_x2 and params.event_weight_pct:
        own_mid_x2 = without_own_orders(view.book, view.own_orders).mid_x2
        if own_mid_x2 is not None:
            event_x2 = event_fair_x2(own_mid_x2, view.sibling_mids_x2, 2 * params.event_max_off)
    return compute_targets(
        view.book,
        False,
        view.position,
        view.config,
        view.meta,
        view.now_ms,
        params,
        book_ms=view.now_ms,
        own_orders=view.own_orders,
        recent=view.recent,
        memory=view.memory,
        event_x2=event_x2,
        markouts=view.markouts,
    )


def _gate(view: MarketView) -> tuple[YesBook, str]:
    """The checks every rule shares (enabled, open, not closing, a sane two-sided book)."""
    meta, config = view.meta, view.config
    if not config.enabled:
        return YesBook(), "disabled"
    if not meta.is_open:
        return YesBook(), f"market_{meta.status}"
    if meta.close_ms and view.now_ms >= meta.close_ms - QuotingParams().pull_before_close_ms:
        return YesBook(), "closing"
    book = without_own_orders(view.book, view.own_orders)
    if not book.is_two_sided:
        return book, "one_sided_book"
    if book.is_crossed or book.is_locked:
        return book, "crossed_book"
    return book, ""


def _fixed_size(side: Side, position: int, config: MarketConfig) -> int:
    """``quote_size``, or nothing when it would take the side past its cap."""
    if side is Side.BID:
        room = config.max_inventory_yes - position
    else:
        room = config.max_inventory_no + position
    return config.quote_size if room >= config.quote_size else 0


def _targets(
    view: MarketView, bid: int | None, ask: int | None, reason: str, fair: int | None
) -> Targets:
    pos = view.position.position
    bid_size = _fixed_size(Side.BID, pos, view.config) if bid is not None else 0
    ask_size = _fixed_size(Side.ASK, pos, view.config) if ask is not None else 0
    bid_quote = Quote(Side.BID, bid, bid_size, reason) if bid is not None and bid_size else None
    ask_quote = Quote(Side.ASK, ask, ask_size, reason) if ask is not None and ask_size else None
    return Targets(
        view.ticker,
        bid_quote,
        ask_quote,
        "quoting" if bid_quote or ask_quote else "capped",
        view.now_ms,
        view.now_ms,
        fair,
    )


def naive(view: MarketView) -> Targets:
    book, why = _gate(view)
    if why:
        return Targets(view.ticker, None, None, why, view.now_ms, view.now_ms)
    best_bid, best_ask = book.best_bid, book.best_ask
    assert best_bid is not None and best_ask is not None
    mid = (best_bid + best_ask) // 2
    if best_ask - best_bid < view.config.min_spread:
        return Targets(view.ticker, None, None, "spread_too_tight", view.now_ms, view.now_ms, mid)
    grid = view.meta.grid
    bid, ask = grid.next_above(best_bid), grid.next_below(best_ask)
    reason = "improve_best"
    if bid is None or ask is None or ask - bid < view.config.min_spread:
        bid, ask, reason = best_bid, best_ask, "join_best"
    return _targets(view, bid, ask, reason, mid)


@dataclass(frozen=True, slots=True)
class ASParams:
    """Avellaneda-Stoikov constants, in dollars, contracts and seconds.

    ``kappa`` (per $) is set so the no-risk spread ``2/kappa`` is the markets' usual
    ``min_spread`` of $0.02; ``gamma`` (per contract) so a full 50-contract inventory moves the
    reservation price by about a cent at calm volatility over the one-hour horizon.
    """

    gamma: float = 0.1
    kappa: float = 100.0
    horizon_s: float = 3_600.0
    window_ms: int = 60_000
    min_sigma2_per_s: float = 1e-8  # ~ $0.006/sqrt(h): a floor while the mid sits still


AS_PARAMS = ASParams()


def realised_variance_per_s(recent: Recent, now_ms: int, window_ms: int) -> float:
    """Realised variance of the mid in $^2 per second over the last ``window_ms``."""
    samples = [(ms, mid_x2) for ms, mid_x2 in recent.mids_x2 if ms >= now_ms - window_ms]
    if len(samples) < 2:
        return 0.0
    total = 0.0
    for (_, a), (_, b) in pairwise(samples):
        total += ((b - a) / (2 * PRICE_SCALE)) ** 2
    return total / (window_ms / 1000)


def avellaneda_stoikov(view: MarketView, params: ASParams = AS_PARAMS) -> Targets:
    book, why = _gate(view)
    if why:
        return Targets(view.ticker, None, None, why, view.now_ms, view.now_ms)
    best_bid, best_ask = book.best_bid, book.best_ask
    assert best_bid is not None and best_ask is not None
    s = (best_bid + best_ask) / (2 * PRICE_SCALE)
    q = view.position.position / COUNT_SCALE
    sigma2 = max(
        params.min_sigma2_per_s,
        realised_variance_per_s(view.recent, view.now_ms, params.window_ms),
    )
    remaining_s = params.horizon_s
    if view.meta.close_ms:
        remaining_s = max(0.0, min(remaining_s, (view.meta.close_ms - view.now_ms) / 1000))
    gamma, kappa = params.gamma, params.kappa
    reservation = s - q * gamma * sigma2 * remaining_s
    spread = gamma * sigma2 * remaining_s + (2 / gamma) * math.log(1 + gamma / kappa)
    grid = view.meta.grid
    bid = _on_grid(grid, reservation - spread / 2, down=True)
    ask = _on_grid(grid, reservation + spread / 2, down=False)
    # never cross or lock the book (a post-only order would be refused)
    if bid is not None and bid >= best_ask:
        bid = grid.next_below(best_ask)
    if ask is not None and ask <= best_bid:
        ask = grid.next_above(best_bid)
    if bid is not None and ask is not None and bid >= ask:
        bid = ask = None
    fair = min(ONE_DOLLAR - 1, max(1, round(reservation * PRICE_SCALE)))
    return _targets(view, bid, ask, "avellaneda_stoikov", fair)


def _on_grid(grid: PriceGrid, dollars: float, *, down: bool) -> int | None:
    price = math.floor(dollars * PRICE_SCALE) if down else math.ceil(dollars * PRICE_SCALE)
    if down:
        return grid.round_down(max(1, min(ONE_DOLLAR - 1, price)))
    return grid.round_up(max(1, min(ONE_DOLLAR - 1, price)))


STRATEGIES: dict[str, Strategy] = {
    "dora": dora,
    "naive": naive,
    "avellaneda_stoikov": avellaneda_stoikov,
}
STRATEGY_NAMES = tuple(STRATEGIES)
