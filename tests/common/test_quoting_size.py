"""Size by measured toxicity: a market whose scored fills show no adverse move quotes more."""

from dataclasses import replace

from common.book import YesBook
from common.config import MarketConfig
from common.domain import MarketMeta, MarketStatus, Position
from common.fees import FeeType
from common.grid import PriceGrid
from common.markouts import NO_MARKOUTS, Markouts, note_fill, score_due
from common.quoting import DEFAULT_PARAMS, QuotingParams, compute_targets, largest_quote
from common.recent_mids import NO_RECENT, Recent, remember_mid

NOW = 1_800_000_000_000
CONFIG = MarketConfig(
    "KX",
    enabled=True,
    max_inventory_yes=5000,
    max_inventory_no=5000,
    min_spread=200,
    quote_size=500,
    inventory_skew_factor=5000,
)
META = MarketMeta(
    "KX", MarketStatus("active"), NOW + 86_400_000, PriceGrid.linear_cent(), FeeType.QUADRATIC
)
PARAMS = QuotingParams(
    tox_min_contracts=2000,
    tox_free=40,
    benign_size_pct=300,
    benign_skew_pct=100,
    benign_max_spread_ticks=0,  # the tests' book is 4 ticks wide
    benign_min_depth=0,  # and 10 contracts deep
    thin_size_pct=100,
)


def scored(contracts: int, move: int) -> Markouts:
    """``contracts`` one-contract buys at a 42 c mid, the mid ``move`` units higher 10 s on."""
    state = NO_MARKOUTS
    for i in range(contracts):
        state = note_fill(state, NOW - 20_000 + i, 100, 2 * 4_200)
    return score_due(state, NOW, 2 * (4_200 + move))


def sizes(
    markouts: Markouts, position: int = 0, params: QuotingParams = PARAMS
) -> tuple[int | None, int | None]:
    book = YesBook(((4000, 1000),), ((4400, 1000),))
    t = compute_targets(
        book, False, Position("KX", position), CONFIG, META, NOW, params, markouts=markouts
    )
    return (t.bid and t.bid.size, t.ask and t.ask.size)


def test_benign_fills_triple_the_size() -> None:
    assert sizes(NO_MARKOUTS) == (500, 500)  # nothing scored: quote_size
    assert sizes(scored(20, 0)) == (1500, 1500)  # 20 contracts, the mid did not move: 3x
    assert sizes(scored(20, 20)) == (1500, 1500)  # the mid moved our way
    assert sizes(scored(20, -40)) == (1500, 1500)  # 0.4 c against: still within tox_free


def test_adverse_or_too_few_fills_keep_quote_size() -> None:
    assert sizes(scored(20, -50)) == (500, 500)  # 0.5 c against us: past tox_free
    assert sizes(scored(19, 0)) == (500, 500)  # 19 contracts scored, 20 needed
    assert sizes(scored(20, 0), params=replace(PARAMS, benign_size_pct=100)) == (500, 500)
    assert sizes(scored(20, 0), params=replace(PARAMS, tox_min_contracts=0)) == (500, 500)


def test_the_larger_size_stays_within_the_caps() -> None:
    # long 40 of a 50 cap: the bid may add 10 more, the ask sells the full 15
    assert sizes(scored(20, 0), position=4000) == (1000, 1500)
    assert sizes(scored(20, 0), position=-5000) == (1500, None)  # short at the cap


def prices(markouts: Markouts, position: int, params: QuotingParams) -> tuple[int, int]:
    book = YesBook(((4000, 1000),), ((4400, 1000),))
    t = compute_targets(
        book, False, Position("KX", position), CONFIG, META, NOW, params, markouts=markouts
    )
    assert t.bid is not None and t.ask is not None
    return (t.bid.price, t.ask.price)


