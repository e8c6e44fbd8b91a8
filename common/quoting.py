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
   one (``tox_*`` params).
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
   0), ``benign_size_pct`` of it and ``benign_skew_pct`` of the skew. In the ``wind_down_ms`` before close (5 min by default; 0 turns it off) the
   inventory a side may build is capped by a limit that shrinks linearly from the full cap to
   nothing at the pull time; in the last ``pull_before_close_ms``, nothing is quoted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.book import Level, YesBook
from common.book_memory import NO_MEMORY, BookMemory, fresh_fair_x2
from common.config import FACTOR_SCALE, MarketConfig
from common.domain import MarketMeta, Order, Position, Quote, Side, Targets
from common.fair_inputs import ExternalFair, blend_x2, external_fair
from common.fees import maker_fee
from common.grid import PriceGrid
from common.markouts import NO_MARKOUTS, Markouts, toxicity
from common.numbers import COUNT_SCALE, ONE_DOLLAR
from common.recent_mids import NO_RECENT, Recent, mid_range_x2, mid_sigma_x2


@dataclass(frozen=True, slots=True)
class QuotingParams:
    """Knobs that are not per-market config (yet): timing around close, fair value, the
    adverse-selection guards and size scaling. Percentages are integers (150 = 1.5x)."""

    # Before close the inventory limit tapers from the cap (at ``wind_down_ms``) to zero (at
    # ``pull_before_close_ms``). A taper rather than a cut-off: a 10-minute market is not
    # given up for half its life, yet nothing is added into the close. (Off, near_expiry did
    # 4 $ better on nine tuning seeds and 18 $ worse on the three held out, with a max drawdown
    # of 17 $ instead of 3 $: a risk control, kept.)
    wind_down_ms: int = 5 * 60_000
    pull_before_close_ms: int = 60_000  # before close: quote nothing
    # The plain mid: in backtests the top-of-book size imbalance was noise, not information
    # (microprice cost about a quarter of the calm-market PnL); True restores it.
    use_microprice: bool = False
    min_size: int = COUNT_SCALE  # never quote less than one contract
    size_step: int = COUNT_SCALE  # sizes are whole contracts
    # Full quote_size until this % of the cap is held, then linear to 0. 100 (full size up to
    # the cap, like the naive rule): shrinking from 60 % gave up fills in every scenario.
    full_size_pct: int = 100
    # No skew until this % of the cap is held: skewing small inventories gave up fills on the
    # side that adds (calm and trending paid for it), while news_jumps still wants the skew
    # near the cap. Backtests over 9 seeds: 75 did best of 0/50/75/90/100, by little.
    skew_start_pct: int = 75
    # Shock guard (needs ``recent``): when the others' mid moved by at least ``shock_ticks``
    # ticks within ``shock_window_ms``, the required spread is scaled by ``shock_spread_pct``
    # (0 = quote nothing) until the window has passed.
    shock_ticks: int = 0  # 0 = off
    shock_window_ms: int = 5_000
    shock_spread_pct: int = 300
    # Volatility widening (needs ``recent``): the required spread grows by ``vol_spread_pct``
    # of the mid's standard deviation over ``vol_horizon_ms``, measured over ``vol_window_ms``.
    vol_spread_pct: int = 0  # 0 = off
    vol_horizon_ms: int = 10_000
    vol_window_ms: int = 60_000
    # Fresh-quote fair value (needs ``memory``): when the centre of the levels added within
    # ``fresh_window_ms`` lies outside the others' best bid and ask by at least
    # ``fresh_outside_ticks``, the touch on that side is stale and the fresh centre is the fair.
    # Backtests over 9 seeds: +4 $ in news_jumps, unchanged in calm and trending; with no margin
    # the ladder's own asymmetry moved the fair value in calm markets and cost ~1 $ there.
    fresh_window_ms: int = 2_000  # 0 = off
    fresh_outside_ticks: int = 2
    # Maker fees only in a moving market (needs ``memory``): while the others' mid has ranged by
    # less than ``quiet_ticks`` ticks over the last ``quiet_window_ms`` (and the memory covers
    # that window), the required spread counts ``quiet_fee_legs`` maker fees instead of two.
    # Quiet, one tick inside the best earns the touch's flow and that edge pays the fee; just
    # after a jump, the fees keep dora a tick back from adverse fills. Backtests (it acts in
    # the maker-fee market only), dora - naive: calm -0.37 -> +0.05 $ on 9 tuning seeds,
    # -0.09 -> +0.21 on 3 held out; news_jumps +5.96 -> +5.00 and +0.94 -> +3.04; the others
    # within 0.2 $. Fees never counted: news_jumps +4.42 on the tuning seeds. Same numbers for
    # 2-3 ticks and 2-30 s; 1 tick cost calm 0.3 $, 60 s cost it 0.03. (A window past 10 s
    # needs ``book_memory.MIDS_KEEP_MS`` raised: the memory keeps 10 s of mids.)
    quiet_ticks: int = 2  # 0 = off: both legs always
    quiet_window_ms: int = 5_000
    quiet_fee_legs: int = 0
    # Event fair value (needs ``event_x2``, ``common.fair_inputs.event_fair_x2``): the fair value
    # moves ``event_weight_pct`` % of the way to what the event's other outcomes imply.
    event_weight_pct: int = 0  # 0 = off
    event_outside_ticks: int = 0  # >0: only when it lies this far outside the best bid and ask
    event_max_off: int = 1_000  # price units: the event's mids summing further from $1 -> unused
    # External fair value (``dora:fv:{ticker}``): used when at most ``fv_stale_ms`` old, moving the
    # fair value ``fv_weight_pct`` x its confidence of the way to it.
    fv_stale_ms: int = 5_000  # 0 = never used
    fv_weight_pct: int = 100
    # Measured toxicity (needs ``markouts``, ``common.markouts``): once ``tox_min_contracts`` of
    # our fills have been scored (the others' mid 10 s after each against the mid before it),
    # their mean move per contract replaces the config's static ``toxicity_score``: 0 while it
    # is no worse than ``-tox_free``, rising to ``tox_max`` at ``tox_span`` further down.
    # Chosen on tuning seeds 1-10 (dora with - without, $ per half hour): sports_live +22.8,
    # news_jumps +0.8, trending +0.5, event +0.1, calm -0.2, finance -0.7 (its one-tick
    # markets: any widening stops the quote). A static 0.5 in sports_live alone made +29.5;
    # the adverse move separates it (-0.3 to -2.4 c a contract) from calm and finance (within
    # -0.2 c), the fill's edge (move + half-spread) did not. A cap of 0.5: 1.0 (2x min_spread)
    # was worse than 0.5 as a static score too.
    tox_min_contracts: int = 20 * COUNT_SCALE  # 0 = off: the config's toxicity_score always
    tox_free: int = 40
    tox_span: int = 50
    tox_max: int = FACTOR_SCALE // 2
    # A benign market (needs ``markouts``): once the measured toxicity is 0 (at least
    # ``tox_min_contracts`` of our fills scored, their mean move no worse than ``-tox_free``),
    # the fills are not being picked off, so each side quotes ``benign_size_pct`` % of
    # ``quote_size`` (still within the caps: a taker larger than ``quote_size`` fills us whole
    # instead of going on to the next level) and the inventory skew is ``benign_skew_pct`` % of
    # its usual size (held inventory is not losing value there). Until then, or once the fills
    # turn adverse, ``quote_size`` and the full skew. Chosen on tuning seeds 1-10 (dora with -
    # without, $ per half hour; docs/backtest.md): size 300 % and no skew: calm +6.1,
    # trending +8.2, event +7.3, sports_live +15.5, near_expiry +8.3, finance +1.8,
    # news_jumps -1.0, illiquid -1.0. 200 % did less nearly everywhere; 400 % cost news_jumps
    # 7 $. A stricter benign threshold (0.2 c or 0 c) did worse, a looser one no better.
    # Held out (1001-1020, run once after the choice), dora with - without: calm +7.24, trending
    # +9.93, event +5.82, sports_live +17.96, finance +2.05, news_jumps +0.50 (noise), near_expiry
    # -1.59 (noise), illiquid -0.74 [-1.64, +0.16].
    benign_size_pct: int = 300  # 100 = off
    benign_skew_pct: int = 0  # 100 = skew as anywhere else


