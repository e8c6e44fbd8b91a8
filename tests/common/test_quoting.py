from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.book import YesBook
from common.book_memory import NO_MEMORY, BookMemory, remember_book
from common.config import MarketConfig
from common.domain import MarketMeta, MarketStatus, Position, Side
from common.fees import FeeType
from common.grid import PriceGrid
from common.quoting import (
    DEFAULT_PARAMS,
    QuotingParams,
    compute_targets,
    inventory_skew_x2,
    required_spread,
    wind_down_limit,
)

NOW = 1_800_000_000_000
TAPER = QuotingParams(wind_down_ms=5 * 60_000)  # the risk-averse wind-down
GRIDS = [
    PriceGrid.linear_cent(),
    PriceGrid.uniform(10),
    PriceGrid.from_price_ranges(
        [
            {"start": "0", "end": "0.1", "step": "0.001"},
            {"start": "0.1", "end": "0.9", "step": "0.01"},
            {"start": "0.9", "end": "1", "step": "0.001"},
        ]
    ),
]
CONFIG = MarketConfig(
    "KX",
    enabled=True,
    max_inventory_yes=5000,
    max_inventory_no=5000,
    min_spread=200,
    quote_size=1000,
    inventory_skew_factor=5000,
)


def meta(
    status: str = "active",
    close_ms: int = NOW + 86_400_000,
    grid: PriceGrid | None = None,
    fee_type: FeeType = FeeType.QUADRATIC,
) -> MarketMeta:
    return MarketMeta(
        "KX", MarketStatus(status), close_ms, grid or PriceGrid.linear_cent(), fee_type
    )


# 20 contracts a side: deeper than a thin market (``benign_min_depth``); the thin market's
# rules have their own tests (test_quoting_size.py)
def book(bid: int, ask: int, bid_size: int = 2000, ask_size: int = 2000) -> YesBook:
    return YesBook(((bid, bid_size),), ((ask, ask_size),))


def test_improves_one_tick_inside_a_wide_market() -> None:
    t = compute_targets(book(4000, 4600), False, Position("KX"), CONFIG, meta(), NOW)
    assert t.bid and t.ask
    assert (t.bid.price, t.ask.price) == (4100, 4500)
    assert t.bid.size == t.ask.size == 1000 and t.bid.reason == "improve_best"


def test_does_not_quote_a_tight_market() -> None:
    t = compute_targets(book(4900, 5000), False, Position("KX"), CONFIG, meta(), NOW)
    assert t.bid is None and t.ask is None and t.reason == "spread_too_tight"


@pytest.mark.parametrize(
    ("stale", "status", "close_ms", "enabled", "reason"),
    [
        (True, "active", NOW + 10**8, True, "book_stale"),
        (False, "inactive", NOW + 10**8, True, "market_inactive"),
        (False, "closed", NOW - 1, True, "market_closed"),
        (False, "unknown", NOW + 10**8, True, "market_unknown"),
        (False, "active", NOW + 30_000, True, "closing"),
        (False, "active", NOW + 10**8, False, "disabled"),
    ],
)
def test_never_quotes_stale_paused_closed_or_disabled(
    stale: bool, status: str, close_ms: int, enabled: bool, reason: str
) -> None:
    config = replace(CONFIG, enabled=enabled)
    t = compute_targets(
        book(4000, 4600), stale, Position("KX"), config, meta(status, close_ms), NOW
    )
    assert t.bid is None and t.ask is None and t.reason == reason


def test_long_inventory_lowers_both_prices_and_shrinks_the_bid() -> None:
    # full_size_pct=60: the size scaling is off by default, but still a knob
    params = QuotingParams(full_size_pct=60)
    flat = compute_targets(book(3000, 7000), False, Position("KX"), CONFIG, meta(), NOW, params)
    long = compute_targets(
        book(3000, 7000), False, Position("KX", 4000, 4000 * 5000), CONFIG, meta(), NOW, params
    )
    short = compute_targets(
        book(3000, 7000), False, Position("KX", -4000, -4000 * 5000), CONFIG, meta(), NOW, params
    )
    assert flat.bid and flat.ask and long.ask and short.bid
    assert long.ask.price <= flat.ask.price and (
        long.bid is None or long.bid.price <= flat.bid.price
    )
    assert short.bid.price >= flat.bid.price and (
        short.ask is None or short.ask.price >= flat.ask.price
    )
    assert long.bid is None or long.bid.size < flat.bid.size