def test_a_benign_market_skews_by_benign_skew_pct() -> None:
    # long 45 of a 50 cap: past skew_start (75 %), the skew lowers the reservation price and
    # the bid falls back to join the best
    no_skew = replace(PARAMS, benign_skew_pct=0)
    assert prices(scored(20, -50), 4500, no_skew) == (4000, 4300)  # adverse fills: full skew
    assert prices(scored(20, 0), 4500, PARAMS) == (4000, 4300)  # benign, 100 %: the same
    assert prices(scored(20, 0), 4500, no_skew) == (4100, 4300)  # benign, 0 %: one tick inside
    assert prices(NO_MARKOUTS, 4500, no_skew) == (4000, 4300)  # nothing scored: full skew


def test_largest_quote_allows_for_the_benign_size() -> None:
    assert largest_quote(CONFIG, PARAMS) == 1500
    assert largest_quote(CONFIG, replace(PARAMS, benign_size_pct=50)) == 500
    assert largest_quote(CONFIG) == CONFIG.quote_size * DEFAULT_PARAMS.benign_size_pct // 100


def test_a_one_tick_market_is_not_pulled_by_measured_toxicity() -> None:
    one_cent = replace(CONFIG, min_spread=100)
    touch = YesBook(((4200, 1000),), ((4300, 1000),))  # one tick: join both sides or nothing
    adverse = scored(20, -90)  # 0.9 c against us: the cap, min_spread x 1.5
    joined = replace(PARAMS, tox_touch_join=True)
    t = compute_targets(touch, False, Position("KX"), one_cent, META, NOW, joined, markouts=adverse)
    assert t.bid is not None and t.ask is not None
    assert (t.bid.price, t.bid.size, t.ask.price, t.ask.size) == (4200, 500, 4300, 500)
    off = replace(PARAMS, tox_touch_join=False)
    t = compute_targets(touch, False, Position("KX"), one_cent, META, NOW, off, markouts=adverse)
    assert (t.bid, t.ask, t.reason) == (None, None, "spread_too_tight")
    # two ticks wide: the widened spread still fits, nothing changes
    wider = YesBook(((4200, 1000),), ((4400, 1000),))
    a = compute_targets(wider, False, Position("KX"), one_cent, META, NOW, joined, markouts=adverse)
    b = compute_targets(wider, False, Position("KX"), one_cent, META, NOW, off, markouts=adverse)
    assert a == b


def test_a_one_tick_market_is_joined_only_while_its_mid_was_quiet() -> None:
    one_cent = replace(CONFIG, min_spread=100)
    touch = YesBook(((4200, 1000),), ((4300, 1000),))
    adverse = scored(20, -90)
    gated = replace(PARAMS, tox_touch_join=True, tox_touch_quiet_ms=30_000)

    def quotes(recent: Recent) -> tuple[int | None, int | None]:
        t = compute_targets(
            touch, False, Position("KX"), one_cent, META, NOW, gated, recent=recent,
            markouts=adverse,
        )  # fmt: skip
        return (t.bid and t.bid.price, t.ask and t.ask.price)

    # the mid (x2: 8500 now) moved one tick within the 30 s: joined
    assert quotes(Recent(((NOW - 40_000, 8300), (NOW - 20_000, 8500)))) == (4200, 4300)
    # a tick and a half 20 s ago (x2 8200 -> 8500): a moving market, left
    assert quotes(Recent(((NOW - 40_000, 8200), (NOW - 20_000, 8500)))) == (None, None)
    # that move 40 s ago is before the window: only the mid then in effect counts
    assert quotes(Recent(((NOW - 40_000, 8200), (NOW - 35_000, 8500)))) == (4200, 4300)


def test_remember_mid_keeps_the_changes_of_the_last_minute() -> None:
    recent = remember_mid(NO_RECENT, 1_000, 8_400)
    assert remember_mid(recent, 2_000, 8_400) is recent  # unchanged mid: nothing added
    assert remember_mid(recent, 2_000, None) is recent  # one-sided book: nothing added
    recent = remember_mid(recent, 30_000, 8_500)
    assert recent.mids_x2 == ((1_000, 8_400), (30_000, 8_500))
    assert remember_mid(recent, 61_000, 8_500).mids_x2 == ((1_000, 8_400), (30_000, 8_500))
    assert remember_mid(recent, 61_001, 8_600).mids_x2 == ((30_000, 8_500), (61_001, 8_600))