DEFAULT_PARAMS = QuotingParams()


def largest_quote(config: MarketConfig, params: QuotingParams = DEFAULT_PARAMS) -> int:
    """The most one side may quote at once (count units): ``quote_size``, or
    ``benign_size_pct`` of it in a benign market (the executor's order-group limit allows
    for it)."""
    return config.quote_size * max(100, params.benign_size_pct) // 100


def without_own_orders(book: YesBook, own_orders: Iterable[Order]) -> YesBook:
    """The book as the rest of the market quotes it: our resting orders' remaining size taken
    out of their levels (a level left empty disappears)."""
    take: dict[tuple[Side, int], int] = {}
    for order in own_orders:
        if order.status.is_live:
            size = order.remaining if order.remaining else order.count
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


def capacity(side: Side, position: int, config: MarketConfig) -> int:
    """How many more contracts (count units) a side may add before hitting its cap."""
    if side is Side.BID:
        return max(0, config.max_inventory_yes - position)
    return max(0, config.max_inventory_no + position)


def quote_size(
    side: Side, position: int, config: MarketConfig, params: QuotingParams, size_pct: int = 100
) -> int:
    """``size_pct`` % of ``quote_size`` until ``full_size_pct`` of the side's cap is held, then
    scaled down linearly to nothing at the cap."""
    cap = config.max_inventory_yes if side is Side.BID else config.max_inventory_no
    room = capacity(side, position, config)
    if cap <= 0 or room <= 0:
        return 0
    held_same_way = max(0, position if side is Side.BID else -position)
    full_until = cap * params.full_size_pct // 100
    full = config.quote_size * size_pct // 100
    if held_same_way <= full_until:
        scaled = full
    else:
        scaled = full * (cap - held_same_way) // (cap - full_until)
    size = min(scaled, room)
    size -= size % params.size_step
    return size if size >= params.min_size else 0


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


