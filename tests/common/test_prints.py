"""The public trade tape (``common.prints``) and the quoting rule it drives (off by default)."""

from dataclasses import replace

from common.book import YesBook
from common.config import MarketConfig
from common.domain import MarketMeta, MarketStatus, Position
from common.fees import FeeType
from common.grid import PriceGrid
from common.prints import (
    KEEP,
    NO_PRINTS,
    PrintRule,
    Prints,
    informed_sides,
    judged_informed,
    remember_print,
)
from common.quoting import DEFAULT_PARAMS, QuotingParams, compute_targets

NOW = 1_800_000_000_000
C = 100  # one contract
RULE = PrintRule(min_count=11 * C, rare_pct=10)  # 50 prints, at most 10 % of 11+, 20 seen


def tape(*prints: tuple[int, int, int]) -> Prints:
    """(ms ago, taker sign, contracts), oldest first."""
    state = NO_PRINTS
    for ago, sign, contracts in prints:
        state = remember_print(state, NOW - ago, sign, contracts * C)
    return state


def small(n: int, start_ago: int = 200_000) -> list[tuple[int, int, int]]:
    """``n`` noise-sized prints (1-10 contracts, alternating sides), a second apart."""
    return [(start_ago - 1_000 * i, 1 if i % 2 else -1, 1 + i % 10) for i in range(n)]


def test_trades_of_one_taker_order_merge_into_one_print() -> None:
    state = tape((5_000, 1, 4), (5_000, 1, 6), (5_000, -1, 2), (4_000, -1, 3), (4_000, -1, 9))
    assert state.tape == (
        (NOW - 5_000, 1, 10 * C),
        (NOW - 5_000, -1, 2 * C),
        (NOW - 4_000, -1, 12 * C),
    )
    many = tape(*((i, 1, 1) for i in range(KEEP + 10, 0, -1)))
    assert len(many.tape) == KEEP and many.tape[-1][0] == NOW - 1


def test_a_large_print_is_informed_only_where_large_prints_are_rare() -> None:
    quiet = tape(*small(50)).tape
    assert judged_informed(quiet, 11 * C, RULE)  # noise trades at most 10 here
    assert not judged_informed(quiet, 10 * C, RULE)  # below the floor
    assert not judged_informed(quiet[-19:], 30 * C, RULE)  # too few prints seen yet
    assert not judged_informed(quiet, 30 * C, PrintRule())  # off
    # a market where 20-40-lot sweeps are common (sports_live): even a 45-lot, larger than any
    # of them, is not judged informed (the floor's share is what counts, not the print's rank)
    sweeps = tape(*((200_000 - 1_000 * i, 1, 20 + i % 21 if i % 5 == 0 else 5) for i in range(50)))
    assert not judged_informed(sweeps.tape, 45 * C, RULE)
    # five of the last 50 at 11 or more (10 %) still counts; six does not
    five = tape(*((200_000 - 1_000 * i, 1, 11 if i % 10 == 0 else 3) for i in range(50)))
    six = tape(*((200_000 - 1_000 * i, 1, 11 if i % 9 == 0 else 3) for i in range(50)))
    assert judged_informed(five.tape, 12 * C, RULE)
    assert not judged_informed(six.tape, 40 * C, RULE)


def test_informed_sides_within_the_hold_window() -> None:
    base = small(50)
    assert informed_sides(tape(*base, (3_000, 1, 25)), NOW, 10_000, RULE) == (True, False)
    assert informed_sides(tape(*base, (3_000, -1, 25)), NOW, 10_000, RULE) == (False, True)
    assert informed_sides(tape(*base, (11_000, 1, 25)), NOW, 10_000, RULE) == (False, False)
    both = tape(*base, (8_000, -1, 15), (3_000, 1, 25), (1_000, 1, 2))
    assert informed_sides(both, NOW, 10_000, RULE) == (True, True)
    # a print is judged against the prints before it: a burst of eleven 12-lot sales makes
    # 11+ common by its end, but its first sales were rare when they printed
    burst = tape(*base, *((8_000 - 100 * i, -1, 12) for i in range(11)))
    assert not judged_informed(burst.tape, 12 * C, RULE)
    assert informed_sides(burst, NOW, 10_000, RULE) == (False, True)


# ---- the quoting rule ---------------------------------------------------------------------

CONFIG = MarketConfig(
    "KX", enabled=True, max_inventory_yes=5000, max_inventory_no=5000, quote_size=500
)
META = MarketMeta(
    "KX", MarketStatus("active"), NOW + 86_400_000, PriceGrid.linear_cent(), FeeType.QUADRATIC
)
BOOK = YesBook(((4000, 20 * C),), ((4500, 20 * C),))  # deep, 5 ticks wide
ON = replace(DEFAULT_PARAMS, print_informed_min=11 * C, print_rare_pct=10)


def quoted(prints: Prints, params: QuotingParams = ON) -> tuple[object, ...]:
    t = compute_targets(BOOK, False, Position("KX"), CONFIG, META, NOW, params, prints=prints)
    lean = "+print" if t.bid and t.bid.reason.endswith("+print") else ""
    return (t.bid and t.bid.price, t.ask and t.ask.price, t.reason + lean)


def test_after_an_informed_buy_the_ask_is_pulled_for_the_hold() -> None:
    bought = tape(*small(50), (3_000, 1, 25))
    assert quoted(NO_PRINTS) == (4100, 4400, "quoting")
    assert quoted(bought) == (4100, None, "quoting")
    assert quoted(tape(*small(50), (3_000, -1, 25))) == (None, 4400, "quoting")
    assert quoted(bought, replace(ON, print_hold_ms=2_000)) == (4100, 4400, "quoting")
    assert quoted(bought, DEFAULT_PARAMS) == (4100, 4400, "quoting")  # off by default
    assert quoted(tape(*small(50), (3_000, 1, 10))) == (4100, 4400, "quoting")  # noise-sized
    both = tape(*small(50), (5_000, -1, 15), (3_000, 1, 25))
    assert quoted(both) == (None, None, "informed_print")


def test_leaning_moves_both_quotes_the_takers_way_instead() -> None:
    lean = replace(ON, print_lean_ticks=3)
    # fair 42.50 + 3 c = 45.50: the bid still improves the best, the ask stands behind it
    assert quoted(tape(*small(50), (3_000, 1, 25)), lean) == (4100, 4700, "quoting+print")
    assert quoted(tape(*small(50), (3_000, -1, 25)), lean) == (3800, 4400, "quoting+print")
    both = tape(*small(50), (5_000, -1, 15), (3_000, 1, 25))
    assert quoted(both, lean) == (4100, 4400, "quoting")  # the two cancel: no lean, no pull
