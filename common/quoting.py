"""The quoting function: (book, position, config, market, now) -> target quotes, with reasons.

Pure and deterministic, shared by the strategy process and the backtester. The rules, in order
(original plan §4 step 2, made fee-, grid- and close-aware):

1. Quote nothing unless the market is enabled, open, not near its close, and its book is fresh,
   two-sided and neither crossed nor locked.
2. Quote only when the market spread is at least the required spread: ``min_spread`` widened by
   the toxicity (up to 2x) plus the maker fees of both legs; in a quiet market (the
   others' mid within ``quiet_ticks`` for ``quiet_window_ms``, from ``common.book_memory``) no
   maker fee, so dora improves on the best there as a fee-blind quoter would. The toxicity is
   the config's static ``toxicity_score`` until enough of our fills were scored
   (``common.markouts``: how the others' mid moved in the 10 s after each), then the measured
   one (``tox_*`` params). A one-tick market that the widening would leave is joined at the
   touch instead while the others' mid has ranged at most a tick for 30 s (``tox_touch_*``).
3. Fair value is the mid of the others' best bid and ask (or the size-weighted microprice),
   unless the levels added to the book in the last ``fresh_window_ms`` (``common.book_memory``)
   centre at least ``fresh_outside_ticks`` outside that bid and ask: then the touch on one side
   is stale (a maker has re-centred after a jump, the others have not yet) and the fresh centre
   is the fair value, so dora does not re-quote one tick inside a stale price.
   Then, optionally, the event's other outcomes (``event_weight_pct``, off: it lost in the
   ``event`` scenario) and an external model's value (``dora:fv:{ticker}``, while fresh, as far
   as its confidence) move it (``common.fair_inputs``).
4. Inventory skew moves both prices against the position (long YES -> lower, short -> higher),
   but only past ``skew_start_pct`` of the cap: a lightly held book quotes like a flat one, and
   the skew grows linearly to ``inventory_skew_factor x required spread`` at the cap.
5. Each side rests one tick inside the best when that keeps the required spread around the
   skewed fair value, otherwise further back; never crossing or locking the book; always on
   the market's grid (bids rounded down, asks up).
6. Size is ``quote_size`` up to the inventory cap (``full_size_pct`` can shrink it earlier); a
   capped side stops. In a market whose scored fills show no adverse move (measured toxicity
   0), ``benign_size_pct`` of it and ``benign_skew_pct`` of the skew (``common.sizing``); but
   a thin market (wide, shallow and slow: ``benign_max_spread_ticks``, ``benign_min_depth``,
   ``thin_max_mid_changes``) never gets the benign size and quotes ``thin_size_pct`` of it,
   and a side of it whose whole quote one fill took (``common.markouts.taken_sides``: a taker
   larger than our quote, likely informed) quotes nothing for ``taken_window_ms``; in any
   other market, for ``taken_other_ms`` (a jump's informed taker, news_jumps), once the
   market's earlier whole-quote fills lost on average (``taken_gate_*``). In
   the ``wind_down_ms`` before close (5 min by default; 0 turns it off) the inventory a side
   may build is capped by a limit that shrinks linearly from the full cap to
   nothing at the pull time; in the last ``pull_before_close_ms``, nothing is quoted.
"""

from __future__ import annotations

from collections.abc import Iterable

from common.book import Level, YesBook
from common.book_memory import NO_MEMORY, BookMemory, fresh_fair_x2
from common.config import FACTOR_SCALE, MarketConfig
from common.domain import MarketMeta, Order, Position, Quote, Side, Targets
from common.fair_inputs import ExternalFair, blend_x2, external_fair
from common.fees import maker_fee
from common.grid import PriceGrid
from common.markouts import (
    NO_MARKOUTS,
    Markouts,
    taken_moved,
    taken_sides,
    toxicity,
    whole_record,
)
from common.numbers import COUNT_SCALE, ONE_DOLLAR
from common.quoting_params import DEFAULT_PARAMS, QuotingParams
from common.recent_mids import NO_RECENT, Recent, mid_range_x2, mid_sigma_x2
from common.sizing import capacity, largest_quote, quote_size, side_size, wind_down_limit

__all__ = [
    "DEFAULT_PARAMS",
    "QuotingParams",
    "capacity",
    "compute_targets",
    "fair_value_x2",
    "inventory_skew_x2",
    "largest_quote",
    "quote_size",
    "required_spread",
    "wind_down_limit",
    "without_own_orders",
]


