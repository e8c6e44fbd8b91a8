"""A thin market's side whose whole quote one fill took is pulled for ``taken_window_ms``."""

from dataclasses import replace

from common.book import YesBook
from common.config import MarketConfig
from common.domain import MarketMeta, MarketStatus, Position
from common.fees import FeeType
from common.grid import PriceGrid
from common.markouts import FILLS_KEEP_MS, NO_MARKOUTS, Markouts, note_fill, taken_sides
from common.quoting import DEFAULT_PARAMS, QuotingParams, compute_targets

NOW = 1_800_000_000_000
C = 100  # one contract
CONFIG = MarketConfig(
    "KX", enabled=True, max_inventory_yes=5000, max_inventory_no=5000, quote_size=500
)
META = MarketMeta(
    "KX", MarketStatus("active"), NOW + 86_400_000, PriceGrid.linear_cent(), FeeType.QUADRATIC
)
PARAMS = DEFAULT_PARAMS  # taken_window_ms 60 s
THIN = YesBook(((4000, 8 * C),), ((4500, 3 * C),))  # one maker, 5 ticks wide, 3-8 contracts
DEEP = YesBook(((4000, 20 * C),), ((4500, 20 * C),))  # as wide, but 20 contracts a side


def fills(*ago_and_signed: tuple[int, int]) -> Markouts:
    state = NO_MARKOUTS
    for ago_ms, signed in ago_and_signed:
        state = note_fill(state, NOW - ago_ms, signed, 2 * 4_250)
    return state


def quoted(
    markouts: Markouts, book: YesBook = THIN, params: QuotingParams = PARAMS
) -> tuple[object, ...]:
    t = compute_targets(book, False, Position("KX"), CONFIG, META, NOW, params, markouts=markouts)
    return (t.bid and (t.bid.price, t.bid.size), t.ask and (t.ask.price, t.ask.size), t.reason)


def test_a_thin_side_taken_whole_is_pulled_for_the_window() -> None:
    both = ((4100, 4 * C), (4400, 4 * C), "quoting")  # one tick inside, the thin 80 % size
    assert quoted(NO_MARKOUTS) == both
    assert quoted(fills((30_000, -4 * C))) == ((4100, 4 * C), None, "quoting")  # ask taken
    assert quoted(fills((30_000, 4 * C))) == (None, (4400, 4 * C), "quoting")  # bid taken
    assert quoted(fills((30_000, 4 * C), (5_000, -5 * C))) == (None, None, "taken")
    assert quoted(fills((60_000, -4 * C))) == both  # the window has passed


def test_a_partial_fill_a_deep_book_or_the_knob_off_pulls_nothing() -> None:
    assert quoted(fills((1_000, -3 * C))) == ((4100, 4 * C), (4400, 4 * C), "quoting")
    assert quoted(fills((1_000, -4 * C)), DEEP) == ((4100, 5 * C), (4400, 5 * C), "quoting")
    off = replace(PARAMS, taken_window_ms=0)
    assert quoted(fills((1_000, -4 * C)), THIN, off) == ((4100, 4 * C), (4400, 4 * C), "quoting")


def test_fills_are_kept_for_a_while_and_by_side() -> None:
    state = fills((FILLS_KEEP_MS + 600, 9 * C), (1_000, -2 * C), (500, 3 * C))
    assert [ms for ms, _ in state.fills] == [NOW - 1_000, NOW - 500]  # older than the newest - keep
    assert taken_sides(state, NOW, 2_000, 3 * C) == (True, False)  # bought 3: a bid taken
    assert taken_sides(state, NOW, 2_000, 2 * C) == (True, True)
    assert taken_sides(state, NOW, 800, 2 * C) == (True, False)  # the sale is 1 s old
    late = note_fill(state, NOW - 2_000, -C, None)  # a fill heard late: kept in time order
    assert [ms for ms, _ in late.fills] == [NOW - 2_000, NOW - 1_000, NOW - 500]


