"""bench.prints: the diagnostic's print merging and a short run's buckets."""

from bench.prints import measure, prints_of, report
from sim.model import BookSide, Trade


def trade(seq: int, ms: int, side: BookSide, count: int, ticker: str = "KX") -> Trade:
    return Trade(f"t{seq}", seq, ticker, 5000, count * 100, side, ms)


def test_one_taker_order_is_one_print_and_its_informed_flag_is_any_trade() -> None:
    trades = [
        trade(3, 1_000, BookSide.BID, 2),
        trade(1, 1_000, BookSide.BID, 4),
        trade(2, 1_000, BookSide.BID, 6, ticker="KY"),  # another market between: not merged
        trade(4, 1_000, BookSide.ASK, 1),
        trade(5, 1_250, BookSide.ASK, 3),
    ]
    out = prints_of(trades, informed_ids={"t3"})
    assert [(p.ticker, p.ms, p.sign, p.count, p.informed) for p in out] == [
        ("KX", 1_000, 1, 4, False),
        ("KY", 1_000, 1, 6, False),
        ("KX", 1_000, 1, 2, True),
        ("KX", 1_000, -1, 1, False),
        ("KX", 1_250, -1, 3, False),
    ]


def test_a_short_run_fills_the_buckets_it_reports() -> None:
    buckets = dict(measure("news_jumps", [1], 0.02))
    sizes = [b.prints for name, b in buckets.items() if name.startswith("size ")]
    takers = [b.prints for name, b in buckets.items() if name.startswith("taker ")]
    assert buckets["all"].prints > 0
    assert buckets["all"].prints == sum(sizes) == sum(takers)
    assert buckets["all"].prints > buckets["all"].followed
    lines = report("news_jumps", [1], buckets)
    assert lines[3].startswith("| all |")
