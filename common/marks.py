"""What an open position is worth now, from the rest of the market's book. Pure.

The daily loss limit is only as good as its marks. A position is valued on the others' book:
our own resting quotes are taken out first (``common.quoting.without_own_orders``, as the
strategy does), since a mark held up by our own bid would hide the loss it should show.

- both sides quoted by others: the mid, rounded against the position (down for a long, up
  for a short);
- one side or none: what the position would fetch if it had to go now (liquidation value): a long
  YES position at the others' best bid or 0 when there is none, a short one at the others' best
  ask or $1 when there is none. A market whose bids collapse shows its loss at once.

Only a fresh book of a market that still trades is read. A stale (or missing) book is not used:
the others' top of book last seen fresh is held instead, for ``MARK_HOLD_MS``, and after that the
position is valued at its liquidation value on that book (a stale book hides whatever happened
since, so the longer it lasts the more conservative the mark). A market past its close is valued
on the book last seen while it traded (its book empties at the close, which says nothing of what
the position will settle at) until settlement closes the position.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.book import BookState, YesBook
from common.domain import MarketStatus, Order
from common.numbers import ONE_DOLLAR
from common.quoting import without_own_orders

MARK_HOLD_MS = 60_000
NOT_TRADING = frozenset(
    {
        MarketStatus.CLOSED,
        MarketStatus.DETERMINED,
        MarketStatus.DISPUTED,
        MarketStatus.AMENDED,
        MarketStatus.FINALIZED,
    }
)


def liquidation_value(position: int, others: YesBook) -> int:
    """The YES price ``position`` would be closed at now: the others' best bid for a long, their
    best ask for a short (0 and $1 when that side is empty)."""
    if position >= 0:
        bid = others.best_bid
        return 0 if bid is None else bid
    ask = others.best_ask
    return ONE_DOLLAR if ask is None else ask


def mark_price(position: int, others: YesBook) -> int:
    """The YES price ``position`` is marked at on the others' book (ours already out of it)."""
    mid_x2 = others.mid_x2
    if mid_x2 is None:
        return liquidation_value(position, others)
    return mid_x2 // 2 if position >= 0 else (mid_x2 + 1) // 2


@dataclass(frozen=True, slots=True)
class SeenBook:
    """The others' best bid and ask (None: that side empty) when a market's book was last read
    fresh, at ``ms``."""

    best_bid: int | None
    best_ask: int | None
    ms: int

    def as_book(self) -> YesBook:
        return YesBook(
            () if self.best_bid is None else ((self.best_bid, 1),),
            () if self.best_ask is None else ((self.best_ask, 1),),
        )


@dataclass(frozen=True, slots=True)
class Mark:
    """A position's mark (YES price), where it came from (``book``: the others' mid;
    ``liquidation``: a one-sided or empty book; ``held``: the last fresh book while this one is
    stale or the market closed; ``held_liquidation``: held past ``MARK_HOLD_MS``) and that book."""

    price: int
    source: str
    seen: SeenBook


def is_trading(status: MarketStatus | None, close_ms: int, now_ms: int) -> bool:
    """Can the market's book still say what a position is worth? Not once it has closed (by
    status or by its close time: the book empties at the close, before the status says so).
    A market whose status is not known yet is taken as trading."""
    return status not in NOT_TRADING and not (close_ms and now_ms >= close_ms)


def mark_position(
    position: int,
    book: BookState | None,
    own_orders: Iterable[Order],
    trading: bool,
    seen: SeenBook | None,
    now_ms: int,
) -> Mark | None:
    """The mark of ``position`` now: from ``book`` when it is fresh and the market ``trading``
    (``is_trading``), else from ``seen`` (the last fresh one); None when there is neither."""
    if book is not None and not book.stale and trading:
        others = without_own_orders(book.book, own_orders)
        fresh = SeenBook(others.best_bid, others.best_ask, now_ms)
        source = "book" if others.is_two_sided else "liquidation"
        return Mark(mark_price(position, others), source, fresh)
    if seen is None:
        return None
    held = seen.as_book()
    if not trading or now_ms - seen.ms <= MARK_HOLD_MS:
        return Mark(mark_price(position, held), "held", seen)
    return Mark(liquidation_value(position, held), "held_liquidation", seen)
