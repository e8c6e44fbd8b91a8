"""Marks on the others' book: our quotes out, stale books not used, liquidation when one-sided."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.book import BookState, YesBook
from common.domain import MarketStatus, Order, OrderStatus, Side
from common.marks import (
    MARK_HOLD_MS,
    SeenBook,
    is_trading,
    liquidation_value,
    mark_position,
    mark_price,
)
from common.numbers import ONE_DOLLAR

NOW = 1_800_000_000_000
LONG, SHORT = 1000, -1000


def fresh(bids: tuple[tuple[int, int], ...], asks: tuple[tuple[int, int], ...]) -> BookState:
    return BookState("KX", YesBook(bids, asks), 1, NOW, NOW, False)


def ours(side: Side, price: int, size: int) -> Order:
    return Order("KX", side, price, size, f"c-{side}-{price}", "x", OrderStatus.RESTING, 0, size)


def test_two_sided_is_the_mid_rounded_against_the_position() -> None:
    book = YesBook(((4000, 10),), ((4101, 10),))
    assert mark_price(LONG, book) == 4050
    assert mark_price(SHORT, book) == 4051


@pytest.mark.parametrize(
    ("position", "bids", "asks", "mark"),
    [
        (LONG, ((3000, 5),), (), 3000),  # asks gone: the best bid is what a long fetches
        (LONG, (), ((6000, 5),), 0),  # bids gone: a long fetches nothing
        (LONG, (), (), 0),
        (SHORT, (), ((6000, 5),), 6000),
        (SHORT, ((3000, 5),), (), ONE_DOLLAR),  # asks gone: a short closes at $1
        (SHORT, (), (), ONE_DOLLAR),
    ],
)
def test_a_one_sided_or_empty_book_marks_at_liquidation_value(
    position: int, bids: tuple[tuple[int, int], ...], asks: tuple[tuple[int, int], ...], mark: int
) -> None:
    mark_ = mark_position(position, fresh(bids, asks), [], True, None, NOW)
    assert mark_ is not None and mark_.price == mark and mark_.source == "liquidation"
    assert liquidation_value(position, YesBook(bids, asks)) == mark


def test_our_own_quotes_are_taken_out_of_the_book() -> None:
    """Our bid at 0.49 is the best bid; the others bid 0.40. A long is worth the others' mid."""
    book = fresh(((4900, 500), (4000, 300)), ((5100, 300),))
    mark = mark_position(LONG, book, [ours(Side.BID, 4900, 500)], True, None, NOW)
    assert mark is not None and mark.price == (4000 + 5100) // 2 and mark.source == "book"
    # our bid was the only one: nothing is left to sell into but the others' ask side
    alone = fresh(((4900, 500),), ((5100, 300),))
    mark = mark_position(LONG, alone, [ours(Side.BID, 4900, 500)], True, None, NOW)
    assert mark is not None and mark.price == 0 and mark.source == "liquidation"


def test_a_stale_book_is_not_used_the_last_fresh_one_is_held_then_liquidated() -> None:
    seen = SeenBook(4800, 5200, NOW)
    crashed = BookState("KX", YesBook(((1000, 1),), ((1200, 1),)), 9, NOW, NOW, True)
    mark = mark_position(LONG, crashed, [], True, seen, NOW + 1_000)
    assert mark is not None and (mark.price, mark.source) == (5000, "held")
    mark = mark_position(LONG, None, [], True, seen, NOW + MARK_HOLD_MS)
    assert mark is not None and mark.source == "held"
    later = mark_position(LONG, crashed, [], True, seen, NOW + MARK_HOLD_MS + 1)
    assert later is not None and (later.price, later.source) == (4800, "held_liquidation")
    assert mark_position(LONG, crashed, [], True, None, NOW) is None  # nothing known at all


def test_a_closed_market_keeps_the_mark_it_had_while_it_traded() -> None:
    """Its book empties at the close (orders cancelled), which says nothing of the settlement."""
    seen = SeenBook(7000, 7200, NOW - 5_000)
    closed = is_trading(MarketStatus.CLOSED, NOW - 1_000, NOW + 3_600_000)
    empty = fresh((), ())
    mark = mark_position(LONG, empty, [], closed, seen, NOW + 3_600_000)
    assert mark is not None and (mark.price, mark.source) == (7100, "held")
    # the status still says active, but the close time has passed: the same
    assert not is_trading(MarketStatus.ACTIVE, NOW - 1_000, NOW)
    assert is_trading(MarketStatus.ACTIVE, NOW + 10_000, NOW)
    assert is_trading(None, 0, NOW) and is_trading(MarketStatus.INACTIVE, 0, NOW)
    mark = mark_position(LONG, empty, [], True, seen, NOW)
    assert mark is not None and (mark.price, mark.source) == (0, "liquidation")


books = st.tuples(
    st.lists(st.tuples(st.integers(100, 9900), st.integers(1, 10_000)), max_size=3),
    st.lists(st.tuples(st.integers(100, 9900), st.integers(1, 10_000)), max_size=3),
)


@given(books, st.integers(-10_000, 10_000).filter(bool))
def test_a_mark_is_a_price_and_one_sided_books_give_the_liquidation_value(
    ladders: tuple[list[tuple[int, int]], list[tuple[int, int]]], position: int
) -> None:
    bids = tuple(sorted(ladders[0], reverse=True))
    asks = tuple(sorted(ladders[1]))
    book = YesBook(bids, asks)
    mark = mark_price(position, book)
    assert 0 <= mark <= ONE_DOLLAR
    if not book.is_two_sided:
        assert mark == liquidation_value(position, book)