def wind_down_limit(
    close_ms: int, now_ms: int, config: MarketConfig, params: QuotingParams
) -> int | None:
    """Inside the wind-down window, the most a side may leave held after a full fill (count
    units): the cap at ``wind_down_ms`` before close, shrinking linearly to 0 at
    ``pull_before_close_ms``. None outside the window (or with no close time)."""
    if not close_ms or now_ms < close_ms - params.wind_down_ms:
        return None
    taper_ms = params.wind_down_ms - params.pull_before_close_ms
    left_ms = close_ms - params.pull_before_close_ms - now_ms
    if taper_ms <= 0 or left_ms <= 0:
        return 0
    cap = max(config.max_inventory_yes, config.max_inventory_no)
    return cap * min(left_ms, taper_ms) // taper_ms


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
    size_pct = params.benign_size_pct if measured == 0 else 100
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
    reservation_x2 = fair_x2 - skew_x2

    limit = wind_down_limit(meta.close_ms, now_ms, config, params)
    wind_down = limit is not None
    grid = meta.grid
    bid_quote = _bid(grid, reservation_x2, spread_needed, best_bid, best_ask)
    ask_quote = _ask(grid, reservation_x2, spread_needed, best_bid, best_ask)

    quotes: dict[Side, Quote | None] = {}
    for side, priced in ((Side.BID, bid_quote), (Side.ASK, ask_quote)):
        if priced is None:
            quotes[side] = None
            continue
        price, why = priced
        size = quote_size(side, pos, config, params, size_pct)
        if limit is not None:
            # a full fill may leave at most ``limit`` held either way (or reduce what is held)
            held_same_way = pos if side is Side.BID else -pos
            tapered = min(size, max(0, limit - held_same_way))
            tapered -= tapered % params.size_step
            size = tapered if tapered >= params.min_size else 0
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
    return Targets(ticker, bid, ask, reason, now_ms, book_ms, reservation_x2 // 2)


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