def test_capped_side_stops() -> None:
    t = compute_targets(
        book(4000, 4600), False, Position("KX", 5000, 5000 * 4000), CONFIG, meta(), NOW
    )
    assert t.bid is None and t.ask is not None


def held(contracts: int) -> Position:
    return Position("KX", contracts * 100, contracts * 100 * 4300)


@pytest.mark.parametrize(
    ("to_close_ms", "contracts", "bid_size", "ask_size"),
    [
        # 5 minutes out the limit is still the whole cap (50): full size both ways
        (5 * 60_000, 0, 1000, 1000),
        # 2 minutes out (1 of the 4 taper minutes left) the limit is 12.5 contracts either way
        (2 * 60_000, 0, 1000, 1000),
        (2 * 60_000, 5, 700, 1000),  # the bid may only add 7.5 -> 7 contracts
        (2 * 60_000, 13, None, 1000),  # past the limit: only the side that reduces
        (2 * 60_000, -13, 1000, None),
        # a second before the pull the limit is ~0: only reduce, never flip the position
        (61_000, 0, None, None),
        (61_000, 3, None, 300),
        (61_000, -30, 1000, None),
    ],
)
def test_wind_down_tapers_what_a_side_may_add(
    to_close_ms: int, contracts: int, bid_size: int | None, ask_size: int | None
) -> None:
    m = meta(close_ms=NOW + to_close_ms)
    t = compute_targets(book(4000, 4600), False, held(contracts), CONFIG, m, NOW, TAPER)
    assert (t.bid.size if t.bid else None, t.ask.size if t.ask else None) == (bid_size, ask_size)
    for q in (t.bid, t.ask):
        assert q is None or "+wind_down" in q.reason


def test_wind_down_limit_shrinks_from_the_cap_to_nothing_at_the_pull() -> None:
    close = NOW + 10 * 60_000
    assert wind_down_limit(close, close - 5 * 60_000 - 1, CONFIG, TAPER) is None
    assert wind_down_limit(close, close - 5 * 60_000, CONFIG, TAPER) == 5000
    assert wind_down_limit(close, close - 3 * 60_000, CONFIG, TAPER) == 2500
    assert wind_down_limit(close, close - 60_000, CONFIG, TAPER) == 0
    assert wind_down_limit(0, NOW, CONFIG, TAPER) is None  # no close time
    # on by default (a risk control); 0 switches it off: the full cap until the pull
    assert wind_down_limit(close, close - 3 * 60_000, CONFIG, DEFAULT_PARAMS) == 2500
    off = QuotingParams(wind_down_ms=0)
    assert wind_down_limit(close, close - 61_000, CONFIG, off) is None


@settings(max_examples=300)
@given(
    to_close_ms=st.integers(0, 6 * 60_000),
    contracts=st.integers(-60, 60),
    bid=st.integers(1, 9_000),
    width=st.integers(100, 900),
)
def test_wind_down_never_builds_past_the_limit(
    to_close_ms: int, contracts: int, bid: int, width: int
) -> None:
    close = NOW + to_close_ms
    t = compute_targets(
        book(bid, bid + width), False, held(contracts), CONFIG, meta(close_ms=close), NOW, TAPER
    )
    limit = wind_down_limit(close, NOW, CONFIG, TAPER)
    pos = contracts * 100
    if to_close_ms <= 60_000:
        assert t.bid is None and t.ask is None
    if limit is None:
        return
    # a full fill leaves at most ``limit`` held either way (a side only reduces past it)
    if t.bid:
        assert pos + t.bid.size <= limit
    if t.ask:
        assert pos - t.ask.size >= -limit