def without_own_orders(book: YesBook, own_orders: Iterable[Order]) -> YesBook:
    """The book as the rest of the market quotes it: our resting orders' remaining size taken
    out of their levels (a level left empty disappears)."""
    take: dict[tuple[Side, int], int] = {}
    for order in own_orders:
        if order.status.is_live:
            size = order.resting_size
            take[(order.side, order.price)] = take.get((order.side, order.price), 0) + size
    if not take:
        return book

    def strip(levels: tuple[Level, ...], side: Side) -> tuple[Level, ...]:
        out = []
        for price, size in levels:
            left = size - take.get((side, price), 0)
            if left > 0:
                out.append((price, left))
        return tuple(out)

    return YesBook(strip(book.bids, Side.BID), strip(book.asks, Side.ASK))


def _none(ticker: str, now_ms: int, reason: str, book_ms: int = 0) -> Targets:
    return Targets(ticker, None, None, reason, now_ms, book_ms)


def fair_value_x2(book: YesBook, use_microprice: bool) -> int:
    """Twice the fair price (keeps half-ticks exact). Needs a two-sided book."""
    bid, ask = book.best_bid, book.best_ask
    assert bid is not None and ask is not None
    bid_size, ask_size = book.best_bid_size, book.best_ask_size
    if not use_microprice or bid_size + ask_size == 0:
        return bid + ask
    # Microprice: the side with more size pulls the fair value toward the other side's price.
    return (2 * (bid * ask_size + ask * bid_size)) // (bid_size + ask_size)


def required_spread(
    config: MarketConfig,
    meta: MarketMeta,
    fair_price: int,
    fee_legs: int = 2,
    toxicity_score: int | None = None,
) -> int:
    """min_spread widened by toxicity (x1..x2) plus a maker fee per leg, in price units. With
    fewer than two legs counted, never less than both legs' fees and one unit more: a bid and an
    ask both filled must earn something after fees (a 1-cent min_spread does not cover two
    combo maker fees near 50 cents)."""
    tox = config.toxicity_score if toxicity_score is None else toxicity_score
    widened = config.min_spread * (FACTOR_SCALE + tox) // FACTOR_SCALE
    fee_per_contract = maker_fee(meta.fee_type, fair_price, COUNT_SCALE, meta.fee_multiplier_pct)
    fee_price_units = fee_per_contract // COUNT_SCALE  # money per 1 contract -> price units
    needed = widened + fee_legs * fee_price_units
    if fee_price_units and fee_legs < 2:
        needed = max(needed, 2 * fee_price_units + 1)
    return needed


def inventory_skew_x2(
    position: int, spread_needed: int, config: MarketConfig, params: QuotingParams
) -> int:
    """How far (twice the price) inventory moves both quotes: nothing until ``skew_start_pct``
    of the cap is held, then linear to ``inventory_skew_factor x spread_needed`` at the cap."""
    cap = config.max_inventory_yes if position >= 0 else config.max_inventory_no
    free = cap * params.skew_start_pct // 100
    held = min(abs(position), cap)
    if held <= free or cap <= free:
        return 0
    skew_x2 = 2 * spread_needed * config.inventory_skew_factor * (held - free)
    skew_x2 //= FACTOR_SCALE * (cap - free)
    return skew_x2 if position > 0 else -skew_x2


