"""The price grid of a market, from its ``price_ranges`` (API.md §3.2).

Kalshi markets do not all tick in cents: each has ranges ``{start, end, step}``. A price is valid
when some range holds it on its step. Bids round down onto the grid and asks round up, so rounding
never makes a quote more aggressive than asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from common.numbers import ONE_DOLLAR, NumberError, format_price, parse_price


@dataclass(frozen=True, slots=True)
class PriceRange:
    start: int
    end: int
    step: int

    def holds(self, price: int) -> bool:
        return self.start <= price <= self.end and (price - self.start) % self.step == 0

    def floor(self, price: int) -> int | None:
        """The highest price of this range at or below ``price``, if any."""
        if price < self.start:
            return None
        capped = min(price, self.end)
        return capped - (capped - self.start) % self.step

    def ceil(self, price: int) -> int | None:
        """The lowest price of this range at or above ``price``, if any."""
        if price > self.end:
            return None
        raised = max(price, self.start)
        offset = (raised - self.start) % self.step
        candidate = raised if offset == 0 else raised + self.step - offset
        return candidate if candidate <= self.end else None


class GridError(ValueError):
    """A price_ranges payload that does not describe a usable grid."""


@dataclass(frozen=True, slots=True)
class PriceGrid:
    """The valid order prices of one market: strictly between 0 and $1 and on a range's step."""

    ranges: tuple[PriceRange, ...]

    @classmethod
    def from_price_ranges(cls, price_ranges: Iterable[Mapping[str, object]]) -> PriceGrid:
        ranges = []
        for index, item in enumerate(price_ranges):
            if not isinstance(item, Mapping):
                raise GridError(f"price_ranges[{index}] must be an object, was {item!r}")
            try:
                start = parse_price(item.get("start"), what=f"price_ranges[{index}].start")
                end = parse_price(item.get("end"), what=f"price_ranges[{index}].end")
                step = parse_price(item.get("step"), what=f"price_ranges[{index}].step")
            except NumberError as exc:
                raise GridError(str(exc)) from None
            if step <= 0:
                raise GridError(f"price_ranges[{index}].step must be > 0, was {item.get('step')!r}")
            if end < start:
                raise GridError(f"price_ranges[{index}] ends before it starts: {dict(item)!r}")
            ranges.append(PriceRange(start, end, step))
        if not ranges:
            raise GridError("price_ranges must hold at least one range, was empty")
        return cls(tuple(sorted(ranges, key=lambda r: r.start)))

    @classmethod
    def linear_cent(cls) -> PriceGrid:
        return cls((PriceRange(0, ONE_DOLLAR, 100),))

    @classmethod
    def uniform(cls, step: int) -> PriceGrid:
        return cls((PriceRange(0, ONE_DOLLAR, step),))

    def to_price_ranges(self) -> list[dict[str, str]]:
        return [
            {
                "start": format_price(r.start),
                "end": format_price(r.end),
                "step": format_price(r.step),
            }
            for r in self.ranges
        ]

    def is_valid(self, price: int) -> bool:
        """True when an order at ``price`` is accepted: 0 < price < $1 and on the grid."""
        return 0 < price < ONE_DOLLAR and any(r.holds(price) for r in self.ranges)

    def round_down(self, price: int) -> int | None:
        """The highest valid price <= ``price`` (how a bid is rounded), or None if there is none."""
        best: int | None = None
        for r in self.ranges:
            candidate = r.floor(min(price, ONE_DOLLAR - 1))
            if candidate is not None and candidate <= 0:
                candidate = None
            if candidate is not None and (best is None or candidate > best):
                best = candidate
        return best

    def round_up(self, price: int) -> int | None:
        """The lowest valid price >= ``price`` (how an ask is rounded), or None if there is none."""
        best: int | None = None
        for r in self.ranges:
            candidate = r.ceil(max(price, 1))
            if candidate is not None and candidate >= ONE_DOLLAR:
                candidate = None
            if candidate is not None and (best is None or candidate < best):
                best = candidate
        return best

    def next_above(self, price: int) -> int | None:
        """The lowest valid price strictly above ``price``."""
        return self.round_up(price + 1)

    def next_below(self, price: int) -> int | None:
        """The highest valid price strictly below ``price``."""
        return self.round_down(price - 1)

    def tick_at(self, price: int) -> int:
        """The step size of the grid around ``price`` (the finest range holding it, else the
        nearest one): what "one tick" means at this price."""
        holding = [r.step for r in self.ranges if r.start <= price <= r.end]
        if holding:
            return min(holding)
        return min(self.ranges, key=lambda r: min(abs(r.start - price), abs(r.end - price))).step