def test_skew_starts_past_three_quarters_of_the_cap() -> None:
    flat = compute_targets(book(4000, 4400), False, Position("KX"), CONFIG, meta(), NOW)
    light = compute_targets(book(4000, 4400), False, held(37), CONFIG, meta(), NOW)
    heavy = compute_targets(book(4000, 4400), False, held(45), CONFIG, meta(), NOW)
    assert flat.bid and flat.ask and light.bid and light.ask and heavy.ask
    # 74 % of the cap held: priced exactly like a flat book (no skew in the reason either)
    assert (light.bid.price, light.ask.price) == (flat.bid.price, flat.ask.price) == (4100, 4300)
    assert light.bid.reason == "improve_best"
    # past it the skew moves both quotes down: the bid falls back to the best
    assert heavy.bid is not None and heavy.bid.price == 4000 and heavy.ask.price == 4300


def test_skew_is_linear_from_the_start_to_the_full_factor_at_the_cap() -> None:
    half = QuotingParams(skew_start_pct=50)
    full_x2 = 2 * 200 * CONFIG.inventory_skew_factor // 10_000  # factor x spread at the cap
    assert inventory_skew_x2(2500, 200, CONFIG, half) == 0
    assert inventory_skew_x2(5000, 200, CONFIG, half) == full_x2
    assert inventory_skew_x2(6000, 200, CONFIG, half) == full_x2  # past the cap: no further
    assert inventory_skew_x2(-3750, 200, CONFIG, half) == -full_x2 // 2
    old_rule = QuotingParams(skew_start_pct=0)  # skew from the first contract
    assert inventory_skew_x2(2500, 200, CONFIG, old_rule) == full_x2 // 2


def test_toxicity_and_maker_fees_widen_the_required_spread() -> None:
    base = required_spread(CONFIG, meta(), 5000)
    assert required_spread(replace(CONFIG, toxicity_score=10_000), meta(), 5000) == 2 * base
    assert required_spread(CONFIG, meta(fee_type=FeeType.QUADRATIC_WITH_MAKER_FEES), 5000) > base


levels = st.integers(min_value=1, max_value=9_999)


@settings(max_examples=400)
@given(
    bid=levels,
    width=st.integers(1, 3000),
    bid_size=st.integers(1, 10**5),
    ask_size=st.integers(1, 10**5),
    position=st.integers(-6000, 6000),
    grid=st.sampled_from(GRIDS),
    min_spread=st.integers(1, 2000),
    skew=st.integers(0, 100_000),
    toxicity=st.integers(0, 10_000),
    stale=st.booleans(),
    status=st.sampled_from(["active", "active", "active", "inactive", "closed", "determined"]),
)
def test_quotes_never_cross_never_exceed_caps_and_stay_on_the_grid(
    bid: int,
    width: int,
    bid_size: int,
    ask_size: int,
    position: int,
    grid: PriceGrid,
    min_spread: int,
    skew: int,
    toxicity: int,
    stale: bool,
    status: str,
) -> None:
    ask = min(bid + width, 9_999)
    if ask <= bid:
        return
    config = replace(
        CONFIG, min_spread=min_spread, inventory_skew_factor=skew, toxicity_score=toxicity
    )
    b = book(bid, ask, bid_size, ask_size)
    t = compute_targets(
        b, stale, Position("KX", position, position * 5000), config, meta(status, grid=grid), NOW
    )
    if stale or status != "active":
        assert t.bid is None and t.ask is None
    for q in (t.bid, t.ask):
        if q is None:
            continue
        assert grid.is_valid(q.price)
        assert q.size > 0
    if t.bid:
        assert t.bid.side is Side.BID and t.bid.price < ask  # never crosses or locks
        assert position + t.bid.size <= config.max_inventory_yes
    if t.ask:
        assert t.ask.side is Side.ASK and t.ask.price > bid
        assert -position + t.ask.size <= config.max_inventory_no
    if t.bid and t.ask:
        assert t.ask.price - t.bid.price >= min_spread


# ---- own orders, shock and volatility guards, size scaling ---------------------------------