def compute_targets(
    book: YesBook,
    book_stale: bool,
    position: Position,
    config: MarketConfig,
    meta: MarketMeta | None,
    now_ms: int,
    params: QuotingParams = DEFAULT_PARAMS,
    book_ms: int = 0,
    *,
    own_orders: Iterable[Order] = (),
    recent: Recent = NO_RECENT,
    memory: BookMemory = NO_MEMORY,
    event_x2: int | None = None,
    external: ExternalFair | None = None,
    markouts: Markouts = NO_MARKOUTS,
) -> Targets:
    ticker = config.market_id
    book = without_own_orders(book, own_orders)
    if not config.enabled:
        return _none(ticker, now_ms, "disabled", book_ms)
    if meta is None:
        return _none(ticker, now_ms, "no_market_info", book_ms)
    if not meta.is_open:
        return _none(ticker, now_ms, f"market_{meta.status}", book_ms)
    if book_stale:
        return _none(ticker, now_ms, "book_stale", book_ms)
    if meta.close_ms and now_ms >= meta.close_ms - params.pull_before_close_ms:
        return _none(ticker, now_ms, "closing", book_ms)
    if not book.is_two_sided:
        return _none(
            ticker, now_ms, "one_sided_book" if not book.is_empty else "empty_book", book_ms
        )
    if book.is_crossed or book.is_locked:
        return _none(ticker, now_ms, "crossed_book", book_ms)

    best_bid, best_ask = book.best_bid, book.best_ask
    assert best_bid is not None and best_ask is not None
    fair_x2 = fair_value_x2(book, params.use_microprice)
    guard = ""
    if params.fresh_window_ms:
        fresh_x2 = fresh_fair_x2(memory, now_ms, params.fresh_window_ms)
        if fresh_x2 is not None:
            margin_x2 = 2 * params.fresh_outside_ticks * meta.grid.tick_at(fair_x2 // 2)
            if fresh_x2 > 2 * best_ask + margin_x2 or fresh_x2 < 2 * best_bid - margin_x2:
                fair_x2 = max(2, min(2 * ONE_DOLLAR - 2, fresh_x2))
                guard = "+fresh"
    if event_x2 is not None and params.event_outside_ticks:
        margin_x2 = 2 * params.event_outside_ticks * meta.grid.tick_at(fair_x2 // 2)
        if not 2 * best_bid - margin_x2 <= event_x2 <= 2 * best_ask + margin_x2:
            event_x2 = None  # inside the book's own range: the book's fair stands
    if event_x2 is not None and params.event_weight_pct:
        fair_x2 = max(
            2, min(2 * ONE_DOLLAR - 2, blend_x2(fair_x2, event_x2, params.event_weight_pct))
        )
        guard += "+event"
    usable = external_fair(external, now_ms, params.fv_stale_ms)
    if usable is not None and params.fv_weight_pct:
        weight = params.fv_weight_pct * usable.confidence_pct // 100
        fair_x2 = blend_x2(fair_x2, 2 * usable.price, weight)
        guard += "+fv"
    fair = fair_x2 // 2
    mid_x2 = best_bid + best_ask
    fee_legs = 2
    mids = memory.mids_x2
    if params.quiet_ticks and mids and mids[0][0] <= now_ms - params.quiet_window_ms:
        moved_x2 = mid_range_x2(Recent(mids), now_ms, params.quiet_window_ms, mid_x2)
        if moved_x2 < 2 * params.quiet_ticks * meta.grid.tick_at(fair):
            fee_legs = params.quiet_fee_legs
    measured = None
    if params.tox_min_contracts:
        measured = toxicity(markouts, params.tox_min_contracts, params.tox_free, params.tox_span)
        if measured is not None:
            measured = min(measured, params.tox_max)
    spread_needed = required_spread(config, meta, fair, fee_legs, measured)
    tick = meta.grid.tick_at(fair)
    cut = _benign_cut(book, best_ask - best_bid, tick, params)
    if cut and params.thin_max_mid_changes:
        cut = len(recent.mids_x2) <= params.thin_max_mid_changes
    size_pct = params.benign_size_pct if measured == 0 and not cut else 100
    if cut:
        size_pct = params.thin_size_pct
    if (
        best_ask - best_bid < spread_needed
        and params.tox_touch_join
        and measured
        and best_ask - best_bid <= tick
        and _touch_quiet(recent, now_ms, mid_x2, tick, params)
    ):
        calm_needed = required_spread(config, meta, fair, fee_legs, 0)
        if best_ask - best_bid >= calm_needed:
            spread_needed = calm_needed
            guard += "+touch"
    if best_ask - best_bid < spread_needed:
        return Targets(ticker, None, None, "spread_too_tight", now_ms, book_ms, fair)
    if params.vol_spread_pct and recent.mids_x2:
        widen = (
            params.vol_spread_pct
            * mid_sigma_x2(recent, now_ms, params.vol_horizon_ms, params.vol_window_ms)
            // 200
        )
        if widen:
            spread_needed += widen
            guard = "+vol"
    if params.shock_ticks and recent.mids_x2:
        tick = meta.grid.tick_at(fair)
        if mid_range_x2(recent, now_ms, params.shock_window_ms, mid_x2) >= (
            2 * params.shock_ticks * tick
        ):
            if params.shock_spread_pct == 0:
                return Targets(ticker, None, None, "shock", now_ms, book_ms, fair)
            spread_needed = spread_needed * params.shock_spread_pct // 100
            guard = "+shock"

    pos = position.position
    skew_x2 = inventory_skew_x2(pos, spread_needed, config, params)
    if measured == 0:
        skew_x2 = skew_x2 * params.benign_skew_pct // 100
    bought = sold = False  # a thin market's side taken whole: pulled
    taken_ms = params.taken_window_ms if cut or not params.taken_thin_only else 0
    other = not taken_ms and not cut and params.taken_other_ms > 0
    taken_ms = taken_ms or (params.taken_other_ms if other else 0)
    if taken_ms:
        whole = config.quote_size * size_pct // 100
        whole = max(1, whole - whole % params.size_step)
        if other and params.taken_other_move_ticks:
            move_x2 = 2 * params.taken_other_move_ticks * meta.grid.tick_at(fair)
            bought, sold = taken_moved(
                markouts, recent.mids_x2, now_ms, taken_ms, whole, mid_x2, move_x2
            )
        else:
            bought, sold = taken_sides(markouts, now_ms, taken_ms, whole)
        if other and params.taken_gate_min_fills and not _taken_gate(markouts, whole, params):
            bought = sold = False
    reservation_x2 = fair_x2 - skew_x2

    limit = wind_down_limit(meta.close_ms, now_ms, config, params)
    wind_down = limit is not None
    grid = meta.grid
    bid_quote = _bid(grid, reservation_x2, spread_needed, best_bid, best_ask)
    ask_quote = _ask(grid, reservation_x2, spread_needed, best_bid, best_ask)
    if bought:
        bid_quote = None
    if sold:
        ask_quote = None

    quotes: dict[Side, Quote | None] = {}
    for side, priced in ((Side.BID, bid_quote), (Side.ASK, ask_quote)):
        if priced is None:
            quotes[side] = None
            continue
        price, why = priced
        size = side_size(side, pos, config, params, size_pct, limit)
        if limit is not None:
            why += "+wind_down"
        if size <= 0:
            quotes[side] = None
            continue
        if skew_x2:
            why += "+skew"
        why += guard
        quotes[side] = Quote(side, price, size, why)

    bid, ask = quotes[Side.BID], quotes[Side.ASK]
    if bid and ask and ask.price - bid.price < spread_needed:
        # Rounding pulled the quotes too close: keep the side that reduces inventory.
        if pos > 0:
            bid = None
        elif pos < 0:
            ask = None
        else:
            return Targets(ticker, None, None, "spread_too_tight", now_ms, book_ms, fair)
    reason = "quoting" if bid or ask else ("wind_down" if wind_down else "capped")
    if not (bid or ask) and (bought or sold):
        reason = "taken"
    return Targets(ticker, bid, ask, reason, now_ms, book_ms, reservation_x2 // 2)


def _benign_cut(book: YesBook, spread: int, tick: int, p: QuotingParams) -> bool:
    """A benign market keeps ``quote_size`` here: the book is wider than
    ``benign_max_spread_ticks`` and/or thinner than ``benign_min_depth`` on its thinner side
    (each gate that is set must hold; none set: never)."""
    gates = []
    if p.benign_max_spread_ticks:
        gates.append(spread > p.benign_max_spread_ticks * tick)
    if p.benign_min_depth:
        thinner = min(sum(size for _, size in book.bids), sum(size for _, size in book.asks))
        gates.append(thinner < p.benign_min_depth)
    return bool(gates) and all(gates)


def _taken_gate(markouts: Markouts, whole: int, p: QuotingParams) -> bool:
    """A deep market's taken side is pulled only once ``taken_gate_min_fills`` of our earlier
    fills of a whole quote were scored and their mean edge a contract (the others' mid 10 s
    later against the fill's price) is below ``taken_gate_edge``: such takers were informed."""
    n, contracts, edge_x2 = whole_record(markouts, whole)
    return n >= p.taken_gate_min_fills and edge_x2 < 2 * p.taken_gate_edge * contracts


def _touch_quiet(recent: Recent, now_ms: int, mid_x2: int, tick: int, p: QuotingParams) -> bool:
    """The others' mid ranged at most one tick over ``tox_touch_quiet_ms`` (0: no check; the
    measured toxicity it follows needs minutes of fills, so ``recent`` covers the window)."""
    if not p.tox_touch_quiet_ms:
        return True
    return mid_range_x2(recent, now_ms, p.tox_touch_quiet_ms, mid_x2) <= 2 * tick


def _bid(
    grid: PriceGrid, reservation_x2: int, spread: int, best_bid: int, best_ask: int
) -> tuple[int, str] | None:
    target = (reservation_x2 - spread) // 2  # highest bid that keeps half the spread below fair
    improve = grid.next_above(best_bid)
    if improve is not None and improve <= target and improve < best_ask:
        return improve, "improve_best"
    price = grid.round_down(min(target, best_bid))
    if price is None or price <= 0 or price >= best_ask:
        return None
    return price, ("join_best" if price == best_bid else "behind_best")


def _ask(
    grid: PriceGrid, reservation_x2: int, spread: int, best_bid: int, best_ask: int
) -> tuple[int, str] | None:
    target = -((-(reservation_x2 + spread)) // 2)  # lowest ask keeping half the spread above
    improve = grid.next_below(best_ask)
    if improve is not None and improve >= target and improve > best_bid:
        return improve, "improve_best"
    price = grid.round_up(max(target, best_ask))
    if price is None or price >= ONE_DOLLAR or price <= best_bid:
        return None
    return price, ("join_best" if price == best_ask else "behind_best")