def test_the_rule_is_for_thin_markets_unless_told_otherwise() -> None:
    five = fills((1_000, -5 * C))  # quote_size taken whole in a deep book, no record of such
    assert quoted(five, DEEP) == ((4100, 5 * C), (4400, 5 * C), "quoting")  # (gated: kept)
    anywhere = replace(PARAMS, taken_thin_only=False)
    assert quoted(five, DEEP, anywhere) == ((4100, 5 * C), None, "quoting")
    assert quoted(fills((1_000, -4 * C)), DEEP, anywhere)[1] == (4400, 5 * C)  # not whole


def test_a_deep_market_has_its_own_shorter_window() -> None:
    five = fills((5_000, -5 * C))  # quote_size taken whole in a deep book, 5 s ago
    other = replace(PARAMS, taken_other_ms=10_000, taken_gate_min_fills=0)  # ungated
    assert quoted(five, DEEP, other) == ((4100, 5 * C), None, "quoting")
    assert quoted(fills((11_000, -5 * C)), DEEP, other)[1] == (4400, 5 * C)  # window passed
    # a thin market keeps its own 60 s window
    assert quoted(fills((30_000, -4 * C)), THIN, other) == ((4100, 4 * C), None, "quoting")


def test_a_deep_market_can_require_the_mid_to_have_moved_the_takers_way() -> None:
    from common.recent_mids import Recent

    def with_mids(markouts: Markouts, before_x2: int, params: QuotingParams) -> tuple[object, ...]:
        recent = Recent(((NOW - 6_000, before_x2),))
        t = compute_targets(
            DEEP, False, Position("KX"), CONFIG, META, NOW, params, markouts=markouts, recent=recent
        )
        return (t.bid and t.bid.price, t.ask and t.ask.price)

    sold = fills((5_000, -5 * C))  # a taker bought our whole ask 5 s ago
    one = replace(PARAMS, taken_other_ms=30_000, taken_other_move_ticks=1, taken_gate_min_fills=0)
    two = replace(one, taken_other_move_ticks=2)
    assert with_mids(sold, 2 * 4_150, one) == (4100, None)  # the mid rose a tick since: pulled
    assert with_mids(sold, 2 * 4_150, two) == (4100, 4400)  # not two ticks
    assert with_mids(sold, 2 * 4_350, one) == (4100, 4400)  # it fell: the taker was wrong
    bought = fills((5_000, 5 * C))  # a taker sold to our whole bid
    assert with_mids(bought, 2 * 4_350, one) == (None, 4400)  # and the mid fell a tick


def test_a_deep_market_can_gate_the_pull_on_its_own_record_of_whole_quote_fills() -> None:
    from common.markouts import score_due

    def record(*edges_c: int) -> Markouts:
        """Earlier sales of a whole 5 at 43 c, each scored 10 s later at 43 c - edge."""
        state = NO_MARKOUTS
        for i, edge in enumerate(edges_c):
            ms = NOW - 100_000 + i
            state = note_fill(state, ms, -5 * C, 2 * 4_250, 4_300)
            state = score_due(state, ms + 10_000, 2 * (4_300 - 100 * edge))
        return note_fill(state, NOW - 5_000, -5 * C, 2 * 4_250, 4_300)  # and one 5 s ago

    gated = replace(PARAMS, taken_other_ms=30_000, taken_gate_min_fills=2)
    pulled, kept = ((4100, 5 * C), None, "quoting"), ((4100, 5 * C), (4400, 5 * C), "quoting")
    assert quoted(record(-2, -1), DEEP, gated) == pulled  # whole-quote takers were informed
    assert quoted(record(-2, +3), DEEP, gated) == kept  # on average they were not
    assert quoted(record(-2), DEEP, gated) == kept  # too few to tell: not pulled
    assert quoted(record(-2), DEEP, replace(gated, taken_gate_min_fills=0)) == pulled  # no gate
    assert quoted(record(+1, +1), DEEP, replace(gated, taken_gate_edge=200)) == pulled  # < 2 c
    # a thin market's own rule is not gated
    assert quoted(record(+3, +3), THIN, gated) == ((4100, 4 * C), None, "quoting")