from common.domain import Order, OrderStatus  # noqa: E402
from common.quoting import (  # noqa: E402
    Recent,
    mid_range_x2,
    mid_sigma_x2,
    quote_size,
    without_own_orders,
)


def resting(side: Side, price: int, remaining: int) -> Order:
    return Order("KX", side, price, remaining, f"c{price}", "o", OrderStatus.RESTING, 0, remaining)


def test_own_orders_are_taken_out_of_the_book_before_quoting() -> None:
    full = YesBook(((4100, 1000), (4000, 1000)), ((4500, 1000), (4600, 700)))
    own = [resting(Side.BID, 4100, 1000), resting(Side.ASK, 4600, 300)]
    assert without_own_orders(full, own) == YesBook(((4000, 1000),), ((4500, 1000), (4600, 400)))
    # our own bid at 4100 is not "the best" to improve on: we stay one tick inside the others
    t = compute_targets(full, False, Position("KX"), CONFIG, meta(), NOW, own_orders=own)
    assert t.bid and t.bid.price == 4100


def test_shock_guard_widens_after_a_fast_move_and_can_pull() -> None:
    recent = Recent(((NOW - 3_000, 2 * 4700), (NOW - 1_000, 2 * 4500)))
    calm = compute_targets(book(4000, 4600), False, Position("KX"), CONFIG, meta(), NOW)
    params = QuotingParams(shock_ticks=3, shock_window_ms=5_000, shock_spread_pct=300)
    shocked = compute_targets(
        book(4000, 4600), False, Position("KX"), CONFIG, meta(), NOW, params, recent=recent
    )
    assert mid_range_x2(recent, NOW, 5_000, 4000 + 4600) == 2 * 400
    assert calm.bid and calm.ask and shocked.bid and shocked.ask
    assert shocked.ask.price - shocked.bid.price > calm.ask.price - calm.bid.price
    assert "+shock" in shocked.bid.reason
    pulled = compute_targets(
        book(4000, 4600),
        False,
        Position("KX"),
        CONFIG,
        meta(),
        NOW,
        QuotingParams(shock_ticks=3, shock_spread_pct=0),
        recent=recent,
    )
    assert pulled.bid is None and pulled.ask is None and pulled.reason == "shock"
    old = Recent(((NOW - 60_000, 2 * 4300),))  # the move is older than the window: no shock
    assert mid_range_x2(old, NOW, 5_000, 8600) == 0


def test_volatility_widens_the_spread() -> None:
    moves = tuple((NOW - 50_000 + i * 1_000, 8600 + (200 if i % 2 else 0)) for i in range(50))
    recent = Recent(moves)
    params = QuotingParams(vol_spread_pct=100)
    assert mid_sigma_x2(recent, NOW, params.vol_horizon_ms, params.vol_window_ms) > 0
    wide = compute_targets(
        book(4000, 4600), False, Position("KX"), CONFIG, meta(), NOW, params, recent=recent
    )
    base = compute_targets(book(4000, 4600), False, Position("KX"), CONFIG, meta(), NOW)
    assert wide.bid and wide.ask and base.bid and base.ask
    assert wide.ask.price - wide.bid.price > base.ask.price - base.bid.price


def test_full_size_up_to_the_cap_by_default() -> None:
    assert quote_size(Side.BID, 4000, CONFIG, DEFAULT_PARAMS) == CONFIG.quote_size
    assert quote_size(Side.BID, 4500, CONFIG, DEFAULT_PARAMS) == 500  # only the room left
    assert quote_size(Side.BID, 5000, CONFIG, DEFAULT_PARAMS) == 0


def test_full_size_until_the_threshold_then_linear_to_the_cap() -> None:
    params = QuotingParams(full_size_pct=60)
    assert quote_size(Side.BID, 3000, CONFIG, params) == CONFIG.quote_size  # 60% of 5000
    assert quote_size(Side.BID, 4000, CONFIG, params) == 500  # halfway from 60% to the cap
    assert quote_size(Side.ASK, 4000, CONFIG, params) == CONFIG.quote_size
    assert quote_size(Side.BID, 5000, CONFIG, params) == 0


