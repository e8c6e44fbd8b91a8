import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.book import BookError, LevelBook, YesBook

levels = st.lists(
    st.tuples(st.integers(min_value=1, max_value=9_999), st.integers(min_value=0, max_value=10**6)),
    max_size=30,
)


def test_yes_book_from_ladders() -> None:
    book = YesBook.from_bid_ladders([(4100, 1000), (4200, 1300)], [(5600, 1700), (5000, 500)])
    assert book.best_bid == 4200 and book.best_bid_size == 1300
    assert book.best_ask == 4400 and book.best_ask_size == 1700  # 1 - 0.56
    assert book.asks == ((4400, 1700), (5000, 500))
    assert book.spread == 200 and book.mid_x2 == 8600
    assert book.best_no_bid == 5600
    assert not book.is_crossed and not book.is_locked and book.is_two_sided


def test_empty_and_one_sided_books() -> None:
    empty = YesBook()
    assert (
        empty.is_empty and empty.best_bid is None and empty.spread is None and empty.mid_x2 is None
    )
    one = YesBook.from_bid_ladders([(3000, 100)], [])
    assert one.best_ask is None and not one.is_two_sided and not one.is_crossed


def test_crossed_and_locked() -> None:
    assert YesBook.from_bid_ladders([(6000, 1)], [(4100, 1)]).is_crossed  # ask 0.59 < bid 0.60
    assert YesBook.from_bid_ladders([(6000, 1)], [(4000, 1)]).is_locked


@given(levels, levels)
def test_best_ask_is_one_minus_best_no_bid(
    yes: list[tuple[int, int]], no: list[tuple[int, int]]
) -> None:
    book = YesBook.from_bid_ladders(yes, no)
    live_no = [p for p, q in no if q > 0]
    live_yes = [p for p, q in yes if q > 0]
    assert book.best_ask == (10_000 - max(live_no) if live_no else None)
    assert book.best_bid == (max(live_yes) if live_yes else None)
    assert list(book.bids) == sorted(book.bids, reverse=True)
    assert list(book.asks) == sorted(book.asks)


def test_level_book_snapshot_and_deltas() -> None:
    book = LevelBook()
    book.load_snapshot([(4000, 500)], [(5500, 300)])
    book.apply_delta(True, 4100, 200)
    book.apply_delta(False, 5500, -300)
    yes = book.to_yes_book()
    assert yes.bids == ((4100, 200), (4000, 500)) and yes.asks == ()
    with pytest.raises(BookError):
        book.apply_delta(True, 4000, -501)
    assert book.yes[4000] == 500  # unchanged after the bad delta
    with pytest.raises(BookError):
        book.apply_delta(True, 10_001, 1)
