"""The YES order book of one market (DESIGN.md §2, API.md §4).

Kalshi publishes two bid ladders: YES bids at YES prices and NO bids at NO prices. dora keeps one
YES book: bids as given, asks at ``1 - NO bid``. ``YesBook`` is the immutable view every pure
function takes; ``LevelBook`` is the mutable ladder the WebSocket snapshot + deltas maintain;
``BookState`` is a published book with its sequence number and freshness.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.numbers import ONE_DOLLAR


class BookError(ValueError):
    """A book update that cannot be applied (negative level, bad price)."""


Level = tuple[int, int]  # (price units, count units)


def reciprocal(price: int) -> int:
    """YES price <-> NO price: 1 - p."""
    return ONE_DOLLAR - price


@dataclass(frozen=True, slots=True)
class YesBook:
    """Bids best-first (descending price) and asks best-first (ascending price), YES prices."""

    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()

    @classmethod
    def from_bid_ladders(cls, yes_bids: Iterable[Level], no_bids: Iterable[Level]) -> YesBook:
        """Build from Kalshi's YES-bid and NO-bid ladders (any order; zero levels dropped)."""
        bids = sorted(((p, q) for p, q in yes_bids if q > 0), reverse=True)
        asks = sorted((reciprocal(p), q) for p, q in no_bids if q > 0)
        return cls(tuple(bids), tuple(asks))

    @property
    def best_bid(self) -> int | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return self.asks[0][0] if self.asks else None

    @property
    def best_bid_size(self) -> int:
        return self.bids[0][1] if self.bids else 0

    @property
    def best_ask_size(self) -> int:
        return self.asks[0][1] if self.asks else 0

    @property
    def best_no_bid(self) -> int | None:
        """The best NO bid in NO prices (the reciprocal of the best YES ask)."""
        ask = self.best_ask
        return None if ask is None else reciprocal(ask)

    @property
    def is_two_sided(self) -> bool:
        return bool(self.bids) and bool(self.asks)

    @property
    def is_empty(self) -> bool:
        return not self.bids and not self.asks

    @property
    def is_crossed(self) -> bool:
        """Best bid above the best ask: an inconsistent book that must not be quoted."""
        bid, ask = self.best_bid, self.best_ask
        return bid is not None and ask is not None and bid > ask

    @property
    def is_locked(self) -> bool:
        bid, ask = self.best_bid, self.best_ask
        return bid is not None and ask is not None and bid == ask

    @property
    def spread(self) -> int | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else ask - bid

    @property
    def mid_x2(self) -> int | None:
        """Twice the mid price (exact integer; halve at the last moment)."""
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else bid + ask

    def depth(self, levels: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return self.bids[:levels], self.asks[:levels]


class LevelBook:
    """A market's two bid ladders as Kalshi sends them (YES bids, NO bids at NO prices),
    maintained from a snapshot and signed deltas."""

    __slots__ = ("no", "yes")

    def __init__(self) -> None:
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}

    def load_snapshot(self, yes_levels: Iterable[Level], no_levels: Iterable[Level]) -> None:
        self.yes = {}
        self.no = {}
        for ladder, levels in ((self.yes, yes_levels), (self.no, no_levels)):
            for price, size in levels:
                _check_price(price)
                if size < 0:
                    raise BookError(f"snapshot level size must be >= 0, was {size} at {price}")
                if size:
                    ladder[price] = size

    def apply_delta(self, is_yes: bool, price: int, delta: int) -> None:
        """``level += delta``; a level at zero is removed; below zero is an error (a missed
        message) and leaves the book unchanged."""
        _check_price(price)
        ladder = self.yes if is_yes else self.no
        size = ladder.get(price, 0) + delta
        if size < 0:
            raise BookError(f"delta {delta} at {price} takes the level below zero")
        if size:
            ladder[price] = size
        else:
            ladder.pop(price, None)

    def to_yes_book(self) -> YesBook:
        return YesBook.from_bid_ladders(self.yes.items(), self.no.items())


def _check_price(price: int) -> None:
    if not 0 <= price <= ONE_DOLLAR:
        raise BookError(f"book price must be within 0..{ONE_DOLLAR} units, was {price}")


@dataclass(frozen=True, slots=True)
class BookState:
    """What ``dora:book:{ticker}`` holds: the top of the YES book and how fresh it is."""

    ticker: str
    book: YesBook
    seq: int
    exchange_ms: int  # when the exchange produced the last update (0 if unknown)
    received_ms: int  # when marketdata applied it
    stale: bool
    stale_reason: str = ""