@settings(max_examples=200)
@given(
    bid=levels,
    width=st.integers(1, 3000),
    position=st.integers(-6000, 6000),
    grid=st.sampled_from(GRIDS),
    own_bid=st.integers(1, 9_999),
    own_ask=st.integers(1, 9_999),
    mids=st.lists(st.integers(2, 19_998), max_size=8),
    shock=st.sampled_from([0, 2, 5]),
    shock_pct=st.sampled_from([0, 100, 300]),
    vol=st.sampled_from([0, 50, 200]),
    fresh=st.lists(st.tuples(st.sampled_from(list(Side)), st.integers(1, 9_999)), max_size=4),
)
def test_guards_never_cross_exceed_caps_or_leave_the_grid(
    bid: int,
    width: int,
    position: int,
    grid: PriceGrid,
    own_bid: int,
    own_ask: int,
    mids: list[int],
    shock: int,
    shock_pct: int,
    vol: int,
    fresh: list[tuple[Side, int]],
) -> None:
    ask = min(bid + width, 9_999)
    if ask <= bid:
        return
    b = YesBook(
        ((bid, 1000), (max(1, bid - 100), 500)), ((ask, 1000), (min(9_999, ask + 100), 500))
    )
    own = [resting(Side.BID, own_bid, 300), resting(Side.ASK, own_ask, 300)]
    recent = Recent(tuple((NOW - 30_000 + 1_000 * i, m) for i, m in enumerate(mids)))
    params = QuotingParams(shock_ticks=shock, shock_spread_pct=shock_pct, vol_spread_pct=vol)
    t = compute_targets(
        b,
        False,
        Position("KX", position, position * 5000),
        CONFIG,
        meta(grid=grid),
        NOW,
        params,
        own_orders=own,
        recent=recent,
        memory=BookMemory(
            added=tuple((NOW, side, price) for side, price in fresh), fresh_spread=300
        ),
    )
    market = without_own_orders(b, own)
    for q in (t.bid, t.ask):
        if q is not None:
            assert grid.is_valid(q.price) and q.size > 0
    if t.bid:
        assert market.best_ask is not None and t.bid.price < market.best_ask
        assert position + t.bid.size <= CONFIG.max_inventory_yes
    if t.ask:
        assert market.best_bid is not None and t.ask.price > market.best_bid
        assert -position + t.ask.size <= CONFIG.max_inventory_no
    if t.bid and t.ask:
        assert t.ask.price - t.bid.price >= CONFIG.min_spread


def test_fresh_quotes_far_through_a_stale_touch_move_the_fair_value() -> None:
    before = YesBook(((4000, 2000), (3900, 2000)), ((4400, 2000), (4500, 2000)))
    # a maker re-centred far higher: its new asks rest at 6200+, its bids traded away the
    # stale asks at 4400; what is left at 4500 is stale
    after = YesBook(((4000, 2000), (3900, 2000)), ((4500, 500), (6200, 1000), (6300, 1000)))
    memory = remember_book(remember_book(NO_MEMORY, before, NOW - 5_000), after, NOW)
    plain = compute_targets(after, False, Position("KX"), CONFIG, meta(), NOW)
    fresh = compute_targets(after, False, Position("KX"), CONFIG, meta(), NOW, memory=memory)
    assert plain.ask and plain.ask.price == 4400  # one tick inside the stale ask
    assert fresh.ask and fresh.ask.price > 5000 and "+fresh" in fresh.ask.reason
    assert fresh.bid and fresh.bid.price == 4100  # the bid still improves
    # a fresh centre inside the touch (or within the margin) leaves the top-of-book mid alone
    near = YesBook(((4000, 2000), (3900, 2000)), ((4400, 2000), (4600, 1000)))
    memory = remember_book(remember_book(NO_MEMORY, before, NOW - 5_000), near, NOW)
    same = compute_targets(near, False, Position("KX"), CONFIG, meta(), NOW, memory=memory)
    assert same.ask and same.ask.price == 4300 and "+fresh" not in same.ask.reason