def sizes_in(
    book: YesBook, markouts: Markouts, params: QuotingParams
) -> tuple[int | None, int | None]:
    t = compute_targets(book, False, Position("KX"), CONFIG, META, NOW, params, markouts=markouts)
    return (t.bid and t.bid.size, t.ask and t.ask.size)


def test_a_wide_market_keeps_quote_size_even_when_benign() -> None:
    narrow = YesBook(((4000, 1000),), ((4400, 1000),))  # 4 ticks
    wide = YesBook(((4000, 1000),), ((4700, 1000),))  # 7 ticks: an illiquid market's one maker
    only_narrow = replace(PARAMS, benign_max_spread_ticks=4)
    assert sizes_in(narrow, scored(20, 0), only_narrow) == (1500, 1500)
    assert sizes_in(wide, scored(20, 0), only_narrow) == (500, 500)
    assert sizes_in(wide, scored(20, 0), replace(PARAMS, benign_max_spread_ticks=0)) == (1500, 1500)


def test_a_thin_book_keeps_quote_size_even_when_benign() -> None:
    deep = YesBook(((4000, 1000), (3900, 2000)), ((4400, 1000), (4500, 2000)))  # 30 a side
    thin = YesBook(((4000, 800), (3800, 500)), ((4400, 300),))  # one maker, 3-13 contracts
    only_deep = replace(PARAMS, benign_min_depth=2000)
    assert sizes_in(deep, scored(20, 0), only_deep) == (1500, 1500)
    assert sizes_in(thin, scored(20, 0), only_deep) == (500, 500)  # the ask side shows 3
    assert sizes_in(thin, NO_MARKOUTS, only_deep) == (500, 500)  # not benign: as before
    smaller = replace(only_deep, thin_size_pct=80)
    assert sizes_in(thin, NO_MARKOUTS, smaller) == (400, 400)  # a thin market: 80 % always
    assert sizes_in(thin, scored(20, 0), smaller) == (400, 400)
    assert sizes_in(deep, NO_MARKOUTS, smaller) == (500, 500)
    assert sizes_in(thin, scored(20, 0), PARAMS) == (1500, 1500)  # gate off


def test_a_narrow_thin_book_keeps_the_benign_size_when_both_gates_are_set() -> None:
    thin_narrow = YesBook(((4000, 800),), ((4300, 300),))  # 3 ticks, 3 contracts
    thin_wide = YesBook(((4000, 800),), ((4500, 300),))  # 5 ticks, 3 contracts
    deep_wide = YesBook(((4000, 3000),), ((4500, 3000),))
    both = replace(PARAMS, benign_max_spread_ticks=3, benign_min_depth=1700)
    assert sizes_in(thin_narrow, scored(20, 0), both) == (1500, 1500)
    assert sizes_in(deep_wide, scored(20, 0), both) == (1500, 1500)
    assert sizes_in(thin_wide, scored(20, 0), both) == (500, 500)


def test_a_busy_market_is_not_thin() -> None:
    thin_wide = YesBook(((4000, 800),), ((4500, 300),))
    params = replace(
        PARAMS,
        benign_max_spread_ticks=3,
        benign_min_depth=1700,
        thin_size_pct=80,
        thin_max_mid_changes=2,
    )
    slow = NO_RECENT
    for i in range(2):
        slow = remember_mid(slow, NOW - 30_000 + i, 8_400 + 100 * i)
    busy = remember_mid(slow, NOW - 1_000, 8_600)  # a third change within the minute

    def size_with(recent: Recent) -> int | None:
        t = compute_targets(
            thin_wide, False, Position("KX"), CONFIG, META, NOW, params, recent=recent
        )
        return t.bid and t.bid.size

    assert size_with(slow) == 400
    assert size_with(busy) == 500


def test_the_shipped_defaults_treat_an_illiquid_book_as_thin() -> None:
    one_maker = YesBook(((4000, 500), (3800, 400)), ((4600, 300), (4800, 700)))
    t = compute_targets(one_maker, False, Position("KX"), CONFIG, META, NOW, DEFAULT_PARAMS)
    assert t.bid is not None and t.bid.size == 400  # 80 % of quote_size
