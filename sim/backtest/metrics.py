"""What a backtest measures, in exact integers (money in 1/1,000,000 $).

- **net PnL after fees**: realized PnL of every fill minus fees, plus the open position valued
  at the final mark: the settlement value ($1 or $0) when the market was determined, else the
  hidden fair value at the end (rounded to 1/10,000 $).
- **spread captured**: for each fill, ``q x (F_t - p)``: what the fill was worth against the
  hidden fair value F at the moment it happened (q signed contracts, p the fill price).
- **markout at h** (1 s, 10 s, 60 s): ``q x (F_{t+h} - F_t)``: how the filled contracts' value
  moved in the h after the fill. Negative = adverse selection (we bought before the fair value
  fell). ``spread captured + markout_h`` is the fill's total edge after h. Past the end of the
  run, the last sample stands in for ``F_{t+h}``.
- **max drawdown**: the largest fall from a peak of the marked PnL curve (sampled every second).
- **max |inventory|**: the largest absolute position in any one market at any time.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from common.domain import Position
from common.numbers import ONE_DOLLAR, PRICE_SCALE

MARKOUT_HORIZONS_MS = (1_000, 10_000, 60_000)


def fair_price_units(probability: float) -> int:
    """The hidden fair probability as a price (nearest 1/10,000 $): a measuring stick only."""
    return max(0, min(ONE_DOLLAR, round(probability * PRICE_SCALE)))


@dataclass(frozen=True, slots=True)
class FillRecord:
    ms: int
    ticker: str
    signed_count: int  # + bought YES, - sold YES (count units)
    price: int
    fee: int
    is_taker: bool


@dataclass(slots=True)
class FairTape:
    """The hidden fair value of each market at each sampled time (shared time axis)."""

    times_ms: list[int] = field(default_factory=list)
    values: dict[str, list[int]] = field(default_factory=dict)

    def record(self, now_ms: int, fairs: dict[str, int]) -> None:
        self.times_ms.append(now_ms)
        for ticker, fair in fairs.items():
            self.values.setdefault(ticker, []).append(fair)

    def at(self, ticker: str, ms: int) -> int:
        """The first sample at or after ``ms`` (the last one past the end)."""
        series = self.values[ticker]
        index = bisect_left(self.times_ms, ms)
        return series[min(index, len(series) - 1)]


@dataclass(frozen=True, slots=True)
class Summary:
    net_pnl: int
    realized_pnl: int  # gross of fees
    unrealized_pnl: int
    fees: int
    fills: int
    maker_fills: int
    contracts_traded: int  # count units
    volume: int  # money: sum of price x count
    spread_captured: int
    markouts: dict[int, int]  # horizon ms -> money
    max_abs_inventory: int  # count units
    max_drawdown: int
    final_positions: dict[str, int]


def markouts(
    fills: list[FillRecord], tape: FairTape, horizons_ms: tuple[int, ...] = MARKOUT_HORIZONS_MS
) -> tuple[int, dict[int, int]]:
    """(spread captured, {horizon: markout}) in money over every fill."""
    spread = 0
    out = dict.fromkeys(horizons_ms, 0)
    for fill in fills:
        fair_now = tape.at(fill.ticker, fill.ms)
        spread += fill.signed_count * (fair_now - fill.price)
        for horizon in horizons_ms:
            out[horizon] += fill.signed_count * (tape.at(fill.ticker, fill.ms + horizon) - fair_now)
    return spread, out


def max_drawdown(curve: list[int]) -> int:
    peak, worst = 0, 0
    for value in curve:
        peak = max(peak, value)
        worst = max(worst, peak - value)
    return worst


def summarize(
    positions: dict[str, Position],
    final_marks: dict[str, int],
    fills: list[FillRecord],
    tape: FairTape,
    pnl_curve: list[int],
    max_abs_inventory: int,
) -> Summary:
    realized = sum(p.realized_pnl for p in positions.values())
    fees = sum(p.fees for p in positions.values())
    unrealized = sum(p.unrealized_pnl(final_marks[t]) for t, p in positions.items() if p.position)
    spread, marks = markouts(fills, tape)
    return Summary(
        net_pnl=realized - fees + unrealized,
        realized_pnl=realized,
        unrealized_pnl=unrealized,
        fees=fees,
        fills=len(fills),
        maker_fills=sum(1 for f in fills if not f.is_taker),
        contracts_traded=sum(abs(f.signed_count) for f in fills),
        volume=sum(abs(f.signed_count) * f.price for f in fills),
        spread_captured=spread,
        markouts=marks,
        max_abs_inventory=max_abs_inventory,
        max_drawdown=max_drawdown(pnl_curve),
        final_positions={t: p.position for t, p in positions.items() if p.position},
    )