MAKER_FEES = meta(fee_type=FeeType.QUADRATIC_WITH_MAKER_FEES)


def test_a_quiet_maker_fee_market_improves_and_one_that_just_moved_joins() -> None:
    # 4 ticks wide at 0.42: one tick inside keeps min_spread (2 ticks) but not min_spread plus
    # two maker fees (about 0.0043 a contract each)
    now_book = book(4000, 4400)
    quiet = remember_book(
        remember_book(NO_MEMORY, book(4000, 4500), NOW - 20_000), now_book, NOW - 1_000
    )
    t = compute_targets(now_book, False, Position("KX"), CONFIG, MAKER_FEES, NOW, memory=quiet)
    assert t.bid and t.ask and (t.bid.price, t.ask.price) == (4100, 4300)
    assert t.bid.reason == t.ask.reason == "improve_best"
    # the same book 3 s after the others' mid was 6 ticks higher: one tick back from the best
    moved = remember_book(
        remember_book(NO_MEMORY, book(4600, 5000), NOW - 20_000), now_book, NOW - 3_000
    )
    t = compute_targets(now_book, False, Position("KX"), CONFIG, MAKER_FEES, NOW, memory=moved)
    assert t.bid and t.ask and (t.bid.price, t.ask.price) == (4000, 4400)
    assert t.bid.reason == t.ask.reason == "join_best"
    # a memory too short to say the market is quiet counts both fees; so does no memory
    young = remember_book(NO_MEMORY, now_book, NOW - 1_000)
    for memory in (young, NO_MEMORY):
        t = compute_targets(now_book, False, Position("KX"), CONFIG, MAKER_FEES, NOW, memory=memory)
        assert t.bid and t.bid.reason == "join_best"
    # a market without maker fees improves either way
    t = compute_targets(now_book, False, Position("KX"), CONFIG, meta(), NOW, memory=moved)
    assert t.bid and t.bid.reason == "improve_best"


def test_a_quiet_market_still_never_quotes_a_spread_its_maker_fees_would_eat() -> None:
    # combo maker fees near 0.40: ~0.0084 a contract a leg, two legs more than a 1-cent spread
    combo = meta(fee_type=FeeType.QUADRATIC_WITH_COMBO_MAKER_FEES)
    one_cent = replace(CONFIG, min_spread=100)
    tight = book(4000, 4100)
    quiet = remember_book(
        remember_book(NO_MEMORY, book(3900, 4200), NOW - 20_000), tight, NOW - 10_000
    )
    t = compute_targets(tight, False, Position("KX"), one_cent, combo, NOW, memory=quiet)
    assert t.bid is None and t.ask is None and t.reason == "spread_too_tight"
    # two cents wide, both fees are covered: quiet, it quotes without counting them again
    wide = book(4000, 4200)
    quiet = remember_book(
        remember_book(NO_MEMORY, book(3900, 4300), NOW - 20_000), wide, NOW - 10_000
    )
    t = compute_targets(wide, False, Position("KX"), one_cent, combo, NOW, memory=quiet)
    assert t.bid and t.ask and (t.bid.price, t.ask.price) == (4000, 4200)


def test_measured_toxicity_replaces_the_static_score_once_there_is_enough_data() -> None:
    from common.markouts import NO_MARKOUTS, note_fill, score_due

    params = QuotingParams(tox_min_contracts=500, tox_free=0, tox_span=100, tox_max=10_000)
    toxic = NO_MARKOUTS
    for i in range(5):  # bought 5 contracts; the mid was 2 c lower 10 s later
        toxic = note_fill(toxic, NOW - 20_000 + i, 100, 2 * 4_200)
    toxic = score_due(toxic, NOW, 2 * 4_000)

    def quote(markouts=NO_MARKOUTS, config=CONFIG, p=params):  # type: ignore[no-untyped-def]
        t = compute_targets(
            book(4000, 4400), False, Position("KX"), config, meta(), NOW, p, markouts=markouts
        )
        return (t.bid and t.bid.price, t.ask and t.ask.price)

    assert quote() == (4100, 4300)  # no data: the static score (0): one tick inside
    assert quote(toxic) == (4000, 4400)  # toxic fills: the 2 c min spread doubles, join
    assert quote(toxic, p=replace(params, tox_min_contracts=0)) == (4100, 4300)  # rule off
    too_few = replace(params, tox_min_contracts=600)
    assert quote(toxic, p=too_few) == (4100, 4300)  # 5 contracts scored, 6 needed
    static = replace(CONFIG, toxicity_score=10_000)
    assert quote(config=static) == (4000, 4400)  # the static score stands without data


