"""One market's order book: YES bids and YES asks with price-time priority.

Each side maps price -> level; a level keeps its orders in arrival order (a dict keyed by order
id, so removal from the middle is O(1)) and their total remaining size. Prices of each side are
kept sorted so the best level is found without scanning.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

from common.numbers import ONE_DOLLAR
from sim.model import BookSide, Order


class Level:
    __slots__ = ("orders", "price", "size")

    def __init__(self, price: int) -> None:
        self.price = price
        self.size = 0
        self.orders: dict[str, Order] = {}


class BookHalf:
    """The orders of one side. ``prices`` ascending; best is last for bids, first for asks."""

    __slots__ = ("is_bid", "levels", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, Level] = {}
        self.prices: list[int] = []

    def best(self) -> Level | None:
        if not self.prices:
            return None
        return self.levels[self.prices[-1] if self.is_bid else self.prices[0]]

    def add(self, order: Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = Level(order.price)
            self.levels[order.price] = level
            insort(self.prices, order.price)
        level.orders[order.order_id] = order
        level.size += order.remaining

    def remove(self, order: Order, size: int) -> None:
        """Take ``order`` (whose resting size was ``size``) out of its level."""
        level = self.levels[order.price]
        del level.orders[order.order_id]
        level.size -= size
        if not level.orders:
            self._drop(level.price)

    def shrink(self, order: Order, by: int) -> None:
        """The order keeps its place; its level loses ``by`` contracts."""
        self.levels[order.price].size -= by

    def _drop(self, price: int) -> None:
        del self.levels[price]
        index = bisect_left(self.prices, price)
        del self.prices[index]

    def best_first(self) -> Iterator[Level]:
        """Levels from best to worst."""
        ordered = reversed(self.prices) if self.is_bid else iter(self.prices)
        for price in list(ordered):
            level = self.levels.get(price)
            if level is not None:
                yield level

    def depth(self) -> list[tuple[int, int]]:
        """(price, size) ascending by price."""
        return [(p, self.levels[p].size) for p in self.prices]


class OrderBook:
    __slots__ = ("asks", "bids", "ticker")

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.bids = BookHalf(is_bid=True)
        self.asks = BookHalf(is_bid=False)

    def half(self, side: BookSide) -> BookHalf:
        return self.bids if side is BookSide.BID else self.asks

    def opposite(self, side: BookSide) -> BookHalf:
        return self.asks if side is BookSide.BID else self.bids

    def best_bid(self) -> Level | None:
        return self.bids.best()

    def best_ask(self) -> Level | None:
        return self.asks.best()

    def crosses(self, side: BookSide, price: int) -> bool:
        """True when an order on ``side`` at ``price`` would trade with the book."""
        best = self.opposite(side).best()
        if best is None:
            return False
        return best.price <= price if side is BookSide.BID else best.price >= price

    def is_crossed(self) -> bool:
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid.price >= ask.price

    def yes_levels(self) -> list[tuple[int, int]]:
        """YES bids as (YES price, size), ascending: best last."""
        return self.bids.depth()

    def no_levels(self) -> list[tuple[int, int]]:
        """YES asks expressed as NO bids (NO price = 1 - p, size), ascending: best last."""
        return [(ONE_DOLLAR - p, self.asks.levels[p].size) for p in reversed(self.asks.prices)]

    def queue_ahead(self, order: Order) -> int:
        """Contracts ahead of ``order`` at its price (0-based queue position)."""
        level = self.half(order.side).levels.get(order.price)
        if level is None:
            return 0
        ahead = 0
        for other in level.orders.values():
            if other is order:
                break
            ahead += other.remaining
        return ahead
