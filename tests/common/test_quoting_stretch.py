"""Session 17's close stretch: near the close, the book's fair value moved away from 50 c."""

from dataclasses import replace

from common.domain import Position
from common.quoting import DEFAULT_PARAMS, compute_targets
from tests.common.test_quoting import CONFIG, NOW, book, meta

STRETCH = replace(DEFAULT_PARAMS, close_stretch_pct=20, close_stretch_ms=10 * 60_000)
LONGSHOT = book(600, 1000)  # mid 8 c: stretched 20 %, about 5.1 c


def quotes(params, to_close_ms):
    m = meta(close_ms=NOW + to_close_ms)
    t = compute_targets(LONGSHOT, False, Position("KX"), CONFIG, m, NOW, params)
    return (t.bid.price if t.bid else None, t.ask.price if t.ask else None, t.fair_price)


def test_off_by_default_the_longshot_is_quoted_around_its_mid():
    assert DEFAULT_PARAMS.close_stretch_pct == 0
    bid, ask, fair = quotes(DEFAULT_PARAMS, 8 * 60_000)
    assert (bid, ask, fair) == (700, 900, 800)


def test_near_the_close_the_longshot_bid_stands_back():
    bid, ask, fair = quotes(STRETCH, 8 * 60_000)
    assert fair is not None and 500 < fair < 520
    assert ask == 900  # still one tick inside: its target is below the best ask
    assert bid is not None and bid < 600  # behind the best bid: the stretched fair is ~5 c


def test_far_from_the_close_nothing_changes():
    assert quotes(STRETCH, 11 * 60_000) == quotes(DEFAULT_PARAMS, 11 * 60_000)