def test_an_external_fair_value_moves_the_quotes_while_fresh() -> None:
    from common.fair_inputs import ExternalFair

    def quote(external, p=DEFAULT_PARAMS):  # type: ignore[no-untyped-def]
        t = compute_targets(
            book(4000, 4600), False, Position("KX"), CONFIG, meta(), NOW, p, external=external
        )
        return (t.bid and t.bid.price, t.ask and t.ask.price, t.fair_price)

    assert quote(None) == (4100, 4500, 4300)
    # the model says 46 c: the fair (reservation) moves there; 2 c around it still allows
    # one tick inside on both sides (41 c <= 45 c, 45 c >= 47 c fails: the ask goes to 47 c)
    assert quote(ExternalFair(4_600, NOW - 1_000)) == (4100, 4700, 4600)
    # half the confidence, half the way: 44.5 c, an ask at 45.5 c -> 46 c
    assert quote(ExternalFair(4_600, NOW - 1_000, confidence_pct=50)) == (4100, 4600, 4450)
    assert quote(ExternalFair(4_600, NOW - 60_000)) == (4100, 4500, 4300)  # stale: ignored
    off = replace(DEFAULT_PARAMS, fv_stale_ms=0)
    assert quote(ExternalFair(4_600, NOW), p=off) == (4100, 4500, 4300)


def test_an_external_fair_value_far_from_the_book_pulls_the_side_it_would_lose_on() -> None:
    from common.fair_inputs import ExternalFair

    t = compute_targets(
        book(4000, 4600),
        False,
        Position("KX"),
        CONFIG,
        meta(),
        NOW,
        external=ExternalFair(6_000, NOW),
    )
    # worth 60 c: selling at 45 c would lose; the ask goes behind to 61 c, the bid improves
    assert t.bid is not None and t.bid.price == 4100
    assert t.ask is not None and t.ask.price == 6100 and t.ask.reason.startswith("behind_best")


def test_the_measured_toxicity_is_capped_at_tox_max() -> None:
    from common.markouts import NO_MARKOUTS, note_fill, score_due

    toxic = NO_MARKOUTS
    for i in range(20):  # 20 contracts bought; the mid 2 c lower 10 s later
        toxic = note_fill(toxic, NOW - 20_000 + i, 100, 2 * 4_200)
    toxic = score_due(toxic, NOW, 2 * 4_000)
    # a 3 c market: one tick inside leaves 1 c; 2 c x 1.5 (the default cap) = 3 c: join
    t = compute_targets(
        book(4000, 4300), False, Position("KX"), CONFIG, meta(), NOW, markouts=toxic
    )
    assert t.bid is not None and t.ask is not None
    assert (t.bid.price, t.ask.price) == (4000, 4300)
    assert required_spread(CONFIG, meta(), 4150, toxicity_score=DEFAULT_PARAMS.tox_max) == 300
    # a 2 c market: 2 c x 1.5 does not fit: nothing (uncapped 2x would need 4 c too)
    t = compute_targets(
        book(4000, 4200), False, Position("KX"), CONFIG, meta(), NOW, markouts=toxic
    )
    assert t.bid is None and t.ask is None and t.reason == "spread_too_tight"
    # without the fills: the same 2 c market is joined on both sides
    t = compute_targets(book(4000, 4200), False, Position("KX"), CONFIG, meta(), NOW)
    assert t.bid is not None and t.ask is not None
