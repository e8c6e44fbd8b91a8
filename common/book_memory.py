"""What the strategy remembers of one market's book between calls: which levels are fresh.

Makers re-centre their ladders from time to time, so the book mixes fresh quotes with stale
ones. Right after a jump in the value the stale side of the book sits far through it (a stale
ask below the new value), and "one tick inside the best" there is what informed takers pick
off. The levels that were added most recently carry the newest opinion of the value.

``remember_book`` is fed the others' book (our own orders taken out) every time the caller
reads a new one, and notes each level that grew (someone added an order there) with the time.
``fresh_fair_x2`` is the centre of the freshest bid and the freshest ask added within a window;
when only one side was added (the re-centring maker's other side traded against the stale book
at once and never rested), the centre is that side's freshest price moved by half the spread
the last two-sided refresh showed. It also keeps the others' mid each time it changed
(``mids_x2``, with the one in effect ``mids_keep_ms`` ago), so the quoting can tell a quiet market
from one that just moved.

Pure and immutable, like ``common.recent_mids.Recent``: the live strategy process keeps one per
market and passes it to ``compute_targets``; the backtester does the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.book import Level, YesBook
from common.domain import Side

KEEP_MS = 10_000  # notes older than this are forgotten
MIDS_KEEP_MS = 10_000  # mids older are forgotten (but the one then in effect): 2x the quiet window


@dataclass(frozen=True, slots=True)
class BookMemory:
    bids: tuple[Level, ...] = ()  # the others' book as last seen
    asks: tuple[Level, ...] = ()
    added: tuple[tuple[int, Side, int], ...] = ()  # (ms, side, price) of levels that grew
    fresh_spread: int = 0  # freshest ask - freshest bid at the last two-sided refresh (0: none)
    mids_x2: tuple[tuple[int, int], ...] = ()  # (ms, best bid + best ask) when it changed


NO_MEMORY = BookMemory()


def _grown(before: tuple[Level, ...], after: tuple[Level, ...]) -> list[int]:
    sizes = dict(before)
    return [price for price, size in after if size > sizes.get(price, 0)]


def remember_book(
    memory: BookMemory,
    book: YesBook,
    now_ms: int,
    keep_ms: int = KEEP_MS,
    mids_keep_ms: int = MIDS_KEEP_MS,
) -> BookMemory:
    """The memory after seeing ``book`` (the others' book) at ``now_ms``."""
    if book.bids == memory.bids and book.asks == memory.asks:
        return memory
    bid_prices = {price for price, _ in book.bids}
    ask_prices = {price for price, _ in book.asks}
    kept = [
        (ms, side, price)
        for ms, side, price in memory.added
        if ms >= now_ms - keep_ms and price in (bid_prices if side is Side.BID else ask_prices)
    ]
    new_bids = _grown(memory.bids, book.bids)
    new_asks = _grown(memory.asks, book.asks)
    grown = {(Side.BID, p) for p in new_bids} | {(Side.ASK, p) for p in new_asks}
    # a level that grew again is noted anew (the newest time wins)
    kept = [note for note in kept if (note[1], note[2]) not in grown]
    kept += [(now_ms, Side.BID, p) for p in new_bids] + [(now_ms, Side.ASK, p) for p in new_asks]
    fresh_spread = memory.fresh_spread
    if new_bids and new_asks and min(new_asks) > max(new_bids):
        fresh_spread = min(new_asks) - max(new_bids)
    return BookMemory(
        book.bids,
        book.asks,
        tuple(kept),
        fresh_spread,
        _mids(memory.mids_x2, book, now_ms, mids_keep_ms),
    )


def _mids(
    mids_x2: tuple[tuple[int, int], ...], book: YesBook, now_ms: int, keep_ms: int
) -> tuple[tuple[int, int], ...]:
    """The mids with ``book``'s added when it changed; older than ``keep_ms`` forgotten, but
    the one in effect ``keep_ms`` ago kept (the start of any window up to ``keep_ms``)."""
    mid_x2 = book.mid_x2
    out = list(mids_x2)
    if mid_x2 is not None and (not out or out[-1][1] != mid_x2):
        out.append((now_ms, mid_x2))
    start = 0
    while start + 1 < len(out) and out[start + 1][0] <= now_ms - keep_ms:
        start += 1
    return tuple(out[start:])


def fresh_fair_x2(memory: BookMemory, now_ms: int, window_ms: int) -> int | None:
    """Twice the centre of the levels added within ``window_ms`` (None when nothing fresh, or
    only one side with no two-sided refresh seen yet)."""
    bid: int | None = None
    ask: int | None = None
    for ms, side, price in memory.added:
        if ms < now_ms - window_ms:
            continue
        if side is Side.BID:
            bid = price if bid is None else max(bid, price)
        else:
            ask = price if ask is None else min(ask, price)
    if bid is not None and ask is not None:
        return bid + ask if bid < ask else None
    if not memory.fresh_spread:
        return None
    if bid is not None:
        return 2 * bid + memory.fresh_spread
    if ask is not None:
        return 2 * ask - memory.fresh_spread
    return None
